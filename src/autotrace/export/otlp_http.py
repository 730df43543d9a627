"""OTLP/HTTP protobuf export over a persistent stdlib connection (gzip, retry classification), through
the proxy the standard environment variables name, if any."""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import functools
import gzip
import http.client
import io
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import ReadableSpan

from .._config_parse import url_error
from ._host_health import host_health
from .bounded_connect import connect_within
from .connections import ConnectionPool
from .otlp_encode import encode_parts
from .otlp_response import partial_success
from .proxy import Proxy, ProxyError, proxy_for
from .sink import OK, SinkResult
from .tunnel import ProxyTLSConnection, TunnelledHTTPSConnection, TunnelRefused, authority

#: Client errors worth sending again: a timeout, "too early", throttling. Server errors are too (as
#: OpenTelemetry's OTLP exporter retries them), a CDN's 520-524 in front of an endpoint included,
#: except those that say the request can never be served.
_RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})
_FINAL_SERVER_ERRORS = frozenset({501, 505})


#: Most bytes of one export request before compression (``encode_requests``): a bigger batch goes in
#: several requests. Langfuse Cloud takes 5 MB a request; a proxy may take less (then see ``Destination``).
MAX_REQUEST_BYTES = 4 << 20

#: Most response bytes read; past them the connection is closed, not drained.
_MAX_RESPONSE_BYTES = 1 << 20
#: Most of a response's bytes kept for reading (an OTLP answer is a few dozen); the rest are thrown away.
_MAX_KEPT_BYTES = 64 << 10

#: Reads a 2xx answer (its body, cut to ``_MAX_KEPT_BYTES``, and lower-cased headers) into the outcome.
AnswerReader = Callable[[bytes, Mapping[str, str]], SinkResult]


def _bound(sock: socket.socket | None, deadline: float) -> None:
    """Let the next socket operation wait only until ``deadline``: the timeout is per operation,
    so a body trickled byte by byte would otherwise hold an export thread forever."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("export_timeout exceeded")
    if sock is not None:
        sock.settimeout(remaining)


class _DeadlineReader(io.RawIOBase):
    """The response's socket reader, each read bounded by the request's deadline: the status line
    and headers are read line by line too, so a server trickling them must not outlast it."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._raw, self._sock, self._deadline = raw, sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int | None:  # type: ignore[override]
        _bound(self._sock, self._deadline)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()  # releases the socket: the connection may have closed its side already
        super().close()


class _BoundedResponse(http.client.HTTPResponse):
    """An ``HTTPResponse`` read through a ``_DeadlineReader``, interim answers skipped."""

    def __init__(self, sock: socket.socket, debuglevel: int = 0, method: str | None = None,
                 url: str | None = None, *, deadline: float) -> None:
        super().__init__(sock, debuglevel, method, url)
        self.fp = io.BufferedReader(_DeadlineReader(self.fp.detach(), sock, deadline))

    def _read_status(self) -> tuple[str, int, str]:
        """The status line, an interim one (102 Processing, 103 Early Hints) read as the 100
        Continue that ``begin`` skips: the request's answer comes after it, and taken for the
        answer it would leave the real one to be read as the next request's."""
        version, status, reason = super()._read_status()  # type: ignore[misc]
        return version, (http.client.CONTINUE if 101 < status < 200 else status), reason


