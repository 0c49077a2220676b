"""Subscribe to roomcast's native protocol (``/v1/ws``) from asyncio.

:class:`Subscriber` keeps one WebSocket to roomcast (any node of a fleet),
joins rooms, and yields what arrives as typed events::

    async with Subscriber("ws://127.0.0.1:8000/v1/ws", rooms=["ticker:AAPL"]) as sub:
        async for event in sub:
            if isinstance(event, Message):
                print(event.room, event.seq, event.data["price"])

What it takes care of, so the application does not have to:

* **Reconnects** with jittered exponential backoff between
  ``min_reconnect_delay`` and ``max_reconnect_delay``, trying the ``urls`` in
  turn (fleet failover: any node serves any room).
* **Resume**: after a reconnect every room is subscribed again with the
  ``{room, seq, epoch}`` of the last message *yielded* (the server replays
  what came after it); :meth:`Subscriber.position` is that position.
* **No duplicates**: a message whose ``seq`` was already yielded in the same
  ``epoch`` is dropped, whichever connection it came over.
* **Gaps** are events: the server's ``gap`` messages and a resume it could
  not satisfy (``subscribed`` with ``recovered: false``) both yield a
  :class:`Gap` before the messages that follow it.
* **Heartbeats**: a ``{"type":"ping"}`` every ``heartbeat_interval`` seconds;
  nothing received within ``heartbeat_timeout`` after it means the
  connection is dead, and it is replaced.

Needs the ``websockets`` package (12 or later):
``pip install "roomcast-client[subscriber]"``. The publisher side of this
package does not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("roomcast_client")

#: Most rooms one ``subscribe`` message may name (the protocol's limit).
MAX_ROOMS_PER_SUBSCRIBE = 100

#: Largest message accepted from roomcast (a backtest replay can be large).
MAX_MESSAGE_SIZE = 64 * 1024 * 1024

#: Close codes after which reconnecting cannot help (with a fixed token):
#: 4001 the token expired, 4003 the token does not permit the stream.
_TOKEN_CLOSE_CODES = (4001, 4003)

#: HTTP answers to the upgrade that mean "not with this token".
_TOKEN_STATUSES = (401, 403)

#: Server error codes after which the room is not subscribed on this
#: connection, so it is dropped rather than subscribed again at every reconnect.
_ROOM_REFUSALS = ("bad_room", "forbidden", "subscription_limit", "room_limit")


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class Connected:
    """A connection is up: roomcast's ``welcome`` arrived.

    ``node`` names the fleet node serving it; ``url`` is where it connected.
    Every room is subscribed again (resuming) right after.
    """

    node: str
    url: str


@dataclass(frozen=True)
class Disconnected:
    """The connection ended; the subscriber reconnects after ``reconnect_delay``
    seconds (``None``: it does not, the subscriber is closing or failed).

    ``code`` is the WebSocket close code (1006 when the connection was lost
    without one, e.g. the node died or the heartbeat went unanswered).
    """

    code: int
    reason: str
    url: str = ""
    reconnect_delay: Optional[float] = None


@dataclass(frozen=True)
class Subscribed:
    """roomcast confirmed a room: ``seq`` is the room's latest, ``replayed``
    messages of it follow at once.

    ``recovered`` is ``None`` for a plain subscribe, ``True`` when a resume
    replays exactly everything missed, ``False`` when some is gone (a
    :class:`Gap` follows).
    """

    room: str
    epoch: int
    seq: int
    replayed: int
    recovered: Optional[bool] = None


@dataclass(frozen=True)
class Message:
    """One event of a room: ``data`` is the event as roomcast sends it
    (``{"type": "price_update", ...}``); ``replayed`` is true for messages
    sent from the room's history right after a (re)subscribe."""

    room: str
    seq: int
    epoch: int
    data: Any
    replayed: bool = False


