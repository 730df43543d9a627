"""Shutdown cutting a request under way, where the connection is not a plain socket or not open yet.

Through an ``https://`` proxy the connection is TLS inside the proxy's TLS (``LayeredTLS``, no
socket): ``close`` raised ``TypeError`` (``socket.socket.shutdown`` on it), counted as an internal
error, cut nothing, and left a Langfuse sink's scores target open, so a batch's later scores went on
after shutdown had counted them dropped. A target closed while its connection was being opened (a TLS
handshake, a proxy's CONNECT: no socket to cut yet) sent the request once it was open. Real sockets on
loopback: OTLP receivers, the test forward proxy, a relay that holds each connection a while.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

import autotrace
from autotrace.export.otlp_http import HttpTarget
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import CERTS, server_tls
from tests.proxy_server import ProxyServer, _pipe


def _wait(condition, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(condition())


class _SlowRelay:
    """Relays each connection to ``upstream`` only ``hold`` seconds after accepting it: the client's
    TLS handshake (or its proxy's answer to CONNECT) waits that long."""

    def __init__(self, upstream: tuple[str, int], hold: float) -> None:
        self._upstream, self._hold = upstream, hold
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        time.sleep(self._hold)
        upstream = socket.create_connection(self._upstream)
        threading.Thread(target=_pipe, args=(upstream, conn), daemon=True).start()
        _pipe(conn, upstream)

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(CERTS / "ca.pem"))
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def tls_langfuse(trusted: None) -> Iterator[OtlpReceiver]:
    with OtlpReceiver(tls=server_tls()) as receiver:
        yield receiver


@pytest.fixture
def https_proxy(tls_langfuse: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyServer]:
    with ProxyServer(tls=server_tls()) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        yield proxy


def _sending(target: HttpTarget) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []
    sender = threading.Thread(target=lambda: outcome.append(target.send(b"{}", {})), daemon=True)
    sender.start()
    return sender, outcome


def test_closing_a_target_behind_an_https_proxy_cuts_its_request(
        tls_langfuse: OtlpReceiver, https_proxy: ProxyServer) -> None:
    tls_langfuse.delay(3.0)
    target = HttpTarget(tls_langfuse.url + "/api/public/scores", timeout=10.0)
    sender, outcome = _sending(target)
    assert _wait(lambda: target._in_flight is not None and target._in_flight.sock is not None)
    assert type(target._in_flight.sock).__name__ == "LayeredTLS"  # type: ignore[union-attr]  # TLS in TLS
    time.sleep(0.2)  # the request is sent; the answer is 3 s away
    target.close()  # raised TypeError, cutting nothing
    sender.join(timeout=2.0)
    assert not sender.is_alive()  # the old close left it waiting for the answer, then taken: ok
    assert outcome[0].ok is False  # type: ignore[attr-defined]
    assert target.send(b"{}", {}).reason == "closed"


def test_scores_under_way_through_an_https_proxy_stop_at_shutdown(
        tls_langfuse: OtlpReceiver, https_proxy: ProxyServer) -> None:
    tls_langfuse.delay(0.05)  # each score is a request of its own: the batch of 40 takes 2 s
    autotrace.install(local_store="off", integrations=(), langfuse_host=tls_langfuse.endpoint, public_key="pk",
                      secret_key="sk", unknown_tenant="default", export_interval=0.05)
    for _ in range(40):
        assert autotrace.score("helpful", 1.0, trace_id="0af7651916cd43dd8448eb211c80319c") is not None
    assert _wait(lambda: len(tls_langfuse.scores) >= 3)
    autotrace.shutdown(0.2)
    at_shutdown = autotrace.stats()
    time.sleep(0.5)  # the old code went on sending the batch's scores meanwhile
    assert autotrace.stats() == at_shutdown
    assert not [name for name in at_shutdown if name.startswith("internal_errors")]
    exported = at_shutdown.get("scores_exported", 0)
    assert exported >= 3 and exported + at_shutdown["scores_dropped.shutdown"] == 40
    assert exported <= len(tls_langfuse.scores) <= exported + 1  # the request cut short, at most


@pytest.mark.parametrize("route", ["tls", "tunnel"])
def test_a_target_closed_while_its_connection_opens_sends_nothing(
        trusted: None, monkeypatch: pytest.MonkeyPatch, route: str) -> None:
    with OtlpReceiver(tls=server_tls()) as langfuse, ProxyServer() as proxy:
        relay = _SlowRelay(("127.0.0.1", langfuse.port if route == "tls" else proxy.port), hold=1.0)
        url = langfuse.url
        if route == "tls":  # the TLS handshake waits
            url = url.replace(f":{langfuse.port}", f":{relay.port}")
        else:  # the proxy's answer to CONNECT waits
            monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{relay.port}")
        try:
            target = HttpTarget(url + "/api/public/scores", timeout=10.0)
            sender, outcome = _sending(target)
            assert _wait(lambda: target._in_flight is not None)
            time.sleep(0.3)  # connecting: the relay holds it 1 s
            target.close()
            sender.join(timeout=3.0)
            assert not sender.is_alive()
            time.sleep(0.2)
            assert outcome[0].ok is False  # type: ignore[attr-defined]  # it was sent once open, and taken
            assert langfuse.scores == [] and langfuse.requests == []
        finally:
            relay.close()
