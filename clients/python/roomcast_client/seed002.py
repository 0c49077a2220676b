"""Seed 002 (QuantMindX): a run's lifecycle on a ``/ws`` topic.

Drop-in equivalents of the seed's ``WebSocketLogHandler``,
``BacktestProgressStreamer`` and ``setup_backtest_logging``
(``src/api/ws_logger.py``), publishing through roomcast's
``POST /api/v1/backtest/events?topic=<topic>`` instead of broadcasting
in-process. Messages keep the seed's shapes exactly:
``{"type": ..., "data": {..., "backtest_id", "timestamp"}}``.

The handler and the streamer of one run share one :class:`EventSink`, so
log lines and lifecycle events reach roomcast in the order they happened
(roomcast refuses anything of a run after its terminal event).
"""

import asyncio
import logging
import time
import uuid
from datetime import datetime, timezone

from .sink import EventSink
from .transport import HttpTransport


def _now():
    """RFC 3339 UTC with milliseconds and ``Z``, like roomcast's own."""
    return _timestamp(time.time())


def _timestamp(created):
    """``created`` (Unix seconds) as :func:`_now` writes it."""
    return (
        datetime.fromtimestamp(created, timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def events_path(topic):
    return f"/api/v1/backtest/events?topic={topic}"


#: The default transport, and one sink per (transport, topic): a handler and
#: a streamer of one run built separately, as the seed builds them, still
#: share one ordered queue.
_default_transport = None
_sinks = {}
_sinks_lock = __import__("threading").Lock()


def shared_sink(transport, topic):
    """The sink every object of this module built without one uses for
    ``transport`` (the default one when ``None``) and ``topic``."""
    global _default_transport
    with _sinks_lock:
        if transport is None:
            if _default_transport is None:
                _default_transport = HttpTransport()
            transport = _default_transport
        key = (id(transport), topic)
        if key not in _sinks:
            _sinks[key] = (transport, EventSink(transport, events_path(topic)))
        return _sinks[key][1]


class WebSocketLogHandler(logging.Handler):
    """Turns log records into seed 002 ``log_entry`` events.

    ``level`` is the record's Python level name (``WARNING``); ``module``,
    ``function`` and ``line`` are where it was logged; ``logger_name`` is the
    record's logger (``backtest.<id>`` with :func:`setup_backtest_logging`).
    """

    def __init__(self, topic="backtest", backtest_id=None, sink=None, transport=None):
        super().__init__()
        self.topic = topic
        self.backtest_id = backtest_id
        self.sink = sink or shared_sink(transport, topic)

    def emit(self, record):
        if record.name.startswith("roomcast_client"):
            return  # the sink's own warnings would loop
        try:
            self.sink.put(self._format_record(record))
        except Exception:  # a log line must never break the engine
            self.handleError(record)

    def _format_record(self, record):
        return {
            "type": "log_entry",
            "data": {
                "backtest_id": self.backtest_id,
                "timestamp": _timestamp(record.created),
                "level": record.levelname,
                "message": record.getMessage(),
                "module": record.module,
                "function": record.funcName,
                "line": record.lineno,
                "logger_name": record.name,
            },
        }


class BacktestProgressStreamer:
    """Seed 002's lifecycle events for one run.

    The methods are coroutines, as in the seed; ``start`` and
    ``update_progress`` only queue, ``complete`` and ``error`` return once
    roomcast has the terminal event.
    """

    def __init__(self, backtest_id=None, topic="backtest", sink=None, transport=None):
        self.backtest_id = backtest_id or str(uuid.uuid4())
        self.topic = topic
        self.sink = sink or shared_sink(transport, topic)
        self._started = None

    def _send(self, kind, data):
        data = {"backtest_id": self.backtest_id, **data, "timestamp": _now()}
        self.sink.put({"type": kind, "data": data})

    async def start(self, variant, symbol, timeframe, start_date, end_date):
        self._started = time.monotonic()
        self._send(
            "backtest_start",
            {
                "variant": variant,
                "symbol": symbol,
                "timeframe": timeframe,
                "start_date": start_date,
                "end_date": end_date,
            },
        )

    async def update_progress(
        self,
        progress,
        status,
        bars_processed,
        total_bars,
        current_date,
        trades_count=0,
        current_pnl=0.0,
    ):
        self._send(
            "backtest_progress",
            {
                "progress": progress,
                "status": status,
                "bars_processed": bars_processed,
                "total_bars": total_bars,
                "current_date": current_date,
                "trades_count": trades_count,
                "current_pnl": current_pnl,
            },
        )

    async def complete(
        self,
        final_balance,
        total_trades,
        win_rate,
        sharpe_ratio,
        drawdown,
        return_pct,
        results=None,
    ):
        duration = time.monotonic() - self._started if self._started is not None else 0.0
        self._send(
            "backtest_complete",
            {
                "final_balance": final_balance,
                "total_trades": total_trades,
                "win_rate": win_rate,
                "sharpe_ratio": sharpe_ratio,
                "drawdown": drawdown,
                "return_pct": return_pct,
                "duration_seconds": round(duration, 3),
                "results": results or {},
            },
        )
        await asyncio.to_thread(self.sink.flush)

    async def error(self, error_message, error_details=None):
        self._send("backtest_error", {"error": error_message, "error_details": error_details or ""})
        await asyncio.to_thread(self.sink.flush)


def setup_backtest_logging(backtest_id=None, topic="backtest", transport=None, level=logging.INFO):
    """The seed's helper: a ``backtest.<id>`` logger whose records become
    ``log_entry`` events, and the run's streamer, sharing one ordered sink.
    Returns ``(logger, streamer)``."""
    backtest_id = backtest_id or str(uuid.uuid4())
    sink = shared_sink(transport, topic)
    logger = logging.getLogger(f"backtest.{backtest_id}")
    logger.setLevel(level)
    logger.addHandler(WebSocketLogHandler(topic, backtest_id, sink=sink))
    streamer = BacktestProgressStreamer(backtest_id, topic, sink=sink)
    return logger, streamer