def exchange(
    conn: http.client.HTTPConnection, path: str, body: bytes, headers: Mapping[str, str], deadline: float,
    method: str = "POST", opened: Callable[[], None] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send one request (a POST of ``body`` unless ``method`` says otherwise) and read the response
    (by ``deadline``; a body over ``_MAX_RESPONSE_BYTES`` is cut off with the connection); returns
    the status, lower-cased headers and the response body's first ``_MAX_KEPT_BYTES``. ``opened``
    is called once a new connection is open, before anything is sent (it raises to send nothing)."""
    # set first: a proxy's answer to CONNECT, read while connecting, is bounded by the deadline too
    conn.response_class = functools.partial(_BoundedResponse, deadline=deadline)  # type: ignore[assignment]
    if conn.sock is None:
        conn.connect()  # bounded by the connection's own timeout
        if opened is not None:
            opened()
    sock = conn.sock  # kept: the connection forgets it when the response says "close"
    _bound(sock, deadline)  # sending: one timeout bounds a whole sendall
    try:
        conn.request(method, path, body=body, headers=dict(headers))
    except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError) as exc:  # (over TLS: an EOF, not a broken pipe)
        response = _early_answer(conn, exc)
    else:
        response = conn.getresponse()
    kept: list[bytes] = []
    received = 0
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        if received < _MAX_KEPT_BYTES:
            kept.append(chunk[:_MAX_KEPT_BYTES - received])
        received += len(chunk)
        if received > _MAX_RESPONSE_BYTES:
            conn.close()
            break
    response.close()  # read1 leaves a finished fixed-length response open: the next request needs it closed
    return response.status, {k.lower(): v for k, v in response.getheaders()}, b"".join(kept)


def _early_answer(conn: http.client.HTTPConnection, failure: OSError) -> http.client.HTTPResponse:
    """The answer of a server that stopped taking the body and closed (a proxy refusing its size
    with 413 at its headers, say): still readable, and the request's outcome; else ``failure``."""
    try:
        return conn.getresponse()
    except Exception:
        raise failure from None


def retry_after_seconds(raw: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delay-seconds or an HTTP-date; None when unusable."""
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError, OverflowError):  # a zone offset of 20 digits overflows
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=datetime.UTC)
        seconds = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no delay at all


def classify(status: int, headers: Mapping[str, str]) -> SinkResult:
    """Map an HTTP status to an export outcome: 2xx ok, throttling and 5xx retryable, else final."""
    if 200 <= status < 300:
        return OK
    retryable = status in _RETRYABLE_CLIENT_ERRORS or (500 <= status < 600 and status not in _FINAL_SERVER_ERRORS)
    return SinkResult(ok=False, retryable=retryable,
                      retry_after=retry_after_seconds(headers.get("retry-after")), reason=f"HTTP {status}",
                      status=status, detail=_redirect(status, headers.get("location")))


def _redirect(status: int, location: str | None) -> str:
    """What a redirect's failure says: where it points (scheme, host and path, never a query), as
    an ingress sending ``http://`` to ``https://`` does. Never followed: the keys would go along."""
    if not (300 <= status < 400 and location):
        return ""
    try:
        parts = urlsplit(location.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return "redirected (never followed)"
    where = parts.path
    if host:
        where = f"{parts.scheme}://" + (authority(host, port) if port else f"[{host}]" if ":" in host else host) + where
    where = "".join(c if c.isprintable() else "?" for c in where[:200])
    return f"redirected to {where} (redirects are never followed: the keys would go along)"


def _network_failure(exc: BaseException) -> str:
    """A network failure's ``reason``: the exception's type, or the status a proxy refused CONNECT
    with (never the rest of its answer)."""
    return str(exc) if isinstance(exc, TunnelRefused) else type(exc).__name__


def _tls_failure(exc: BaseException) -> str:
    """What a TLS failure says of its cause, in OpenSSL's words (an issuer not trusted, a name the
    certificate does not cover, a plain-HTTP port); "" for any other failure."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return str(exc.verify_message or exc.reason or "")[:200]
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or "")[:200]
    return ""


class HttpTarget:
    """POSTs to one URL over kept-alive connections taken from ``pool`` (the install's, shared by
    every destination: ``connections``), or a pool of its own keeping one. Through the proxy of
    ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` (unless ``NO_PROXY`` covers the host), chosen once,
    here: an https URL by a CONNECT tunnel, an http one in absolute form."""

    def __init__(self, url: str, timeout: float, pool: ConnectionPool | None = None) -> None:
        #: Why ``url`` cannot be used, if so. Not raised: a tenant's bad host (from its credentials,
        #: found on the export path) fails that tenant's exports, counted, and nothing else.
        self.problem: str | None = None
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            parts, port, self.problem = urlsplit(""), None, f"invalid URL ({url_error(exc)})"
        if self.problem is None and (parts.scheme not in ("http", "https") or not parts.hostname):
            self.problem = "not an http(s) URL"
        self.secure = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = port or (443 if self.secure else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self.proxy = self._proxy(parts.scheme)
        #: What the request line names, and headers added to each request: the absolute form and
        #: the proxy's credentials for plain HTTP through a proxy (a tunnel carries them in CONNECT).
        self._request_target = self.path
        self._proxy_headers: dict[str, str] = {}
        if self.proxy is not None and not self.secure:
            self._request_target = f"http://{authority(self.host, self.port)}{self.path}"
            self._proxy_headers = self.proxy.headers()
        self._own_pool = pool is None
        self.pool = ConnectionPool(max_idle=1) if pool is None else pool
        #: Which connections can serve this target: those to the same place, the same way.
        self.origin = (self.secure, self.host, self.port, self.proxy)
        #: Whether the host answers, shared by every target of ``pool`` sending there (``_host_health``).
        self.health = host_health(self.pool, self.origin, authority(self.host, self.port), timeout)
        #: The connection a request is on (``close`` cuts it short, at shutdown).
        self._in_flight: http.client.HTTPConnection | None = None
        #: Closed (``close``): nothing more is sent. A batch's later scores, or later requests of a
        #: batch sent in several, went on after shutdown had counted them lost.
        self._closed = False

    def _proxy(self, scheme: str) -> Proxy | None:
        """The proxy to go through, if any; an unusable one is this target's ``problem``."""
        if self.problem is not None:
            return None
        try:
            return proxy_for(scheme, self.host, self.port)
        except ProxyError as exc:
            self.problem = str(exc)  # never sent around a proxy the network may mandate
            return None

    def new_connection(self) -> http.client.HTTPConnection | None:
        """A connection not yet opened, whose opening (the host name's lookup included) is bounded
        by ``timeout``; None when TLS (to the host or to an ``https://`` proxy) has no context (see
        ``ConnectionPool.tls``)."""
        conn = self._unopened()
        if conn is not None:
            conn._create_connection = connect_within  # type: ignore[attr-defined]  # http.client's hook
        return conn

    def _unopened(self) -> http.client.HTTPConnection | None:
        proxy = self.proxy
        host, port = (proxy.host, proxy.port) if proxy is not None else (self.host, self.port)
        tls_to_first_hop = proxy.secure if proxy is not None else self.secure
        if not (self.secure or tls_to_first_hop):
            return http.client.HTTPConnection(host, port, timeout=self.timeout)
        context = self.pool.tls()
        if context is None:
            return None
        if proxy is None:
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=context)
        if not self.secure:  # a plain-HTTP host through an https:// proxy
            return ProxyTLSConnection(host, port, timeout=self.timeout, context=context)
        return TunnelledHTTPSConnection(self.host, self.port, via=(host, port), via_tls=proxy.secure,
                                        connect_headers=proxy.headers(), timeout=self.timeout, context=context)

    def send(self, body: bytes, headers: Mapping[str, str], read_answer: AnswerReader | None = None,
             method: str = "POST") -> SinkResult:
        """POST once (or send ``method``), within ``timeout`` overall; network errors are retryable
        and close the connection. A kept-alive connection the server closed while idle is retried at once on a
        new one: that is no failure of the endpoint. A 2xx answer is ``OK``, or what ``read_answer``
        makes of it; after a complete exchange the connection goes back to the pool."""
        if self.problem is not None:
            return SinkResult(ok=False, retryable=False, reason=self.problem)
        if self._closed:
            return SinkResult(ok=False, retryable=False, reason="closed")
        deadline = time.monotonic() + self.timeout
        if self._proxy_headers:
            headers = {**headers, **self._proxy_headers}
        for attempt in (1, 2):
            conn = (self.pool.take(self.origin) if attempt == 1 else None) or self.new_connection()
            if conn is None:
                return SinkResult(ok=False, retryable=False, reason="export TLS settings unusable")
            reused = conn.sock is not None
            self._in_flight = conn
            if self._closed:  # closed as it was taken: ``close`` may have missed it
                self._drop(conn)
                return SinkResult(ok=False, retryable=False, reason="closed")
            try:
                status, response_headers, answer = exchange(conn, self._request_target, body, headers, deadline, method,
                                                            self._still_open)
            except (ConnectionError, ssl.SSLEOFError) as exc:  # a TLS peer (a proxy's tunnel) may end without close_notify
                stale = reused and attempt == 1 and self._in_flight is conn  # and not closed by shutdown
                self._drop(conn)
                if stale:
                    continue
                self.health.answered()  # refused or cut at once (restarting, say): not hung
                return SinkResult(ok=False, retryable=True, reason=type(exc).__name__)
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                self._drop(conn)
                if isinstance(exc, TimeoutError):
                    self.health.timed_out()
                else:  # failed at once (a name not found, TLS refused): not hung either
                    self.health.answered()
                return SinkResult(ok=False, retryable=True, reason=_network_failure(exc), detail=_tls_failure(exc))
            except Exception as exc:
                if self._in_flight is not conn:  # closed meanwhile by shutdown: http.client fails oddly then
                    return SinkResult(ok=False, retryable=True, reason=f"closed ({type(exc).__name__})")
                self._drop(conn)  # never reuse a connection left mid-exchange
                raise
            except BaseException:
                self._drop(conn)
                raise
            break
        self.health.answered()
        if self._in_flight is not conn or not 200 <= status < 400:
            self._drop(conn)  # servers often close after an error response (or switch protocols); start clean
        else:
            self._in_flight = None
            self.pool.give_back(self.origin, conn)
        if read_answer is not None and 200 <= status < 300:
            return read_answer(answer, response_headers)
        return classify(status, response_headers)

    def _still_open(self) -> None:
        """A connection is open: closed meanwhile (``close`` finds no socket to cut while one is opened:
        a TLS handshake, a proxy's CONNECT), the request is not sent."""
        if self._closed:
            raise ConnectionAbortedError("closed while connecting")

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        if self._in_flight is conn:
            self._in_flight = None
        conn.close()

    def forget(self) -> None:
        """Drop the connections without a shutdown exchange (in a forked child: they are the parent's)."""
        self._in_flight = None
        if self._own_pool:
            self.pool.forget()

    def close(self) -> None:
        """Cut short a request under way (shutdown); a pool of its own is closed too (the install's
        is closed by its router)."""
        self._closed = True
        conn, self._in_flight = self._in_flight, None  # taken first: shutdown may close while a worker sends
        if conn is not None:
            _cut(conn)
        if self._own_pool:
            self.pool.close()


def _cut(conn: http.client.HTTPConnection) -> None:
    """Close ``conn`` under a worker waiting on it: shut down first, as closing the socket alone
    leaves a read blocked on it (Linux) until the answer comes, the request taken meanwhile.
    ``socket.shutdown`` itself on a TLS socket, whose own would drop its TLS state under the reader;
    TLS inside an ``https://`` proxy's (``LayeredTLS``, no socket) has its socket to the proxy shut down."""
    sock = conn.sock
    sock = getattr(sock, "_outer", sock)  # (``LayeredTLS.close`` waits for the reader a request has open)
    if isinstance(sock, socket.socket):
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:  # not connected (yet, or any more)
            pass
    conn.close()


def _accepted(rejected: int, message: str) -> SinkResult:
    """An accepted export's outcome: ``OK``, or the spans the endpoint refused for good with its
    message (a message alone is the endpoint's warning)."""
    return OK if not (rejected or message) else SinkResult(ok=True, rejected_spans=rejected, message=message)


def _read_answer(body: bytes, headers: Mapping[str, str]) -> SinkResult:
    """An accepted request's outcome, from its answer's ``partial_success``."""
    return _accepted(*partial_success(body, headers))


class OtlpHttpSink:
    """Exports spans as an OTLP ``ExportTraceServiceRequest`` (protobuf, gzip) to ``url``."""

    def __init__(self, url: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0,
                 name: str = "otlp", max_request_bytes: int = MAX_REQUEST_BYTES,
                 pool: ConnectionPool | None = None) -> None:
        self.name = name
        self.max_request_bytes = max_request_bytes
        self._target = HttpTarget(url, timeout, pool)
        self.health = self._target.health
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
            **(headers or {}),
        }

    def set_headers(self, headers: Mapping[str, str]) -> None:
        """Replace the extra headers (credential rotation)."""
        self._headers.update(headers)

    def export(self, spans: Sequence[ReadableSpan]) -> SinkResult:
        """Send ``spans`` in requests of at most ``max_request_bytes`` (before compression); the
        first that fails is the batch's outcome, the spans of the requests taken before it
        ``settled``: counted as delivered, and neither retried nor dropped with the rest."""
        rejected, message, sent = 0, "", 0
        for request, held in encode_parts(spans, self.max_request_bytes):
            result = self._target.send(gzip.compress(request, compresslevel=6), self._headers, _read_answer)
            if not result.ok:
                if not sent:
                    return result
                return dataclasses.replace(result, settled=tuple(spans[:sent]), rejected_spans=rejected,
                                           message=message)
            sent += held
            rejected, message = rejected + result.rejected_spans, result.message or message
        return _accepted(rejected, message)

    def probe(self) -> SinkResult:
        """Send one export request holding no span: the endpoint's answer to these headers (its
        keys, above all), with nothing stored (``key_check``)."""
        return self._target.send(gzip.compress(b""), self._headers, _read_answer)

    def after_fork(self) -> None:
        self._target.forget()

    def close(self) -> None:
        self._target.close()
