"""Ordered, batched, non-blocking delivery of one run's events.

The engine never waits on the network: ``put`` queues a message and a
background thread POSTs what has queued, in order, as one array (up to
1,000 messages). A failed delivery that may succeed later (roomcast
restarting, 503) is retried with backoff, keeping the order; one roomcast
refuses (409, 422) is dropped and logged, so a broadcast failure never
crashes the engine (seed 002). ``flush`` waits until everything queued has
been handled: the terminal event is delivered before ``complete`` returns.
"""

import json
import logging
import math
import threading
import time
from collections import deque

from .transport import PublishError

#: Most messages roomcast takes in one request.
MAX_BATCH = 1000

log = logging.getLogger("roomcast_client")


def jsonable(value):
    """``value`` as plain JSON: numpy and other scalars with ``.item()``
    become Python numbers, and NaN or infinity (which JSON has no word for,
    and roomcast never sends) becomes ``None``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if hasattr(value, "item"):
        return jsonable(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


class EventSink:
    """Delivers messages to ``path`` through ``transport``, in order."""

    def __init__(self, transport, path, retries=5, backoff=0.2):
        self.transport = transport
        self.path = path
        self.retries = retries
        self.backoff = backoff
        self._queue = deque()
        self._cond = threading.Condition()
        self._pending = 0
        self._closed = False
        #: The last error a delivery ended with (``None`` when all went through).
        self.last_error = None
        self._thread = threading.Thread(
            target=self._run, name=f"roomcast-sink {path}", daemon=True
        )
        self._thread.start()

    def put(self, message):
        """Queues one message (a dict in the seed's shape); never blocks on
        I/O. Values JSON cannot carry are converted (:func:`jsonable`)."""
        message = jsonable(message)
        json.dumps(message, allow_nan=False)  # fails here, in the caller, if at all
        with self._cond:
            if self._closed:
                raise RuntimeError("EventSink is closed")
            self._queue.append(message)
            self._pending += 1
            self._cond.notify_all()

    def flush(self, timeout=30.0):
        """Waits until every queued message was delivered or dropped; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout=30.0):
        """Flushes, then stops the delivery thread."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _run(self):
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
            try:
                self._deliver(batch)
            except Exception:  # the thread must outlive any one batch
                log.exception("roomcast dropped %d message(s)", len(batch))
            with self._cond:
                self._pending -= len(batch)
                self._cond.notify_all()

    def _deliver(self, batch):
        for attempt in range(self.retries + 1):
            body = batch[0] if len(batch) == 1 else batch
            try:
                self.transport.post(self.path, body)
                self.last_error = None
                return
            except PublishError as e:
                self.last_error = e
                published = e.body.get("published", 0) if isinstance(e.body, dict) else 0
                if not e.retryable or attempt == self.retries:
                    log.warning("roomcast dropped %d message(s): %s", len(batch) - published, e)
                    return
                # Those roomcast took before refusing are not sent again.
                batch = batch[published:]
                if not batch:
                    return
                time.sleep(self.backoff * (2 ** attempt))