@dataclass(frozen=True)
class Gap:
    """Messages of ``room`` were lost for good.

    ``reason``: ``"trimmed"`` (older than the history kept for resume),
    ``"lost"`` (live delivery lost them) — both with the missing range
    ``from_seq``..``to_seq`` — or ``"epoch"`` (the room's history restarted
    as lineage ``epoch``; no range, the next message starts the new lineage).
    """

    room: str
    epoch: int
    reason: str
    from_seq: Optional[int] = None
    to_seq: Optional[int] = None


@dataclass(frozen=True)
class ServerError:
    """roomcast refused something (``code`` as in docs/protocol-v1.md:
    ``bad_room``, ``forbidden``, ...); the connection stays open. A room that
    was refused (``room`` set) is no longer subscribed."""

    code: str
    message: str
    room: Optional[str] = None


Event = Union[Connected, Disconnected, Subscribed, Message, Gap, ServerError]


class Position(NamedTuple):
    """Where a room's stream stands for this subscriber: the last ``seq``
    yielded, in lineage ``epoch`` (``None`` until roomcast named it)."""

    seq: int
    epoch: Optional[int]


class SubscriberError(Exception):
    """The subscriber stopped for good (raised from the ``async for``).

    ``code`` is the close code or ``status`` the HTTP status that ended it.
    """

    def __init__(self, message: str, code: Optional[int] = None, status: Optional[int] = None):
        super().__init__(message)
        self.code = code
        self.status = status


Token = Union[str, Callable[[], Union[str, Awaitable[str]]]]


# ---------------------------------------------------------------- websockets


def _websockets_connect() -> Tuple[Callable[..., Any], str]:
    """The ``connect`` of the installed websockets and the name of its
    extra-headers argument (13+: the asyncio API; 12: the legacy one)."""
    try:
        from websockets.asyncio.client import connect

        return connect, "additional_headers"
    except ImportError:
        pass
    try:
        from websockets.client import connect  # websockets 12

        return connect, "extra_headers"
    except ImportError:
        raise ImportError(
            "roomcast_client.Subscriber needs the websockets package (12 or later): "
            'pip install "roomcast-client[subscriber]" (or pip install websockets)'
        ) from None


