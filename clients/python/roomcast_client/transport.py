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
