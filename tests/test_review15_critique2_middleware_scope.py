"""The tenant middleware, critiqued (15th pass): a tenant in scope where the server was started
(``asyncio.run`` of a server inside a ``tenant()`` block; every request task inherits it) never
owned the caller's span the middleware makes current, so a request resolving another tenant stays
in the caller's trace; only that scope's trace attributes are left behind."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import autotrace
from autotrace.middleware import TenantASGIMiddleware
from tests.helpers import Traced
from tests.test_web_frameworks import PARENT, TRACE

CALLER_SPAN = PARENT.split("-")[2]


def _serve_in_tenant(app: Any, sock: socket.socket, server: uvicorn.Server) -> None:
    with autotrace.tenant("ops"), autotrace.trace_attributes(user_id="ops-user"):
        server.run(sockets=[sock])


def test_a_request_served_under_the_servers_start_tenant_keeps_the_callers_trace(traced: Traced) -> None:
    async def work(request: Any) -> JSONResponse:
        with autotrace.start_span("work"):
            return JSONResponse({"tenant": autotrace.current_tenant()})

    app = TenantASGIMiddleware(Starlette(routes=[Route("/w", work)]), lambda scope: "acme")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
    thread = threading.Thread(target=_serve_in_tenant, args=(app, sock, server), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/w"
        assert httpx.get(url, headers={"traceparent": PARENT}).json() == {"tenant": "acme"}
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    records = [(r["name"], r["tenant"], r["trace_id"], r["parent_id"], r["user_id"]) for r in traced.records()]
    assert (records, autotrace.stats().get("tenant_new_trace")) == ([("work", "acme", TRACE, CALLER_SPAN, None)], None)
