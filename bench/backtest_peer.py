"""Times backtesting.py's SMA crossover (its own example strategy) on the bars
in a CSV file (timestamp,open,high,low,close,volume with Unix seconds), for
bench/engine.rs, which runs roomcast's engine on the same bars in the same
run. Prints the best of `runs` timings of `Backtest.run()`, in seconds, and
the trade count.

    python3 bench/backtest_peer.py bars.csv [runs]
"""
import os
import sys
import time
import warnings

import pandas as pd
from backtesting import Backtest

# The strategy of the correctness cross-check (engine/tests/peer.rs), so
# both compare the engine with the same rule.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "engine", "tests", "peer"))
from sma_cross import SmaCross  # noqa: E402


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
        bt = Backtest(data, SmaCross, cash=1_000_000_000_000, commission=0.0, finalize_trades=True)
        started = time.perf_counter()
        stats = bt.run()
        best = min(best, time.perf_counter() - started)
        trades = int(stats["# Trades"])
    print(f"{best:.6f} {trades}")


if __name__ == "__main__":
    main()
