"""The tenant middleware, reviewed (15th pass), under real servers: a sub-application wrapped again
that names another tenant, entered under the outer tenant's scope but no span of autotrace's (only
the caller's span, and trace attributes a layer of the site set), starts a trace of its own
without the site's user and session ids, as ``autotrace.tenant`` does there."""

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
from tests.test_web_frameworks import PARENT, TRACE, uvicorn_server

CALLER_SPAN = PARENT.split("-")[2]
#: (name, tenant, in the caller's trace, parent span, user id, session id)
SPLIT = [("partner-work", "partner-b", False, None, None, None),
         ("site-after", "site-a", True, CALLER_SPAN, "alice", "s-1")]


def _records(traced: Traced) -> list[tuple[Any, ...]]:
    return sorted((r["name"], r["tenant"], r["trace_id"] == TRACE, r["parent_id"], r["user_id"], r["session_id"])
                  for r in traced.records())


def test_an_asgi_sub_application_of_another_tenant_leaves_the_sites_trace_and_attributes(traced: Traced) -> None:
    async def partner(request: Any) -> JSONResponse:
        with autotrace.start_span("partner-work"):
            return JSONResponse({"tenant": autotrace.current_tenant()})

    outer = Starlette(routes=[Mount("/partner", TenantASGIMiddleware(
        Starlette(routes=[Route("/w", partner)]), lambda scope: "partner-b"))])

    async def site(scope: Any, receive: Any, send: Any) -> None:  # the site's layer: no span, trace attributes
        if scope["type"] != "http":
            return await outer(scope, receive, send)
        with autotrace.trace_attributes(user_id="alice", session_id="s-1"):
            await outer(scope, receive, send)
            with autotrace.start_span("site-after"):
                pass

    with uvicorn_server(TenantASGIMiddleware(site, lambda scope: "site-a")) as url:
        assert httpx.get(f"{url}/partner/w", headers={"traceparent": PARENT}).json() == {"tenant": "partner-b"}
    assert (_records(traced), autotrace.stats().get("tenant_new_trace")) == (SPLIT, 1)  # the caller's span left


def test_a_wsgi_sub_application_of_another_tenant_leaves_the_sites_trace_and_attributes(traced: Traced) -> None:
    def partner(environ: Any, start_response: Any) -> list[bytes]:
        with autotrace.start_span("partner-work"):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(autotrace.current_tenant()).encode()]

    dispatcher = DispatcherMiddleware(partner, {"/partner": TenantWSGIMiddleware(partner, lambda env: "partner-b")})

    def site(environ: Any, start_response: Any) -> Any:
        with autotrace.trace_attributes(user_id="alice", session_id="s-1"):
            body = dispatcher(environ, start_response)
            with autotrace.start_span("site-after"):
                return body

    with wsgiref_server(TenantWSGIMiddleware(site, lambda env: "site-a")) as url:
        request = urllib.request.Request(f"{url}/partner/w", headers={"traceparent": PARENT})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.read() == b"partner-b"
    assert (_records(traced), autotrace.stats().get("tenant_new_trace")) == (SPLIT, 1)  # the caller's span left
