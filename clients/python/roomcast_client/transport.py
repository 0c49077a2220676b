"""HTTP transport to roomcast's producer endpoints (standard library only)."""

import json
import urllib.error
import urllib.request


class PublishError(Exception):
    """roomcast refused or could not take a request.

    ``status`` is the HTTP status (``None`` when roomcast was unreachable);
    ``body`` its JSON answer, when it gave one.
    """

    def __init__(self, message, status=None, body=None):
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def retryable(self):
        """Whether sending the same request again may succeed (unreachable, 503)."""
        return self.status is None or self.status in (502, 503, 504)


class HttpTransport:
    """Where roomcast is: ``HttpTransport("http://127.0.0.1:8000", api_key=...)``.

    The API key (protected publishing arrives with roomcast's authentication)
    is sent as ``Authorization: Bearer <key>``.
    """

    def __init__(self, base_url="http://127.0.0.1:8000", api_key=None, timeout=10.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def post(self, path, body):
        """POSTs ``body`` (JSON-serialisable) to ``path``; roomcast's JSON answer."""
        data = json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = {"error": raw.decode("utf-8", "replace")}
            raise PublishError(
                f"roomcast answered {e.code} to {path}: {answer.get('error', answer)}",
                status=e.code,
                body=answer,
            ) from None
        except (urllib.error.URLError, OSError) as e:
            raise PublishError(f"roomcast unreachable at {self.base_url}: {e}") from None


class RedisTransport:
    """The fleet's Redis as the transport: ``RedisTransport("redis://127.0.0.1:6379")``.

    In fleet mode roomcast's ingest (one node, under a lease) reads the
    channels ``backtest_events`` (seed 002 messages, each with its
    ``"topic"``) and ``backtest_stream_events`` (seed 003 messages, each with
    its ``"backtest_id"``) and publishes them exactly as the producer
    endpoints do. Pub/sub has no answer: a message roomcast refuses (an event
    after a run's end) is logged by roomcast, not raised here. A publish no
    roomcast node received (no ingest running) raises a retryable
    :class:`PublishError`. A publish whose reply was lost is sent again, so
    delivery is at least once: roomcast refuses a repeated start or end of a
    run, but a repeated log line or trade would show twice. Standard library
    only: it speaks just enough of the Redis protocol (``AUTH``, ``PUBLISH``).
    """

    def __init__(self, url="redis://127.0.0.1:6379", timeout=10.0):
        import urllib.parse

        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "redis":
            raise ValueError(f"expected a redis:// URL, got {url!r}")
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 6379
        self.username = urllib.parse.unquote(parsed.username) if parsed.username else None
        self.password = urllib.parse.unquote(parsed.password) if parsed.password else None
        self.timeout = timeout
        self._sock = None
        self._file = None
        import threading

        self._lock = threading.Lock()

    def post(self, path, body):
        """Publishes what the HTTP transport would POST to ``path``."""
        import urllib.parse

        split = urllib.parse.urlsplit(path)
        messages = body if isinstance(body, list) else [body]
        parts = split.path.strip("/").split("/")
        if split.path == "/api/v1/backtest/events":
            topic = dict(urllib.parse.parse_qsl(split.query)).get("topic", "backtest")
            channel = "backtest_events"
            messages = [{**m, "topic": topic} for m in messages]
        elif len(parts) == 6 and parts[:4] == ["api", "ws", "stream", "backtest"] and parts[5] == "events":
            channel = "backtest_stream_events"
            messages = [{**m, "backtest_id": urllib.parse.unquote(parts[4])} for m in messages]
        else:
            raise ValueError(f"no Redis channel carries {path}")
        payload = json.dumps(messages, allow_nan=False, separators=(",", ":"))
        with self._lock:
            receivers = self._command("PUBLISH", channel, payload)
        if receivers == 0:
            raise PublishError(f"no roomcast node is ingesting {channel} on {self.host}:{self.port}")
        return {"status": "success", "receivers": receivers}

    def close(self):
        with self._lock:
            self._disconnect()

    def _command(self, *args):
        for attempt in (0, 1):
            try:
                if self._sock is None:
                    self._connect()
                self._send(args)
                return self._reply()
            except (OSError, ConnectionError) as e:
                self._disconnect()
                if attempt == 1:
                    raise PublishError(f"redis unreachable at {self.host}:{self.port}: {e}") from None

    def _connect(self):
        import socket

        self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self._file = self._sock.makefile("rb")
        if self.password is not None:
            auth = ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            self._send(auth)
            try:
                self._reply()
            except PublishError:
                self._disconnect()  # never reuse an unauthenticated connection
                raise

    def _disconnect(self):
        for closable in (self._file, self._sock):
            try:
                if closable is not None:
                    closable.close()
            except OSError:
                pass
        self._sock = self._file = None

    def _send(self, args):
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg.encode() if isinstance(arg, str) else arg
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self._sock.sendall(b"".join(out))

    def _reply(self):
        line = self._file.readline()
        if not line:
            raise ConnectionError("connection closed")
        kind, rest = line[:1], line[1:].rstrip(b"\r\n")
        if kind == b"-":
            # Redis refused the command (auth, permissions): sending it again will not help.
            raise PublishError(f"redis error: {rest.decode(errors='replace')}", status=400)
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest.decode()
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._file.read(n + 2)[:-2]
        raise ConnectionError(f"unexpected redis reply {line!r}")
