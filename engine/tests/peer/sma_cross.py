"""backtesting.py's own SMA crossover example on its bundled GOOG data, as
JSON for tests/peer.rs: the bars, every trade, the final equity.

    python3 engine/tests/peer/sma_cross.py > results.json
"""
import json
import sys
import warnings

from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from backtesting.test import GOOG, SMA


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
    stats = Backtest(GOOG, SmaCross, cash=10_000, commission=0.002, finalize_trades=True).run()
    bars = [
        [int(t.timestamp()), row.Open, row.High, row.Low, row.Close, float(row.Volume)]
        for t, row in zip(GOOG.index, GOOG.itertuples())
    ]
    trades = [
        {
            "size": int(t.Size),
            "entry_bar": int(t.EntryBar),
            "exit_bar": int(t.ExitBar),
            "entry_price": float(t.EntryPrice),
            "exit_price": float(t.ExitPrice),
            "pnl": float(t.PnL),
        }
        for t in stats._trades.itertuples()
    ]
    json.dump({"bars": bars, "trades": trades, "final_equity": float(stats["Equity Final [$]"])}, sys.stdout)


if __name__ == "__main__":
    main()
