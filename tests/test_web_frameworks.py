"""The tenant middleware under real frameworks and servers: FastAPI/Starlette under uvicorn, Flask
under werkzeug's threaded server, real HTTP requests carrying W3C trace context and baggage."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, WebSocket
from fastapi.responses import StreamingResponse

import autotrace
from autotrace.middleware import TenantASGIMiddleware
from tests.helpers import Traced, shape

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE}-b7ad6b7169203331-01"


def header_tenant(scope: Any) -> str | None:
    """The tenant an auth layer would establish; here simply the ``x-tenant`` header."""
    return dict(scope["headers"]).get(b"x-tenant", b"").decode() or None


@contextmanager
def uvicorn_server(app: Any, **config: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a loopback port in a thread; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def headers(tenant: str | None = "acme", parent: str | None = PARENT, **more: str) -> dict[str, str]:
    out = {k.replace("_", "-"): v for k, v in more.items()}
    if tenant is not None:
        out["x-tenant"] = tenant
    if parent is not None:
        out["traceparent"] = parent
    return out


def by_name(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in records}


def joined(records: list[dict[str, Any]], tenant: str = "acme") -> bool:
    """Every record is in the caller's trace and ``tenant``'s."""
    return {(r["trace_id"], r["tenant"]) for r in records} == {(TRACE, tenant)}


def fastapi_app(**options: Any) -> FastAPI:
    app = FastAPI(**options)

    def dependency() -> str:
        with autotrace.start_tool("auth-lookup"):
            return autotrace.current_tenant() or "-"

    @app.get("/async")
    async def async_endpoint(who: str = Depends(dependency)) -> dict[str, Any]:
        with autotrace.start_chain("async-handler"):
            await asyncio.sleep(0)
            return {"tenant": autotrace.current_tenant(), "dep": who}

    @app.get("/sync")
    def sync_endpoint() -> dict[str, Any]:  # runs in anyio's thread pool
        with autotrace.start_chain("sync-handler"):
            return {"tenant": autotrace.current_tenant()}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> Any:
            for i in range(3):
                with autotrace.start_span(f"chunk-{i}"):
                    yield f"{autotrace.current_tenant()}\n"
        return StreamingResponse(body())

    @app.get("/background")
    async def background(tasks: BackgroundTasks) -> dict[str, str]:
        def after() -> None:
            with autotrace.start_span("after-response"):
                pass
        tasks.add_task(after)
        return {"ok": "yes"}

    @app.get("/http-error")
    async def http_error() -> None:
        with autotrace.start_chain("refusing"):
            raise HTTPException(status_code=403, detail="no")

    @app.get("/crash")
    async def crash() -> None:
        with autotrace.start_chain("crashing"):
            raise RuntimeError("boom")

    @app.get("/whoami")
    async def whoami() -> dict[str, Any]:
        return {"tenant": autotrace.current_tenant()}

    @app.websocket("/ws")
    async def ws(socket_: WebSocket) -> None:
        await socket_.accept()
        with autotrace.start_chain("ws-session"):
            text = await socket_.receive_text()
            await socket_.send_text(f"{autotrace.current_tenant()}:{text}")
        await socket_.close()

    return app


@pytest.fixture(params=["wrapped", "add_middleware"])
def form(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fastapi_url(form: str, traced: Traced) -> Iterator[str]:
    """The FastAPI app above behind the middleware, in both documented forms."""
    app: Any = fastapi_app()
    if form == "wrapped":
        app = TenantASGIMiddleware(app, tenant_from_scope=header_tenant)
    else:
        app.add_middleware(TenantASGIMiddleware, tenant_from_scope=header_tenant)
    with uvicorn_server(app) as url:
        yield url


def request_tree(records: list[dict[str, Any]], tenant: str = "acme") -> list[Any]:
    """The one request's tree (FastAPI's own request span at its root), after checking that it is
    in the caller's trace under the caller's span, and every span in ``tenant``'s, in both forms:
    with ``add_middleware`` the middleware runs inside FastAPI's request span, which it gives the
    tenant (``SpanPipeline.adopt``)."""
    assert len([r for r in records if r["parent_id"] == "b7ad6b7169203331"]) == 1  # under the caller's span
    assert {r["trace_id"] for r in records} == {TRACE}
    assert {r["tenant"] for r in records} == {tenant}
    return shape(records)


def ops(*endpoint: Any, serialization: bool = True, dependency: Any = ()) -> list[Any]:
    out = [("span", "fastapi.dependencies", list(dependency)), ("span", "fastapi.endpoint", list(endpoint))]
    return [*out, ("span", "fastapi.serialization", [])] if serialization else out


def test_fastapi_async_endpoint_and_dependency_join_the_callers_trace(
        fastapi_url: str, traced: Traced) -> None:
    response = httpx.get(f"{fastapi_url}/async", headers=headers())
    assert response.json() == {"tenant": "acme", "dep": "acme"}
    assert request_tree(traced.records()) == [("span", "GET /async", ops(
        ("chain", "async-handler", []), dependency=[("tool", "auth-lookup", [])]))]


def test_fastapi_sync_endpoint_in_the_thread_pool_keeps_tenant_and_trace(
        fastapi_url: str, traced: Traced) -> None:
    assert httpx.get(f"{fastapi_url}/sync", headers=headers()).json() == {"tenant": "acme"}
    assert request_tree(traced.records()) == [("span", "GET /sync", ops(("chain", "sync-handler", [])))]


def test_fastapi_streaming_body_spans_keep_tenant_and_trace(fastapi_url: str, traced: Traced) -> None:
    assert httpx.get(f"{fastapi_url}/stream", headers=headers()).text == "acme\nacme\nacme\n"
    chunks = [("span", f"chunk-{i}", []) for i in range(3)]
    assert request_tree(traced.records()) == [("span", "GET /stream", ops(serialization=False) + chunks)]


def test_fastapi_background_task_runs_in_the_requests_trace_and_tenant(
        fastapi_url: str, traced: Traced) -> None:
    assert httpx.get(f"{fastapi_url}/background", headers=headers()).json() == {"ok": "yes"}
    deadline = time.monotonic() + 10  # the task runs after the response is sent: wait until it has ended
    while "fastapi.background_task" not in {r["name"] for r in traced.records()} and time.monotonic() < deadline:
        time.sleep(0.02)
    assert request_tree(traced.records()) == [("span", "GET /background", [
        *ops(), ("span", "fastapi.background_task", [("span", "after-response", [])])])]


def test_fastapi_errors_are_recorded_and_never_leak_into_the_next_request(
        fastapi_url: str, traced: Traced) -> None:
    assert httpx.get(f"{fastapi_url}/http-error", headers=headers()).status_code == 403
    assert httpx.get(f"{fastapi_url}/crash", headers=headers(tenant="globex")).status_code == 500
    # uvicorn closes a connection after an unhandled error; the next request, untenanted, sees none
    assert httpx.get(f"{fastapi_url}/whoami", headers=headers(tenant=None, parent=None)).json() == {"tenant": None}
    records = [r for r in traced.records() if r["name"] in ("refusing", "crashing") or r["name"].startswith("GET")]
    assert [(r["name"], r["tenant"], r["level"], r["status_message"]) for r in records] == [
        ("GET /http-error", "acme", "DEFAULT", None),
        ("refusing", "acme", "ERROR", "HTTPException: 403: no"),
        ("GET /crash", "globex", "ERROR", None),
        ("crashing", "globex", "ERROR", "RuntimeError: boom"),
        ("GET /whoami", None, "DEFAULT", None),
    ]
    assert records[-1]["trace_id"] != TRACE and records[-1]["parent_id"] is None


def test_fastapi_websocket_session_has_the_tenant(fastapi_url: str, traced: Traced) -> None:
    from websockets.sync.client import connect

    with connect(fastapi_url.replace("http", "ws") + "/ws", additional_headers=headers()) as ws:
        ws.send("hi")
        assert ws.recv() == "acme:hi"
    assert request_tree(traced.records()) == [("span", "WS /ws", [
        ("span", "fastapi.dependencies", []), ("span", "fastapi.endpoint", [("chain", "ws-session", [])])])]


def test_async_tenant_function_lifespan_and_a_mounted_app_wrapped_again(traced: Traced) -> None:
    """An ``async`` tenant function is awaited; lifespan passes through; a sub-app wrapped again,
    under a user's middleware span, keeps that span as its parent."""
    from starlette.applications import Starlette
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.routing import Mount

    started: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        started.append(autotrace.current_tenant() or "no tenant")
        yield

    async def tenant_lookup(scope: Any) -> str | None:
        await asyncio.sleep(0)
        return header_tenant(scope)

    async def request_span(request: Any, call_next: Any) -> Any:
        with autotrace.start_span("user-middleware"):
            return await call_next(request)

    outer = Starlette(routes=[Mount("/v1", TenantASGIMiddleware(fastapi_app(telemetry={"tracing": False}), header_tenant))],
                      lifespan=lifespan)
    outer.add_middleware(BaseHTTPMiddleware, dispatch=request_span)
    with uvicorn_server(TenantASGIMiddleware(outer, tenant_lookup), lifespan="on") as url:
        assert httpx.get(f"{url}/v1/sync", headers=headers()).json() == {"tenant": "acme"}
    assert started == ["no tenant"]
    records = traced.records()
    assert shape(records) == [("span", "user-middleware", [("chain", "sync-handler", [])])]
    assert records[0]["parent_id"] == "b7ad6b7169203331" and joined(records)
