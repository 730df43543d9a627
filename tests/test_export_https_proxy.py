"""Export through an ``https://`` proxy: TLS to the proxy, and for an https Langfuse a CONNECT
tunnel inside it carrying a second TLS session to Langfuse (TLS in TLS). Real sockets on loopback:
the forward proxy of ``tests/proxy_server.py`` serving TLS and an OTLP receiver, both with the
test-only certificates of ``tests/certs`` (trusted through ``SSL_CERT_FILE``)."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator

import pytest

import autotrace
from autotrace import cli
from autotrace.export.otlp_http import HttpTarget
from autotrace.export.proxy import Proxy, parse_proxy
from autotrace.export.sink import OK, SinkResult
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import CERTS, install_default_tenant, numbered_spans, server_tls, timed_send
from tests.proxy_server import BASIC, ENCODED, ProxyServer, assert_no_secret


@pytest.fixture
def https_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyServer]:
    """An ``https://`` proxy demanding ``BASIC``, named by both proxy variables."""
    monkeypatch.setenv("SSL_CERT_FILE", str(CERTS / "ca.pem"))
    with ProxyServer(require_auth=BASIC, tls=server_tls()) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url(ENCODED))
        monkeypatch.setenv("HTTP_PROXY", proxy.url(ENCODED))
        yield proxy


def test_an_https_proxy_url_is_read_with_its_default_port_and_credentials() -> None:
    proxy = parse_proxy(f"https://{ENCODED}@proxy.corp")
    assert proxy == Proxy("proxy.corp", 443, BASIC, secure=True)
    assert parse_proxy("HTTPS://proxy.corp:8443") == Proxy("proxy.corp", 8443, secure=True)
    assert (proxy.name, parse_proxy("http://proxy.corp").name) == ("https://proxy.corp:443", "proxy.corp:80")
    assert parse_proxy("https://[fd00::7]").name == "https://[fd00::7]:443"
    assert_no_secret(repr(proxy) + proxy.name)


def test_https_export_runs_tls_inside_the_proxys_tls_tunnel(
        tls_rx: OtlpReceiver, https_proxy: ProxyServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="autotrace"):
        install_default_tenant(tls_rx, "proxy")
        numbered_spans(2)
        with autotrace.start_span("scored"):
            autotrace.score("helpful", True)
        assert autotrace.flush(10)
        numbered_spans(2, prefix="later")
        assert autotrace.flush(10)  # the same tunnel, kept alive
    assert sorted(s.name for s in tls_rx.wait_for_spans(5)) == ["later-0", "later-1", "scored", "step-0", "step-1"]
    assert len(tls_rx.scores) == 1
    assert https_proxy.seen == [(f"CONNECT 127.0.0.1:{tls_rx.port} HTTP/1.1", BASIC)]
    assert https_proxy.hosts == [f"127.0.0.1:{tls_rx.port}"]
    assert https_proxy.failed_handshakes == 0
    assert all("proxy-authorization" not in request.headers for request in tls_rx.requests)
    assert autotrace.stats()["spans_exported"] == 5 and "export_failures" not in autotrace.stats()
    assert_no_secret(caplog.text)


def test_a_plain_http_langfuse_is_reached_over_tls_to_the_proxy_in_absolute_form(
        rx: OtlpReceiver, https_proxy: ProxyServer) -> None:
    install_default_tenant(rx, "proxy")
    numbered_spans(2)
    assert autotrace.flush(10)
    assert len(rx.wait_for_spans(2)) == 2
    assert https_proxy.seen == [(f"POST http://127.0.0.1:{rx.port}/api/public/otel/v1/traces HTTP/1.1", BASIC)]
    assert "proxy-authorization" not in rx.requests[0].headers  # the proxy took it off


