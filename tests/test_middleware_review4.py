"""The tenant middleware, reviewed (fourth pass), under real servers: a request whose tenant differs
from that of the span it arrives under (an outer layer's, when a sub-application is wrapped again
and names another tenant) starts a trace of its own, as ``autotrace.tenant`` does there: under
that span its spans went to the other tenant's project (counted as ``tenant_mismatch``)."""

from __future__ import annotations

import urllib.request
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import autotrace
from autotrace.middleware import TenantASGIMiddleware, TenantWSGIMiddleware
from tests.helpers import Traced
from tests.test_middleware_review3 import wsgiref_server
from tests.test_web_frameworks import uvicorn_server


def _split(traced: Traced) -> list[tuple[str, str, bool]]:
    """Each record's name and tenant, and whether it is a root; the two are in different traces."""
    records = traced.records()
    assert len({r["trace_id"] for r in records}) == 2
    stats = autotrace.stats()
    assert (stats.get("tenant_new_trace"), stats.get("tenant_mismatch")) == (1, None)
    return sorted((r["name"], r["tenant"], r["parent_id"] is None) for r in records)


def test_an_asgi_sub_application_of_another_tenant_starts_its_own_trace(traced: Traced) -> None:
    async def partner(request: Any) -> JSONResponse:
        with autotrace.start_span("partner-work"):
            return JSONResponse({"tenant": autotrace.current_tenant()})

    inner = TenantASGIMiddleware(Starlette(routes=[Route("/w", partner)]), lambda scope: "partner-b")
    outer = Starlette(routes=[Mount("/partner", inner)])

    async def site(scope: Any, receive: Any, send: Any) -> None:  # a layer of the site's, in the same task
        if scope["type"] != "http":
            return await outer(scope, receive, send)
        with autotrace.start_span("site-span"):
            await outer(scope, receive, send)
            with autotrace.start_span("site-after"):  # back in the site's trace and tenant
                assert autotrace.current_tenant() == "site-a"

    with uvicorn_server(TenantASGIMiddleware(site, lambda scope: "site-a")) as url:
        assert httpx.get(f"{url}/partner/w").json() == {"tenant": "partner-b"}
    assert _split(traced) == [("partner-work", "partner-b", True), ("site-after", "site-a", False),
                              ("site-span", "site-a", True)]


def test_a_wsgi_sub_application_of_another_tenant_starts_its_own_trace(traced: Traced) -> None:
    def partner(environ: Any, start_response: Any) -> list[bytes]:
        with autotrace.start_span("partner-work"):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(autotrace.current_tenant()).encode()]

    def site(environ: Any, start_response: Any) -> Any:
        with autotrace.start_span("site-span"):
            return dispatcher(environ, start_response)

    dispatcher = DispatcherMiddleware(partner, {"/partner": TenantWSGIMiddleware(partner, lambda env: "partner-b")})
    with wsgiref_server(TenantWSGIMiddleware(site, lambda env: "site-a")) as url:
        with urllib.request.urlopen(f"{url}/partner/w", timeout=10) as response:
            assert response.read() == b"partner-b"
    assert _split(traced) == [("partner-work", "partner-b", True), ("site-span", "site-a", True)]
