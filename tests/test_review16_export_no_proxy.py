"""``NO_PROXY`` naming an IPv6 Langfuse as URLs write it, in brackets (``[fd00::5]``, or with the
port, ``[fd00::5]:3000``): the name matching (``urllib``'s) takes only the bare form, so exports to
an in-cluster Langfuse went through the corporate proxy the user had excluded it from."""

from __future__ import annotations

import pytest

import autotrace
from autotrace.export.proxy import Proxy, proxy_for
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_default_tenant, numbered_spans
from tests.proxy_server import ProxyServer
from tests.test_export_proxy import needs_ipv6


@pytest.mark.parametrize(("no_proxy", "direct"), [
    ("[fd00::5]", True), ("[fd00::5]:443", True), ("[FD00:0::5]", True), ("other.example, [fd00::5] ", True),
    ("fd00::5", True), ("fd00::/16", True),
    ("[fd00::5]:80", False), ("[fd00::6]", False), ("[not-an-address]", False), ("[fd00::5", False),
])
def test_an_ipv6_address_in_brackets_in_no_proxy(no_proxy: str, direct: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert proxy_for("https", "fd00::5", 443) == (None if direct else Proxy("proxy.internal", 3128))


@needs_ipv6
def test_spans_to_an_ipv6_langfuse_listed_in_brackets_never_reach_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = OtlpReceiver()
    receiver.host = "::1"
    with ProxyServer() as proxy, receiver as rx:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        monkeypatch.setenv("NO_PROXY", f"[::1]:{rx.port}")
        install_default_tenant(rx, "direct")
        numbered_spans(1)
        assert autotrace.flush(10)
        assert len(rx.wait_for_spans(1)) == 1
        assert proxy.lines == []