def test_the_export_ca_file_and_client_certificate_serve_both_hops(monkeypatch: pytest.MonkeyPatch) -> None:
    """No process-wide CA: ``export_ca_file`` is trusted for the proxy's certificate and for
    Langfuse's, and the client certificate of mutual TLS reaches Langfuse inside the tunnel."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    mtls = server_tls(client_ca=CERTS / "client-ca.pem")
    with OtlpReceiver(tls=mtls) as langfuse, ProxyServer(tls=server_tls()) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        install_default_tenant(langfuse, "proxy", export_ca_file=str(CERTS / "ca.pem"), max_retries=0,
                               export_client_cert=str(CERTS / "client.pem"),
                               export_client_key=str(CERTS / "client-key.pem"))
        numbered_spans(2)
        assert autotrace.flush(10)
        assert sorted(s.name for s in langfuse.wait_for_spans(2)) == ["step-0", "step-1"]
        assert proxy.lines == [f"CONNECT 127.0.0.1:{langfuse.port} HTTP/1.1"]
    assert "export_failures" not in autotrace.stats()


def test_a_body_larger_than_a_tls_record_crosses_both_layers_intact(
        tls_rx: OtlpReceiver, https_proxy: ProxyServer) -> None:
    """800 kB: sent in slices through the inner session, each into many records of both layers."""
    payload = {"pad": os.urandom(400_000).hex()}
    target = HttpTarget(tls_rx.url + "/api/public/scores", timeout=10)
    try:
        result = target.send(json.dumps(payload).encode(), {"Content-Type": "application/json"})
    finally:
        target.close()
    assert result.ok, result.reason
    assert tls_rx.scores[0][1] == payload


def _answer_then_close(server: socket.socket, body: bytes) -> None:
    """Serve TLS: read one request whole, answer ``body`` with "Connection: close", close."""
    conn, _ = server.accept()
    with server_tls().wrap_socket(conn, server_side=True) as tls:
        request = b""
        while b"\r\n\r\n" not in request:
            request += tls.recv(65536)
        head, _, sent = request.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(sent) < length:
            sent += tls.recv(65536)
        tls.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


@pytest.mark.parametrize("proxy_tls", [False, True], ids=["http-proxy", "https-proxy"])
def test_an_answer_that_closes_the_connection_is_read_whole_through_the_tunnel(
        proxy_tls: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """http.client closes such a connection before reading the body: the tunnel stays open for the
    body's reader, as a socket does."""
    monkeypatch.setenv("SSL_CERT_FILE", str(CERTS / "ca.pem"))
    body = os.urandom(48_000)  # many TLS records: not all read with the headers
    answers: list[bytes] = []

    def keep(answer: bytes, _headers: object) -> SinkResult:
        answers.append(answer)
        return OK

    with socket.create_server(("127.0.0.1", 0)) as server, ProxyServer(tls=server_tls() if proxy_tls else None) as proxy:
        threading.Thread(target=_answer_then_close, args=(server, body), daemon=True).start()
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        target = HttpTarget(f"https://127.0.0.1:{server.getsockname()[1]}/v1/traces", timeout=10)
        try:
            result = target.send(b"spans", {}, keep)
        finally:
            target.close()
    assert result.ok and answers == [body]


def test_faults_of_langfuse_inside_the_tunnel_fail_exports_counted_and_tracing_resumes(
        tls_rx: OtlpReceiver, https_proxy: ProxyServer) -> None:
    """A slow answer (past the export timeout, mid-read of the inner session), a 500, a dropped
    connection: each fails that export, counted; the next one, after the fault, goes through."""
    install_default_tenant(tls_rx, "proxy", max_retries=0, export_timeout=0.5)
    faults = [lambda: tls_rx.delay(1.5), lambda: tls_rx.fail_with(500, times=1), lambda: tls_rx.drop_connections(2)]
    for number, fault in enumerate(faults):
        fault()
        numbered_spans(1, prefix=f"lost-{number}")
        assert autotrace.flush(10)
        tls_rx.delay(0)
        numbered_spans(1, prefix=f"after-{number}")
        assert autotrace.flush(10)
    names = sorted(s.name for s in tls_rx.wait_for_spans(3) if s.name.startswith("after"))
    assert names == ["after-0-0", "after-1-0", "after-2-0"]
    stats = autotrace.stats()
    assert stats["export_failures.langfuse:default"] == 3 and stats["spans_dropped.export_failed"] == 3


def test_a_tunnel_the_https_proxy_dropped_while_idle_is_reopened_at_once(
        tls_rx: OtlpReceiver, https_proxy: ProxyServer) -> None:
    install_default_tenant(tls_rx, "proxy")
    numbered_spans(1)
    assert autotrace.flush(10)
    https_proxy.drop_tunnels()
    numbered_spans(1, prefix="after-drop")
    assert autotrace.flush(10)
    assert sorted(s.name for s in tls_rx.wait_for_spans(2)) == ["after-drop-0", "step-0"]
    assert https_proxy.lines == [f"CONNECT 127.0.0.1:{tls_rx.port} HTTP/1.1"] * 2
    assert "export_failures" not in autotrace.stats()


