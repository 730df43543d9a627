"""OTLP/HTTP protobuf export over a persistent stdlib connection (gzip, retry classification)."""

from __future__ import annotations

import gzip
import http.client
import ssl
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import ReadableSpan

from .otlp_encode import encode_spans
from .sink import OK, SinkResult

_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def post(
    conn: http.client.HTTPConnection, path: str, body: bytes, headers: Mapping[str, str]
) -> tuple[int, dict[str, str]]:
    """POST ``body`` and read the whole response; returns status and lower-cased headers."""
    conn.request("POST", path, body=body, headers=dict(headers))
    response = conn.getresponse()
    response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}


def classify(status: int, headers: Mapping[str, str]) -> SinkResult:
    """Map an HTTP status to an export outcome: 2xx ok, throttling and 5xx retryable, else final."""
    if 200 <= status < 300:
        return OK
    retry_after = None
    raw = headers.get("retry-after")
    if raw:
        try:
            retry_after = max(0.0, float(raw))
        except ValueError:
            retry_after = None
    return SinkResult(ok=False, retryable=status in _RETRYABLE_STATUS, retry_after=retry_after,
                      reason=f"HTTP {status}")


class HttpTarget:
    """One persistent HTTP(S) connection to a URL, reopened after any failure."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.secure = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.secure else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.secure:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def send(self, body: bytes, headers: Mapping[str, str]) -> SinkResult:
        """POST once; network errors are retryable and close the connection."""
        try:
            status, response_headers = post(self.connection(), self.path, body, headers)
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            self.close()
            return SinkResult(ok=False, retryable=True, reason=f"{type(exc).__name__}")
        if status >= 400:
            self.close()  # servers often close after an error response; start clean
        return classify(status, response_headers)

    def forget(self) -> None:
        """Drop the connection object without a shutdown exchange (it belongs to the parent process)."""
        self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class OtlpHttpSink:
    """Exports spans as an OTLP ``ExportTraceServiceRequest`` (protobuf, gzip) to ``url``."""

    def __init__(self, url: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0,
                 name: str = "otlp") -> None:
        self.name = name
        self._target = HttpTarget(url, timeout)
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
            **(headers or {}),
        }

    def set_headers(self, headers: Mapping[str, str]) -> None:
        """Replace the extra headers (credential rotation)."""
        self._headers.update(headers)

    def export(self, spans: Sequence[ReadableSpan]) -> SinkResult:
        body = gzip.compress(encode_spans(spans), compresslevel=6)
        return self._target.send(body, self._headers)

    def after_fork(self) -> None:
        self._target.forget()

    def close(self) -> None:
        self._target.close()
