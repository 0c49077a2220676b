"""Publish an existing Python backtest engine's events through roomcast.

roomcast fans the events out to the seed 002 (`/ws` topic `backtest`) and
seed 003 (`/api/ws/stream/backtest/{id}`) clients, exactly as it fans out
its embedded engine's runs. The engine keeps running in Python; only
`manager.broadcast(message, topic)` becomes a POST of the same message.

* :class:`HttpTransport` - where roomcast is, and the API key.
* :class:`RedisTransport` - the fleet's Redis instead (roomcast's ingest
  channels ``backtest_events`` and ``backtest_stream_events``).
* :class:`EventSink` - ordered, batched, non-blocking delivery to one
  producer endpoint.
* :class:`WebSocketLogHandler` - a ``logging.Handler`` turning records into
  seed 002 ``log_entry`` events.
* :class:`BacktestProgressStreamer` - seed 002's lifecycle events
  (``backtest_start``, ``backtest_progress``, ``backtest_complete``,
  ``backtest_error``), with :func:`setup_backtest_logging`.
* :class:`BacktestStreamPublisher` - seed 003's stream events (``progress``,
  ``trade``, ``equity``, ``metrics``, ``complete``, ``error``), what seed
  003's ``StreamingBacktestEngine`` emits.

And the other direction, roomcast's native protocol (``/v1/ws``) from asyncio:

* :class:`Subscriber` - rooms as typed events (:class:`Message`,
  :class:`Gap`, :class:`Subscribed`, :class:`Connected`,
  :class:`Disconnected`, :class:`ServerError`), resuming and failing over
  across a fleet's nodes. Needs ``websockets`` (the ``subscriber`` extra);
  importing this package does not.
"""

from .transport import HttpTransport, PublishError, RedisTransport
from .sink import EventSink
from .seed002 import BacktestProgressStreamer, WebSocketLogHandler, setup_backtest_logging
from .seed003 import BacktestStreamPublisher
from .subscriber import (
    Connected,
    Disconnected,
    Event,
    Gap,
    Message,
    Position,
    ServerError,
    Subscribed,
    Subscriber,
    SubscriberError,
)

__all__ = [
    "HttpTransport",
    "PublishError",
    "RedisTransport",
    "EventSink",
    "WebSocketLogHandler",
    "BacktestProgressStreamer",
    "setup_backtest_logging",
    "BacktestStreamPublisher",
    "Subscriber",
    "SubscriberError",
    "Event",
    "Connected",
    "Disconnected",
    "Subscribed",
    "Message",
    "Gap",
    "ServerError",
    "Position",
]