@pytest.mark.parametrize("langfuse_tls", [True, False], ids=["https-langfuse", "http-langfuse"])
def test_an_https_proxy_whose_certificate_is_not_trusted_gets_nothing(
        langfuse_tls: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The proxy shows the ``::1`` self-signed certificate: the client refuses it before a byte of
    the request (with the proxy's credentials) or of the spans is sent, blames the proxy, counts
    the failure and goes on."""
    monkeypatch.setenv("SSL_CERT_FILE", str(CERTS / "ca.pem"))
    with OtlpReceiver(tls=server_tls() if langfuse_tls else None) as langfuse, \
            ProxyServer(tls=server_tls("server-ipv6")) as proxy, caplog.at_level(logging.DEBUG, logger="autotrace"):
        monkeypatch.setenv("HTTPS_PROXY", proxy.url(ENCODED))
        monkeypatch.setenv("HTTP_PROXY", proxy.url(ENCODED))
        install_default_tenant(langfuse, "proxy", max_retries=0)
        with autotrace.start_span("request") as span:
            span.set_output("the host app's answer")
        assert autotrace.flush(10)
        assert (proxy.wait_failed_handshakes(1), proxy.seen, langfuse.requests) == (1, [], [])
    stats = autotrace.stats()
    assert stats["export_failures.langfuse:default"] == 1 and stats["spans_dropped.export_failed"] == 1
    assert "ProxyCertificateError" in caplog.text
    assert_no_secret(caplog.text)


def test_a_langfuse_certificate_refused_inside_a_trusted_proxys_tunnel_is_not_blamed_on_the_proxy(
        https_proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with OtlpReceiver(tls=server_tls("server-ipv6")) as langfuse:  # a certificate for ::1, not 127.0.0.1
        monkeypatch.setenv("LANGFUSE_HOST", langfuse.url)
        monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-1")
        monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-1")
        code = cli.main(["check", "--timeout", "5"])
        assert https_proxy.lines == [f"CONNECT 127.0.0.1:{langfuse.port} HTTP/1.1"]
    assert code == 1 and capsys.readouterr().out.splitlines()[0].endswith(
        "its TLS certificate is not trusted (see AUTOTRACE_EXPORT_CA_FILE) (SSLCertVerificationError)")


def test_autotrace_check_blames_an_untrusted_proxy_certificate_on_the_proxy(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], rx: OtlpReceiver) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(CERTS / "ca.pem"))
    with ProxyServer(tls=server_tls("server-ipv6")) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        monkeypatch.setenv("LANGFUSE_HOST", rx.url)
        monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-1")
        monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-1")
        code, port = cli.main(["check", "--timeout", "5"]), proxy.port
    assert code == 1 and capsys.readouterr().out.splitlines()[0] == (
        f"unreachable default  {rx.url} (key pk-lf-1, via proxy https://127.0.0.1:{port}): the proxy's "
        "TLS certificate is not trusted (see AUTOTRACE_EXPORT_CA_FILE) (ProxyCertificateError)")
    assert rx.requests == []


def test_a_proxy_that_never_answers_the_tls_handshake_cannot_outlast_the_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, accepted = socket.create_server(("127.0.0.1", 0)), []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()  # then silence
    monkeypatch.setenv("HTTPS_PROXY", f"https://127.0.0.1:{server.getsockname()[1]}")
    try:
        result, elapsed = timed_send(HttpTarget("https://127.0.0.1:9/v1/traces", timeout=0.5))
    finally:
        server.close()
        for conn, _ in accepted:
            conn.close()
    assert not result.ok and result.retryable and result.reason == "TimeoutError"
    assert elapsed < 2.0


def test_autotrace_check_names_the_https_proxy_and_reaches_langfuse_through_it(
        tls_rx: OtlpReceiver, https_proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    tls_rx.projects["pk-lf-acme"] = {"name": "Acme", "id": "cl-1"}
    monkeypatch.setenv("LANGFUSE_HOST", tls_rx.url)
    monkeypatch.setenv("AUTOTRACE_TENANT_ACME_PUBLIC_KEY", "pk-lf-acme")
    monkeypatch.setenv("AUTOTRACE_TENANT_ACME_SECRET_KEY", "sk-lf-acme")
    code = cli.main(["check"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0] == (f"ok          acme  {tls_rx.url} (key pk-lf-acme, via proxy https://127.0.0.1:"
                                   f'{https_proxy.port}): project "Acme" (cl-1), spans accepted')
    assert https_proxy.lines == [f"CONNECT 127.0.0.1:{tls_rx.port} HTTP/1.1"]  # one tunnel: export, projects API
    assert_no_secret(out)
