"""Times backtesting.py's SMA crossover (its own example strategy) on the bars
in a CSV file (timestamp,open,high,low,close,volume with Unix seconds), for
bench/engine.rs, which runs roomcast's engine on the same bars in the same
run. Prints the best of `runs` timings of `Backtest.run()`, in seconds, and
the trade count.

    python3 bench/backtest_peer.py bars.csv [runs]
"""
import sys
import time
import warnings

import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from backtesting.test import SMA


class SmaCross(Strategy):
    n1 = 10
    n2 = 20

    def init(self):
        close = self.data.Close
        self.sma1 = self.I(SMA, close, self.n1)
        self.sma2 = self.I(SMA, close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()


def main():
    warnings.filterwarnings("ignore")
    path = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    data = pd.read_csv(path)
    data.index = pd.to_datetime(data.pop("timestamp"), unit="s")
    data.columns = ["Open", "High", "Low", "Close", "Volume"]
    best = float("inf")
    trades = 0
    for _ in range(runs):
        bt = Backtest(data, SmaCross, cash=10_000_000, commission=0.002, finalize_trades=True)
        started = time.perf_counter()
        stats = bt.run()
        best = min(best, time.perf_counter() - started)
        trades = int(stats["# Trades"])
    print(f"{best:.6f} {trades}")


if __name__ == "__main__":
    main()