def _http_status(error: BaseException) -> Optional[int]:
    """The HTTP status of a refused upgrade, whichever websockets raised it."""
    status = getattr(error, "status_code", None)  # websockets 12 (legacy)
    if status is None:
        status = getattr(getattr(error, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _native_url(url: str) -> str:
    """``url`` with the path ``/v1/ws`` when it names none."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    if parts.path in ("", "/"):
        parts = parts._replace(path="/v1/ws")
    return urlunsplit(parts)


def canonical_room(room: str) -> str:
    """The room name as roomcast reports it (ticker symbols upper-cased), so
    messages can be matched to the subscription that asked for them."""
    if room.startswith("ticker:"):
        return "ticker:" + room[len("ticker:") :].upper()
    return room


# ---------------------------------------------------------------- subscriber


class _End:
    """Queue marker: iteration ends (closed or failed)."""


_END = _End()

#: A queued event with the subscription generation of its room (``None`` for
#: connection events), so events of a room unsubscribed since are dropped.
_Entry = Tuple[Optional[int], Event]


class Subscriber:
    """A resuming, failing-over subscription to roomcast rooms (see the module).

    ``urls``: one ``ws://host:port/v1/ws`` URL or several nodes of a fleet
    (a URL without a path gets ``/v1/ws``). ``rooms``: joined on the first
    connection. ``token``: a JWT sent as ``Authorization: Bearer``, or a
    function (plain or async) called before every connection for a fresh
    one. ``max_queue``: events held for a slow ``async for`` before the
    subscriber stops reading the socket (roomcast then conflates prices or,
    on ordered rooms, closes the connection, which is resumed).
    """

    def __init__(
        self,
        urls: Union[str, Sequence[str]],
        rooms: Iterable[str] = (),
        token: Optional[Token] = None,
        min_reconnect_delay: float = 0.5,
        max_reconnect_delay: float = 30.0,
        heartbeat_interval: float = 15.0,
        heartbeat_timeout: float = 10.0,
        max_queue: int = 10_000,
        open_timeout: float = 10.0,
    ) -> None:
        url_list = [urls] if isinstance(urls, str) else list(urls)
        if not url_list:
            raise ValueError("at least one URL is needed")
        if not 0 < min_reconnect_delay <= max_reconnect_delay:
            raise ValueError("need 0 < min_reconnect_delay <= max_reconnect_delay")
        if heartbeat_interval <= 0 or heartbeat_timeout <= 0:
            raise ValueError("heartbeat_interval and heartbeat_timeout must be positive")
        self._connect, self._headers_arg = _websockets_connect()
        self._urls: List[str] = [_native_url(u) for u in url_list]
        self._token = token
        self._min_delay = min_reconnect_delay
        self._max_delay = max_reconnect_delay
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat_timeout = heartbeat_timeout
        self._max_queue = max(1, max_queue)
        self._open_timeout = open_timeout

        # Subscribed rooms, in subscription order, each with its generation.
        self._rooms: Dict[str, int] = {}
        self._generation = 0
        # Per room: the position of the last event yielded (what resume sends).
        self._cursor: Dict[str, Position] = {}
        # Per room: where a plain subscribe started, as confirmed by roomcast
        # (used for resume until something of the room was yielded).
        self._baseline: Dict[str, Position] = {}
        for room in rooms:
            self._add_room(room, None)

        # Created by start(), inside the event loop (Python 3.9 binds them there).
        self._queue: "asyncio.Queue[Union[_Entry, _End]]" = None  # type: ignore[assignment]
        self._space: Optional[asyncio.Event] = None
        self._task: Optional[asyncio.Task[None]] = None
        self._ws: Any = None
        # True once the current connection's welcome arrived (its rooms are
        # being subscribed): later subscribes go out at once.
        self._live = False
        # Per room, on the current connection: messages still to come from
        # the history replay that followed its `subscribed`.
        self._replaying: Dict[str, int] = {}
        self._last_received = 0.0
        self._waiting_for_reader = False
        self._closed = False
        self._failure: Optional[SubscriberError] = None
        self.node: Optional[str] = None
        self.url: Optional[str] = None
        self.reconnects = 0

    # ------------------------------------------------------------ public API

    async def __aenter__(self) -> "Subscriber":
        self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Event]:
        self.start()
        return self

    async def __anext__(self) -> Event:
        self.start()
        while True:
            if self._closed:
                raise StopAsyncIteration
            entry = await self._queue.get()
            if self._space is not None and self._queue.qsize() < self._max_queue:
                self._space.set()
            if isinstance(entry, _End):
                self._queue.put_nowait(entry)  # every later call ends too
                if self._failure is not None:
                    raise self._failure
                raise StopAsyncIteration
            event = self._accept(*entry)
            if event is not None:
                return event

    def start(self) -> None:
        """Starts connecting (``async with`` and ``async for`` do it)."""
        if self._task is None and not self._closed:
            self._queue = asyncio.Queue()
            self._space = asyncio.Event()
            self._space.set()
            self._task = asyncio.ensure_future(self._run())

    async def subscribe(
        self, room: str, from_seq: Optional[int] = None, epoch: Optional[int] = None
    ) -> None:
        """Joins ``room``: from now on, or (``from_seq``) with every retained
        message after ``from_seq`` (``0``: the whole retained history) in
        lineage ``epoch`` (default: the room's current one). Already
        subscribed: nothing happens. Confirmed by a :class:`Subscribed` event."""
        room = canonical_room(room)
        if room in self._rooms:
            return
        self._add_room(room, None if from_seq is None else Position(from_seq, epoch))
        if self._live:
            await self._send_subscribe([room])

    async def unsubscribe(self, room: str) -> None:
        """Leaves ``room``: no event of it is yielded after this returns, and
        its position is forgotten."""
        room = canonical_room(room)
        if self._rooms.pop(room, None) is None:
            return
        self._cursor.pop(room, None)
        self._baseline.pop(room, None)
        self._replaying.pop(room, None)
        if self._live:
            await self._send({"type": "unsubscribe", "rooms": [room]})

    def position(self, room: str) -> Optional[Position]:
        """The ``(seq, epoch)`` of the last message of ``room`` yielded (or
        where its subscription started); ``None`` when nothing is known yet."""
        room = canonical_room(room)
        return self._cursor.get(room) or self._baseline.get(room)

    @property
    def pending(self) -> int:
        """Events received and not yet yielded (duplicates among them are
        dropped when their turn comes)."""
        return 0 if self._queue is None else self._queue.qsize()

    @property
    def rooms(self) -> List[str]:
        """The rooms subscribed, in subscription order."""
        return list(self._rooms)

    async def close(self) -> None:
        """Ends the session (``{"type":"close"}``), stops reconnecting and ends
        the ``async for``; events not yet yielded are dropped."""
        if self._closed:
            return
        self._closed = True
        ws, task = self._ws, self._task
        if ws is not None:
            try:
                await self._send({"type": "close"})
                await asyncio.wait_for(ws.close(), timeout=2)
            except Exception:  # the connection is going away either way
                pass
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self._queue is not None:
            self._queue.put_nowait(_END)

    # ------------------------------------------------------------ rooms

    def _add_room(self, room: str, start: Optional[Position]) -> None:
        room = canonical_room(room)
        self._generation += 1
        self._rooms[room] = self._generation
        self._cursor.pop(room, None)
        self._baseline.pop(room, None)
        if start is not None:
            self._cursor[room] = start

    def _resume_entry(self, room: str) -> Union[str, Dict[str, Any]]:
        """``room``'s entry in a subscribe: its name, or where to resume."""
        at = self._cursor.get(room) or self._baseline.get(room)
        if at is None:
            return room
        entry: Dict[str, Any] = {"room": room, "seq": at.seq}
        if at.epoch is not None:
            entry["epoch"] = at.epoch
        return entry

    async def _send_subscribe(self, rooms: List[str]) -> None:
        for room in rooms:
            self._replaying.pop(room, None)
        for i in range(0, len(rooms), MAX_ROOMS_PER_SUBSCRIBE):
            batch = rooms[i : i + MAX_ROOMS_PER_SUBSCRIBE]
            await self._send(
                {"type": "subscribe", "rooms": [self._resume_entry(r) for r in batch]}
            )

    async def _send(self, message: Dict[str, Any]) -> None:
        ws = self._ws
        if ws is not None:
            await ws.send(json.dumps(message, separators=(",", ":")))

    # ------------------------------------------------------------ yielding

    def _accept(self, generation: Optional[int], event: Event) -> Optional[Event]:
        """``event`` if it is to be yielded now (updating the room's
        position), ``None`` for a duplicate or an event of a room left since."""
        room = getattr(event, "room", None)
        if generation is not None and (room is None or self._rooms.get(room) != generation):
            return None
        if isinstance(event, Message):
            at = self._cursor.get(event.room) or self._baseline.get(event.room)
            if at is not None and at.epoch in (None, event.epoch) and event.seq <= at.seq:
                return None  # already yielded (or before where the subscription starts)
            self._cursor[event.room] = Position(event.seq, event.epoch)
        elif isinstance(event, Subscribed):
            at = self._cursor.get(event.room)
            if at is None:
                if event.recovered is None:
                    self._cursor[event.room] = Position(event.seq, event.epoch)
            elif at.epoch is None:
                self._cursor[event.room] = Position(at.seq, event.epoch)
        elif isinstance(event, Gap):
            at = self._cursor.get(event.room)
            if event.reason == "epoch":
                if at is not None and at.epoch == event.epoch:
                    return None  # already in that lineage
                self._cursor[event.room] = Position(0, event.epoch)
            elif event.to_seq is not None:
                if at is not None and at.epoch in (None, event.epoch) and event.to_seq <= at.seq:
                    return None  # told already
                if at is None or at.epoch in (None, event.epoch):
                    self._cursor[event.room] = Position(event.to_seq, event.epoch)
        elif isinstance(event, Connected):
            self.node, self.url = event.node, event.url
        return event

    async def _emit(self, event: Event, generation: Optional[int] = None) -> None:
        """Queues ``event``; waits (not reading the socket) while the queue is full."""
        assert self._space is not None
        if self._queue.qsize() >= self._max_queue:
            self._space.clear()
            self._waiting_for_reader = True
            try:
                await self._space.wait()
            finally:
                self._waiting_for_reader = False
        self._queue.put_nowait((generation, event))

    # ------------------------------------------------------------ connection loop

    def _backoff(self, attempt: int) -> float:
        """Delay before reconnect ``attempt`` (0-based): doubling from the
        minimum, capped at the maximum, with +-20 % jitter."""
        base = min(self._max_delay, self._min_delay * (2 ** min(attempt, 32)))
        return min(self._max_delay, base * random.uniform(0.8, 1.2))

    async def _token_value(self) -> Optional[str]:
        if self._token is None or isinstance(self._token, str):
            return self._token
        value = self._token()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        return value  # type: ignore[return-value]

    async def _open(self, url: str) -> Any:
        kwargs: Dict[str, Any] = {
            "open_timeout": self._open_timeout,
            "ping_interval": None,  # heartbeats are the protocol's own pings
            "close_timeout": 2,
            "max_size": MAX_MESSAGE_SIZE,
        }
        token = await self._token_value()
        if token:
            kwargs[self._headers_arg] = {"Authorization": f"Bearer {token}"}
        return await self._connect(url, **kwargs)

    async def _run(self) -> None:
        attempt = 0
        index = 0
        try:
            while not self._closed:
                url = self._urls[index % len(self._urls)]
                index += 1
                try:
                    ws = await self._open(url)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    status = _http_status(error)
                    if status in _TOKEN_STATUSES and not callable(self._token):
                        await self._fail(
                            SubscriberError(f"{url} refused the connection: HTTP {status}", status=status)
                        )
                        return
                    delay = self._backoff(attempt)
                    attempt += 1
                    log.info("roomcast: connecting to %s failed (%s); retrying in %.2f s", url, error, delay)
                    await asyncio.sleep(delay)
                    continue
                welcomed, code, reason = await self._session(ws, url)
                if self._closed:
                    return
                if code in _TOKEN_CLOSE_CODES and not callable(self._token):
                    await self._emit(Disconnected(code, reason, url, None))
                    await self._fail(SubscriberError(f"{url} closed the connection: {code} {reason}", code=code))
                    return
                if welcomed:
                    attempt = 0
                delay = self._backoff(attempt)
                attempt += 1
                self.reconnects += 1
                if welcomed:
                    await self._emit(Disconnected(code, reason, url, delay))
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            pass
        except Exception as error:  # a bug: surface it rather than hang
            log.exception("roomcast subscriber stopped")
            await self._fail(SubscriberError(f"subscriber stopped: {error!r}"))

    async def _fail(self, error: SubscriberError) -> None:
        self._failure = error
        self._queue.put_nowait(_END)

    async def _session(self, ws: Any, url: str) -> Tuple[bool, int, str]:
        """Serves one connection until it ends: whether it was welcomed, and
        its close code and reason."""
        from websockets.exceptions import ConnectionClosed

        self._ws = ws
        self._replaying.clear()
        loop = asyncio.get_running_loop()
        self._last_received = loop.time()
        heartbeat_lost = False
        welcomed = False

        async def heartbeat() -> None:
            nonlocal heartbeat_lost
            while True:
                await asyncio.sleep(self._heartbeat_interval)
                sent = loop.time()
                try:
                    await self._send({"type": "ping"})
                except Exception:
                    return  # the connection is ending; the reader sees it
                await asyncio.sleep(self._heartbeat_timeout)
                if self._last_received < sent and not self._waiting_for_reader:
                    heartbeat_lost = True
                    transport = getattr(ws, "transport", None)
                    if transport is not None:
                        transport.abort()
                    return

        beat = asyncio.ensure_future(heartbeat())
        try:
            async for raw in ws:
                self._last_received = loop.time()
                try:
                    message = json.loads(raw)
                except ValueError:
                    log.warning("roomcast sent a message that is not JSON: %.200r", raw)
                    continue
                if not isinstance(message, dict):
                    continue
                if message.get("type") == "welcome":
                    welcomed = True
                    await self._emit(Connected(str(message.get("node", "")), url))
                    if self._closed:
                        break
                    self._live = True
                    await self._send_subscribe(list(self._rooms))
                else:
                    try:
                        await self._handle(message)
                    except (KeyError, TypeError, ValueError):
                        log.warning("roomcast sent a malformed message: %.200r", raw)
        except ConnectionClosed:
            pass
        except OSError as error:
            log.info("roomcast connection to %s failed: %s", url, error)
        finally:
            beat.cancel()
            self._live = False
            self._ws = None
        code = int(getattr(ws, "close_code", None) or 1006)
        reason = str(getattr(ws, "close_reason", None) or "")
        if heartbeat_lost:
            code, reason = 1006, "heartbeat timeout"
        try:
            await asyncio.wait_for(ws.close(), timeout=2)
        except Exception:
            pass
        return welcomed, code, reason

    async def _handle(self, message: Dict[str, Any]) -> None:
        """Turns one server message into events."""
        kind = message.get("type")
        room = message.get("room")
        generation = self._rooms.get(room) if isinstance(room, str) else None
        if kind == "message":
            if generation is None:
                return
            left = self._replaying.get(room, 0)
            if left:
                self._replaying[room] = left - 1
            await self._emit(
                Message(room, int(message["seq"]), int(message["epoch"]), message.get("data"), left > 0),
                generation,
            )
        elif kind == "subscribed":
            if generation is None:
                return
            epoch, seq = int(message["epoch"]), int(message["seq"])
            replayed = int(message.get("replayed", 0))
            recovered = message.get("recovered")
            self._replaying[room] = replayed
            if recovered is None and room not in self._cursor and room not in self._baseline:
                self._baseline[room] = Position(seq, epoch)
            await self._emit(Subscribed(room, epoch, seq, replayed, recovered), generation)
            if recovered is False:
                gap = message.get("gap") or {}
                await self._emit(
                    Gap(room, epoch, str(message.get("reason", "trimmed")), gap.get("from"), gap.get("to")),
                    generation,
                )
        elif kind == "gap":
            if generation is None:
                return
            missed = message.get("missed") or {}
            await self._emit(
                Gap(room, int(message["epoch"]), str(message.get("reason", "lost")), missed.get("from"), missed.get("to")),
                generation,
            )
        elif kind == "error":
            code = str(message.get("code", ""))
            refused = canonical_room(room) if isinstance(room, str) else None
            if refused is not None and code in _ROOM_REFUSALS:
                self._rooms.pop(refused, None)
                self._cursor.pop(refused, None)
                self._baseline.pop(refused, None)
            await self._emit(ServerError(code, str(message.get("message", "")), refused))
        # pong, unsubscribed, auth_ok: nothing to tell (any message counts for the heartbeat)
