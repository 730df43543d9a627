"""Export review 4: interim (1xx) answers, a ``Retry-After`` date no clock can hold, and a TLS
handshake trickled through an ``https://`` proxy's tunnel. Real sockets on loopback: the project's OTLP receiver, the forward proxy
of ``tests/proxy_server.py`` serving TLS, and the test-only certificates of ``tests/certs``."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest

import autotrace
from autotrace.export.otlp_http import HttpTarget
from autotrace.export.sink import SinkResult
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import CERTS, server_tls
from tests.proxy_server import ProxyServer
from tests.test_export_edges import RawServer
from tests.test_export_review3 import _FailsNth, _install
from tests.test_export_too_large import _spans

#: An HTTP-date whose zone offset has 20 digits: ``email.utils`` overflows building its timedelta.
_OVERFLOWING_DATE = "Mon, 01 Jan 2024 00:00:00 +99999999999999999999"


class _DatedRefusals(_FailsNth):
    """``_FailsNth`` whose refusals carry ``Retry-After: _OVERFLOWING_DATE``."""

    @staticmethod
    def _respond(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str,
                 extra: dict[str, str] | None = None) -> None:
        if status >= 400:
            extra = {**(extra or {}), "Retry-After": _OVERFLOWING_DATE}
        OtlpReceiver._respond(handler, status, body, content_type, extra)


@pytest.mark.parametrize(("status", "retryable"), [(503, True), (401, False)])
def test_a_retry_after_date_that_overflows_is_ignored_and_the_status_still_decides(
        status: int, retryable: bool) -> None:
    """Old code let ``OverflowError`` out of ``send``: the answer's status was lost."""
    with _DatedRefusals({1: status}) as rx:
        target = HttpTarget(rx.endpoint + "/v1/traces", timeout=5.0)
        try:
            result = target.send(b"", {})
        finally:
            target.close()
    assert result == SinkResult(ok=False, retryable=retryable, retry_after=None, reason=f"HTTP {status}",
                                status=status)


def test_spans_taken_before_a_refusal_with_an_overflowing_retry_after_are_not_sent_again() -> None:
    """The batch's third request is refused so: the two requests taken before it are settled, not
    sent again with the retry (old code: the whole batch again, as an internal error)."""
    sizes = {f"step-{i}": 2_000 for i in range(10)}
    with _DatedRefusals({3: 503}) as rx:
        _install(rx.endpoint, max_export_bytes=10_000, max_retries=2)
        _spans(sizes)
        assert autotrace.flush(10)
        received = Counter(span.name for span in rx.spans)
    assert received == Counter(list(sizes))  # each exactly once
    stats = autotrace.stats()
    assert stats["spans_exported"] == 10 and stats["export_failures.langfuse:default"] == 1
    assert not [name for name in stats if name.startswith(("spans_dropped", "internal_errors"))]


@pytest.fixture
def trickling_tls_server() -> Iterator[int]:
    """A port whose server reads the ClientHello, then announces a 16 KiB handshake record and
    sends its bytes one every 20 ms: each read gets a byte well within any per-read timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(b"\x16\x03\x03\x40\x00")
            while not stop.wait(0.02):
                try:
                    conn.sendall(b"\x00")
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()


def test_a_tls_handshake_trickled_through_an_https_proxy_ends_at_the_export_timeout(
        trickling_tls_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """TLS inside the proxy's TLS: old code gave each read of the tunnel the whole timeout, so a
    Langfuse (or a middlebox) trickling its handshake held the export thread for minutes."""
    monkeypatch.setenv("SSL_CERT_FILE", str(CERTS / "ca.pem"))
    with ProxyServer(tls=server_tls()) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        target = HttpTarget(f"https://127.0.0.1:{trickling_tls_server}/v1/traces", timeout=0.5)
        outcome: dict[str, SinkResult] = {}
        sender = threading.Thread(target=lambda: outcome.update(result=target.send(b"x", {})), daemon=True)
        started = time.monotonic()
        sender.start()
        sender.join(20)  # old code: some 330 s (16 KiB at 20 ms a byte)
        target.close()
        assert not sender.is_alive(), f"send still running after {time.monotonic() - started:.0f} s"
        assert proxy.lines == [f"CONNECT 127.0.0.1:{trickling_tls_server} HTTP/1.1"]
    assert outcome["result"] == SinkResult(ok=False, retryable=True, reason="TimeoutError")


def _in_parts(answers: Iterator[tuple[bytes, ...]]) -> Callable[[socket.socket], bool]:
    """A ``RawServer`` responder sending each request the next of ``answers``, its parts 100 ms apart."""
    def respond(conn: socket.socket) -> bool:
        for index, part in enumerate(next(answers)):
            if index:
                time.sleep(0.1)
            conn.sendall(part)
        return True

    return respond


def test_an_interim_103_answer_is_skipped_and_each_request_gets_its_own_answer() -> None:
    """A server (or a CDN before it) sending 103 Early Hints before its answer: old code took the
    103 as the answer (the accepted spans dropped as refused) and kept the connection with the
    real 200 unread, which the next request then read as its own (refused spans counted exported)."""
    answers = iter([
        (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
         b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        (b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",),
    ])

    server = RawServer(_in_parts(answers))  # the answer after the hints, as a server working meanwhile
    target = HttpTarget(server.url + "/v1/traces", timeout=5.0)
    try:
        results = [target.send(b"spans", {}) for _ in range(3)]
    finally:
        target.close()
        server.close()
    assert results == [SinkResult(ok=True), SinkResult(ok=False, reason="HTTP 401", status=401), SinkResult(ok=True)]
    assert server.requests == 3


def test_a_connection_switched_to_another_protocol_is_never_reused() -> None:
    """A 101 answer (the export failed, final) leaves the connection speaking something else: old
    code kept it, and the next export read the other protocol's bytes as its answer."""
    answers = iter([
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
         b"\x81\x05hello"),  # a frame of the new protocol, a moment later
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",),
    ])
    server = RawServer(_in_parts(answers))
    target = HttpTarget(server.url + "/v1/traces", timeout=5.0)
    try:
        results = [target.send(b"spans", {}) for _ in range(2)]
    finally:
        target.close()
        server.close()
    assert results == [SinkResult(ok=False, reason="HTTP 101", status=101), SinkResult(ok=True)]
    assert (server.requests, server.connections) == (2, 2)
