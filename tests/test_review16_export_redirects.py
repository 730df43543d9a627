"""A Langfuse host given as ``http://`` behind an ingress that redirects to ``https://`` (nginx's
308): exports never follow a redirect (the keys would go along, to wherever it points), and every
batch was dropped with nothing but "HTTP 308" said. Now the warning and ``autotrace check`` say
where it redirects to (never its query)."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler

import pytest

import autotrace
from autotrace.export.connections import ConnectionPool
from autotrace.export.credentials import Credentials
from autotrace.export.key_check import check_keys
from autotrace.testing._loopback import LoopbackServer
from autotrace.testing.otlp_receiver import OtlpReceiver


class _Redirecting(LoopbackServer):
    def __init__(self, to: str) -> None:
        self.to = to
        self.paths: list[str] = []

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        self.paths.append(handler.path)
        handler.send_response(308)
        handler.send_header("Location", self.to + handler.path + "?session=secret-token")
        handler.send_header("Content-Length", "0")
        handler.end_headers()


def test_a_redirect_is_never_followed_and_the_warning_says_where_it_points(
        caplog: pytest.LogCaptureFixture) -> None:
    with OtlpReceiver() as elsewhere, _Redirecting(elsewhere.endpoint) as ingress:
        autotrace.install(langfuse_host=ingress.url, public_key="pk", secret_key="sk", unknown_tenant="default",
                          integrations=(), export_interval=0.05)
        with caplog.at_level(logging.WARNING, logger="autotrace"), autotrace.start_span("s"):
            pass
        assert autotrace.flush(5)
        assert ingress.paths == ["/api/public/otel/v1/traces"]
        assert elsewhere.requests == []  # not followed: the keys never went there
        target = f"{elsewhere.endpoint}/api/public/otel/v1/traces"
        warnings = [r.getMessage() for r in caplog.records if "HTTP 308" in r.getMessage()]
        assert warnings == [f"autotrace: export to default failed (HTTP 308: redirected to {target} (redirects "
                            "are never followed: the keys would go along)); batch dropped (counted)"]
        assert "secret-token" not in caplog.text
    assert autotrace.stats()["spans_dropped.export_failed"] == 1


def test_autotrace_check_says_where_a_redirect_points() -> None:
    with OtlpReceiver() as elsewhere, _Redirecting(elsewhere.endpoint) as ingress:
        found = check_keys("default", Credentials("pk", "sk"), ingress.url, 5.0, ConnectionPool())
        assert (found.outcome, found.detail) == (
            "failed", f"HTTP 308: redirected to {elsewhere.endpoint}/api/public/otel/v1/traces (redirects are "
                      "never followed: the keys would go along)")
        assert elsewhere.requests == []
