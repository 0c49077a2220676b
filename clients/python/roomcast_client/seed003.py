"""Seed 003: one run's stream, ``/api/ws/stream/backtest/{id}``.

What seed 003's ``StreamingBacktestEngine`` emits, published through
roomcast's ``POST /api/ws/stream/backtest/{id}/events``: viewers get the
messages exactly as they get an embedded run's (``connected``, the replay
of everything so far, then live), from any roomcast node. Every message is
``{"type", "timestamp", "data"}``; the timestamp is filled in here.

Units follow the seed (and roomcast's embedded runs): ``progress`` in
percent; ``win_rate`` and ``max_drawdown`` fractions in ``progress`` and
``metrics``; ``total_return`` and ``max_drawdown`` percent in
``complete.metrics``. The first event registers the run; ``complete`` and
``error`` end it, and return once roomcast has them.
"""

from .seed002 import _now
from .sink import EventSink
from .transport import HttpTransport


class BacktestStreamPublisher:
    """Publishes one run's seed 003 stream events."""

    def __init__(self, backtest_id, transport=None, sink=None):
        self.backtest_id = backtest_id
        self.sink = sink or EventSink(
            transport or HttpTransport(), f"/api/ws/stream/backtest/{backtest_id}/events"
        )

    def _send(self, kind, data):
        self.sink.put({"type": kind, "timestamp": _now(), "data": data})

    def progress(self, progress, current_time, metrics):
        """``progress`` (percent, never decreasing, at most 100)."""
        self._send(
            "progress",
            {
                "backtest_id": self.backtest_id,
                "progress": progress,
                "current_time": current_time,
                "metrics": metrics,
            },
        )

    def trade_entry(self, trade_id, symbol, direction, entry_price, entry_time, quantity,
                    stop_loss, take_profit_levels, reasoning):
        self._send(
            "trade",
            {
                "event": "entry",
                "trade_id": trade_id,
                "symbol": symbol,
                "direction": direction,
                "entry_price": entry_price,
                "entry_time": entry_time,
                "quantity": quantity,
                "stop_loss": stop_loss,
                "take_profit_levels": take_profit_levels,
                "reasoning": reasoning,
            },
        )

    def trade_exit(self, trade_id, symbol, direction, entry_price, entry_time, exit_price,
                   exit_time, exit_reason, pnl, pnl_percent, mfe, mae):
        self._send(
            "trade",
            {
                "event": "exit",
                "trade_id": trade_id,
                "symbol": symbol,
                "direction": direction,
                "entry_price": entry_price,
                "entry_time": entry_time,
                "exit_price": exit_price,
                "exit_time": exit_time,
                "exit_reason": exit_reason,
                "pnl": pnl,
                "pnl_percent": pnl_percent,
                "mfe": mfe,
                "mae": mae,
            },
        )

    def equity(self, time, equity, balance, drawdown):
        self._send(
            "equity",
            {
                "backtest_id": self.backtest_id,
                "time": time,
                "equity": equity,
                "balance": balance,
                "drawdown": drawdown,
            },
        )

    def metrics(self, total_trades, winning_trades, win_rate, profit_factor, sharpe_ratio,
                max_drawdown):
        self._send(
            "metrics",
            {
                "backtest_id": self.backtest_id,
                "total_trades": total_trades,
                "winning_trades": winning_trades,
                "win_rate": win_rate,
                "profit_factor": profit_factor,
                "sharpe_ratio": sharpe_ratio,
                "max_drawdown": max_drawdown,
            },
        )

    def complete(self, metrics, timeout=30.0):
        """The terminal success; returns once delivered (False on timeout)."""
        self._send("complete", {"backtest_id": self.backtest_id, "metrics": metrics})
        return self.sink.flush(timeout)

    def error(self, error, details=None, timeout=30.0):
        """The terminal failure (``{"error", "details"}``, no backtest_id, as the seed)."""
        self._send("error", {"error": error, "details": details or {}})
        return self.sink.flush(timeout)

    def close(self):
        self.sink.close()
