"""Export through the standard proxy variables (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
``NO_PROXY``), and over HTTPS: real sockets on loopback only (127.0.0.1, and ``::1``) — a forward proxy
(``tests/proxy_server.py``) and an OTLP receiver serving TLS with the test-only certificates of
``tests/certs`` (the client trusts their CA through ``SSL_CERT_FILE``)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

import autotrace
from autotrace.export.otlp_http import HttpTarget
from autotrace.export.proxy import Proxy, ProxyError, parse_proxy, proxy_for
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import CERTS, install_default_tenant, numbered_spans, server_tls, timed_send
from tests.proxy_server import BASIC, ENCODED, ProxyServer, assert_no_secret


def _has_ipv6_loopback() -> bool:
    try:
        with socket.create_server(("::1", 0), family=socket.AF_INET6):
            return True
    except OSError:
        return False


#: For the tests of a Langfuse named by an IPv6 address: a machine may have IPv6 turned off.
needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")


@pytest.fixture
def proxy() -> Iterator[ProxyServer]:
    with ProxyServer() as server:
        yield server


# -- reading the environment ------------------------------------------------------------------------
def test_no_proxy_variable_means_a_direct_connection() -> None:
    assert proxy_for("https", "langfuse.example.com", 443) is None


def test_the_scheme_picks_the_variable_and_all_proxy_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://secure-proxy:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain-proxy:8080")
    assert proxy_for("https", "h", 443) == Proxy("secure-proxy", 3128)
    assert proxy_for("http", "h", 80) == Proxy("plain-proxy", 8080)
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("ALL_PROXY", "http://any-proxy")
    assert proxy_for("https", "h", 443) == Proxy("any-proxy", 80)


def test_lower_case_wins_and_an_empty_lower_case_value_turns_the_upper_case_one_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper:1")
    monkeypatch.setenv("https_proxy", "http://lower:2")
    assert proxy_for("https", "h") == Proxy("lower", 2)
    monkeypatch.setenv("https_proxy", "")
    assert proxy_for("https", "h") is None


@pytest.mark.parametrize("no_proxy", ["*", "127.0.0.1", "example.com,127.0.0.1", ".0.0.1", "127.0.0.1:4318"])
def test_no_proxy_covering_the_host_bypasses_the_proxy(no_proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert proxy_for("https", "127.0.0.1", 4318) is None


def test_no_proxy_matches_domain_suffixes_only_and_loopback_is_not_special(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("no_proxy", ".example.com, internal")
    assert proxy_for("https", "langfuse.example.com") is None
    assert proxy_for("https", "langfuse.internal") is None
    assert proxy_for("https", "notexample.com") == Proxy("proxy", 3128)
    assert proxy_for("https", "127.0.0.1") == Proxy("proxy", 3128)
    assert proxy_for("https", "localhost") == Proxy("proxy", 3128)


def test_credentials_are_percent_decoded_into_basic_proxy_authorization() -> None:
    proxy = parse_proxy(f"http://{ENCODED}@proxy.corp:3128/")
    assert (proxy.host, proxy.port, proxy.headers()) == ("proxy.corp", 3128, {"Proxy-Authorization": BASIC})
    assert parse_proxy("proxy.corp:8080") == Proxy("proxy.corp", 8080)  # no scheme: http://
    assert parse_proxy("http://[::1]:3128").host == "::1"
    assert_no_secret(repr(proxy))


@pytest.mark.parametrize(("url", "why"), [
    (f"socks5://{ENCODED}@127.0.0.1:1080", "scheme 'socks5'"),
    (f"http://{ENCODED}@", "no host"),
    (f"http://{ENCODED}@proxy:99999", "port"),
    (f"http://{ENCODED}@proxy:31x8", "port"),
    (f"http://{ENCODED}@proxy:0", "port"),
], ids=["socks5", "no-host", "port-too-high", "port-not-a-number", "port-zero"])
def test_a_proxy_that_cannot_be_used_is_an_error_without_its_credentials(
        url: str, why: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", url)
    with pytest.raises(ProxyError) as raised:
        proxy_for("https", "langfuse.example.com", 443)
    assert why in str(raised.value) and "HTTPS_PROXY" in str(raised.value)
    assert_no_secret(str(raised.value))


# -- exporting ----------------------------------------------------------------------------------------
def test_https_export_without_a_proxy_reaches_the_tls_receiver(tls_rx: OtlpReceiver) -> None:
    assert tls_rx.endpoint.startswith("https://127.0.0.1:")
    install_default_tenant(tls_rx, "proxy")
    numbered_spans(3)
    assert autotrace.flush(10)
    assert sorted(s.name for s in tls_rx.wait_for_spans(3)) == ["step-0", "step-1", "step-2"]
    assert autotrace.stats()["spans_exported"] == 3


def test_https_export_goes_through_the_proxy_by_connect_with_its_credentials(
        tls_rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with ProxyServer(require_auth=BASIC) as proxy, caplog.at_level(logging.DEBUG, logger="autotrace"):
        monkeypatch.setenv("HTTPS_PROXY", proxy.url(ENCODED))
        install_default_tenant(tls_rx, "proxy")
        numbered_spans(2)
        assert autotrace.flush(10)
        numbered_spans(2, prefix="later")
        assert autotrace.flush(10)  # the same tunnel, kept alive
        assert len(tls_rx.wait_for_spans(4)) == 4
        assert proxy.seen == [(f"CONNECT 127.0.0.1:{tls_rx.port} HTTP/1.1", BASIC)]
        assert proxy.hosts == [f"127.0.0.1:{tls_rx.port}"]
    assert autotrace.stats()["spans_exported"] == 4
    assert "proxy-authorization" not in tls_rx.requests[0].headers  # it went to the proxy only
    assert_no_secret(caplog.text)


@pytest.fixture
def ipv6_tls_rx(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """An OTLP receiver serving HTTPS on ``::1``, whose self-signed certificate the client trusts."""
    monkeypatch.setenv("SSL_CERT_FILE", str(CERTS / "server-ipv6.pem"))
    receiver = OtlpReceiver(tls=server_tls("server-ipv6"))
    receiver.host = "::1"
    with receiver:
        yield receiver


@needs_ipv6
def test_a_langfuse_named_by_an_ipv6_address_is_reached_through_the_proxy_tunnel(
        ipv6_tls_rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """CONNECT names an IPv6 literal in brackets, as a proxy parses an authority (not ``::1:port``),
    with a Host header; inside the tunnel, TLS checks the certificate against the address."""
    rx = ipv6_tls_rx
    assert rx.endpoint == f"https://[::1]:{rx.port}"
    with ProxyServer(require_auth=BASIC) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url(ENCODED))
        install_default_tenant(rx, "proxy")
        numbered_spans(2)
        assert autotrace.flush(10)
        assert sorted(s.name for s in rx.wait_for_spans(2)) == ["step-0", "step-1"]
        assert proxy.seen == [(f"CONNECT [::1]:{rx.port} HTTP/1.1", BASIC)]
        assert proxy.hosts == [f"[::1]:{rx.port}"]
    assert rx.requests[0].headers["host"] == f"[::1]:{rx.port}"
    assert rx.requests[0].peer[0] == "::1"  # the proxy's own connection, on the address it was given


@needs_ipv6
def test_a_plain_http_langfuse_named_by_an_ipv6_address_goes_through_the_proxy_in_absolute_form(
        proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = OtlpReceiver()
    receiver.host = "::1"
    with receiver as rx:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        install_default_tenant(rx, "proxy")
        numbered_spans(1)
        assert autotrace.flush(10)
        assert len(rx.wait_for_spans(1)) == 1
        assert proxy.lines == [f"POST http://[::1]:{rx.port}/api/public/otel/v1/traces HTTP/1.1"]


def test_a_tunnel_the_proxy_dropped_while_idle_is_reopened_at_once(
        tls_rx: OtlpReceiver, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    install_default_tenant(tls_rx, "proxy")
    numbered_spans(1)
    assert autotrace.flush(10)
    proxy.drop_tunnels()
    numbered_spans(1, prefix="after-drop")
    assert autotrace.flush(10)
    assert len(tls_rx.wait_for_spans(2)) == 2
    assert proxy.lines == [f"CONNECT 127.0.0.1:{tls_rx.port} HTTP/1.1"] * 2
    assert "export_failures" not in autotrace.stats()


def test_http_export_through_http_proxy_uses_the_absolute_form(
        rx: OtlpReceiver, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("http_proxy", proxy.url(ENCODED))
    with caplog.at_level(logging.DEBUG, logger="autotrace"):
        install_default_tenant(rx, "proxy")
        numbered_spans(2)
        with autotrace.start_span("scored"):
            autotrace.score("helpful", True)
        assert autotrace.flush(10)
    assert len(rx.wait_for_spans(3)) == 3 and len(rx.scores) == 1
    base = f"http://127.0.0.1:{rx.port}"
    assert (f"POST {base}/api/public/otel/v1/traces HTTP/1.1", BASIC) in proxy.seen
    assert (f"POST {base}/api/public/scores HTTP/1.1", BASIC) in proxy.seen
    assert all(line.startswith(f"POST {base}/") for line in proxy.lines)
    assert_no_secret(caplog.text)


@pytest.mark.parametrize(("no_proxy", "host", "direct"), [
    ("10.0.0.0/8", "10.96.12.3", True),
    (".svc, 10.0.0.0/8 ,192.168.0.0/16", "192.168.7.1", True),
    ("10.0.0.1/8", "10.200.0.9", True),  # host bits set: read as the range, as curl does
    ("fd00::/8", "fd12::3", True),
    ("fd00::/8", "::1", False),
    ("10.0.0.0/8", "11.0.0.1", False),
    ("10.0.0.0/8", "::ffff:10.0.0.1", False),  # another family
    ("10.0.0.0/8", "10.example.com", False),  # a name, not an address
    ("10.0.0.0/33,not/a/range", "10.0.0.1", False),  # unreadable ranges are skipped
])
def test_no_proxy_address_ranges_cover_addresses_in_them(
        no_proxy: str, host: str, direct: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert proxy_for("https", host, 443) == (None if direct else Proxy("proxy", 3128))


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "127.0.0.0/8"])
def test_no_proxy_covering_the_host_sends_directly(
        no_proxy: str, rx: OtlpReceiver, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", no_proxy)
    install_default_tenant(rx, "proxy")
    numbered_spans(2)
    assert autotrace.flush(10)
    assert len(rx.wait_for_spans(2)) == 2
    assert proxy.seen == []


@pytest.mark.parametrize("credentials", ["", "proxy-user:wrong-s3cret"], ids=["none", "wrong"])
def test_a_proxy_refusing_connect_fails_the_export_counted_and_the_app_goes_on(
        credentials: str, tls_rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    with ProxyServer(require_auth=BASIC) as proxy, caplog.at_level(logging.DEBUG, logger="autotrace"):
        monkeypatch.setenv("HTTPS_PROXY", proxy.url(credentials))
        install_default_tenant(tls_rx, "proxy", max_retries=0)
        with autotrace.start_span("request") as span:
            span.set_output("the host app's answer")
            answer = 6 * 7
        assert autotrace.flush(10)
        assert answer == 42
        assert proxy.lines == [f"CONNECT 127.0.0.1:{tls_rx.port} HTTP/1.1"]
    assert tls_rx.spans == []
    stats = autotrace.stats()
    assert stats["export_failures.langfuse:default"] == 1 and stats["spans_dropped.export_failed"] == 1
    assert "proxy refused CONNECT (HTTP 407)" in caplog.text
    assert_no_secret(caplog.text)


def test_a_plain_http_proxy_refusing_the_request_fails_the_export_counted(
        rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with ProxyServer(require_auth=BASIC) as proxy, caplog.at_level(logging.DEBUG, logger="autotrace"):
        monkeypatch.setenv("HTTP_PROXY", proxy.url("proxy-user:wrong-s3cret"))
        install_default_tenant(rx, "proxy", max_retries=0)
        numbered_spans(1)
        assert autotrace.flush(10)
        assert len(proxy.lines) == 1
    assert rx.spans == [] and autotrace.stats()["export_failures"] == 1
    assert "HTTP 407" in caplog.text
    assert_no_secret(caplog.text)


@pytest.mark.parametrize(("variable", "url", "why"), [
    ("HTTPS_PROXY", f"socks5://{ENCODED}@127.0.0.1:1080", "scheme 'socks5'"),
    ("ALL_PROXY", f"socks5h://{ENCODED}@127.0.0.1:1080", "scheme 'socks5h'"),
    ("https_proxy", f"http://{ENCODED}@127.0.0.1:port", "port"),
], ids=["socks5", "socks5h-all-proxy", "bad-port"])
def test_an_unusable_proxy_fails_exports_counted_and_never_sends_directly(
        variable: str, url: str, why: str, tls_rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(variable, url)
    with caplog.at_level(logging.DEBUG, logger="autotrace"):
        install_default_tenant(tls_rx, "proxy", max_retries=0)
        numbered_spans(2)
        with autotrace.start_span("scored"):
            autotrace.score("helpful", True)
        assert autotrace.flush(10)
    assert tls_rx.requests == []
    assert autotrace.stats()["export_failures.langfuse:default"] >= 1
    assert why in caplog.text
    assert_no_secret(caplog.text)


def test_the_target_decides_once_and_keeps_its_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"socks5://{ENCODED}@127.0.0.1:1080")
    target = HttpTarget("https://langfuse.example.com/api/public/otel/v1/traces", timeout=1.0)
    monkeypatch.delenv("HTTPS_PROXY")
    result = target.send(b"", {})
    assert not result.ok and not result.retryable and "socks5" in result.reason
    assert_no_secret(result.reason)


def _trickle_connect_answers(server: socket.socket, stop: threading.Event) -> None:
    """Answer each CONNECT with a 200 whose header line does not end, a byte every 50 ms for 3 s."""
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n")
            until = time.monotonic() + 3.0  # then the connection ends: an unbounded client fails, not hangs
            while not stop.is_set() and time.monotonic() < until:
                try:
                    conn.sendall(b"X")
                except OSError:
                    break
                time.sleep(0.05)


def test_a_proxy_trickling_its_answer_to_connect_cannot_outlast_the_export_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, stop = socket.create_server(("127.0.0.1", 0)), threading.Event()
    threading.Thread(target=_trickle_connect_answers, args=(server, stop), daemon=True).start()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{server.getsockname()[1]}")
    try:
        result, elapsed = timed_send(HttpTarget("https://127.0.0.1:9/v1/traces", timeout=0.5))
    finally:
        stop.set()
        server.close()
    assert not result.ok and result.retryable and result.reason == "TimeoutError"
    assert elapsed < 2.0
