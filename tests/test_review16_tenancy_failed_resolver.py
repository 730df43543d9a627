"""A middleware tenant function that raises, or answers no tenant id, leaves the request with no
tenant (README: "leaves the request with none"), also where a tenant was already in scope: one the
server was started under (every request task of uvicorn inherits it) or one earlier code left on a
server thread. Before, the request kept that tenant, and its spans went to that tenant's project
although the function that should have named the request's tenant had failed.

Real uvicorn + Starlette and a real werkzeug server on loopback, spans in the local store."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from werkzeug.serving import make_server

import autotrace
from autotrace.middleware import TenantASGIMiddleware, TenantWSGIMiddleware
from tests.helpers import Traced
from tests.test_web_frameworks import uvicorn_server


def _failing(answer: str) -> Any:
    def resolve(_: Any) -> Any:
        if answer == "raises":
            raise KeyError("no auth")
        return "" if answer == "empty" else None
    return resolve


@contextmanager
def _uvicorn_in_tenant(app: Any) -> Iterator[str]:
    """uvicorn started inside ``autotrace.tenant("ops")``: its request tasks inherit that scope."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="error"))

    def serve() -> None:
        with autotrace.tenant("ops"):
            server.run(sockets=[sock])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.mark.parametrize(("answer", "tenant"), [("raises", None), ("empty", None), ("none", "ops")])
def test_asgi_a_failed_tenant_function_leaves_no_tenant_of_the_servers_scope(
        traced: Traced, answer: str, tenant: str | None) -> None:
    async def work(request: Any) -> JSONResponse:
        with autotrace.start_span("work"):
            return JSONResponse({"tenant": autotrace.current_tenant()})

    app = TenantASGIMiddleware(Starlette(routes=[Route("/w", work)]), _failing(answer))
    with _uvicorn_in_tenant(app) as url:
        assert httpx.get(f"{url}/w").json() == {"tenant": tenant}
    # a None leaves the scope's tenant (an outer layer's own wins; README), a failure leaves none
    assert [(r["name"], r["tenant"]) for r in traced.records()] == [("work", tenant)]
    assert autotrace.stats().get("tenant_resolver_errors") == (None if answer == "none" else 1)


@pytest.mark.parametrize(("answer", "tenant"), [("raises", None), ("empty", None), ("none", "ops")])
def test_wsgi_a_failed_tenant_function_leaves_no_tenant_left_on_the_server_thread(
        traced: Traced, answer: str, tenant: str | None) -> None:
    def work(environ: Any, start_response: Any) -> list[bytes]:
        with autotrace.start_span("work"):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(autotrace.current_tenant()).encode()]

    server = make_server("127.0.0.1", 0, TenantWSGIMiddleware(work, _failing(answer)))

    def serve() -> None:
        autotrace.set_tenant("ops")  # left on the thread that serves the requests
        server.serve_forever(poll_interval=0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/w", timeout=10) as response:
            assert response.read() == str(tenant).encode()
    finally:
        server.shutdown()
        thread.join(10)
    assert [(r["name"], r["tenant"]) for r in traced.records()] == [("work", tenant)]


def test_asgi_a_failed_tenant_function_under_an_outer_tenants_span_leaves_its_trace(traced: Traced) -> None:
    """Under an outer layer's span of a tenant, a request whose function failed starts a trace of
    its own with no tenant: under that span its spans took the span's tenant."""
    async def work(request: Any) -> JSONResponse:
        with autotrace.start_span("work"):
            return JSONResponse({"tenant": autotrace.current_tenant()})

    inner = TenantASGIMiddleware(Starlette(routes=[Route("/w", work)]), _failing("raises"))

    async def site(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        with autotrace.tenant("site-a"), autotrace.trace_attributes(user_id="alice"), \
                autotrace.start_span("site-span"):
            await inner(scope, receive, send)

    with uvicorn_server(site) as url:
        assert httpx.get(f"{url}/w").json() == {"tenant": None}
    records = {r["name"]: r for r in traced.records()}
    assert [(name, r["tenant"], r["parent_id"] is None, r["user_id"]) for name, r in sorted(records.items())] == [
        ("site-span", "site-a", True, "alice"), ("work", None, True, None)]
    assert records["site-span"]["trace_id"] != records["work"]["trace_id"]
