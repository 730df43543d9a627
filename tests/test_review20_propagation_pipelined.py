"""Later requests of a keep-alive connection began in an earlier request's trace and tenant under
uvicorn (CPython #140947; uvicorn's ``reset_contextvars`` is off by default): after a request body
over 64 KiB (uvicorn pauses reading, and its ``receive`` resumes it in a reader callback made in the
request's context, from which every later request of the connection is started), and for a
request pipelined behind another (started from inside the first one's last ``send``). A request
with no tenant of its own was recorded in the earlier one's tenant and trace; a trusted caller's
tenant was refused (a tenant was in scope already). The middleware now calls the server's
``receive`` and last ``send`` in the context the server gave the request."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import autotrace
from autotrace.middleware import TenantASGIMiddleware
from tests.helpers import Traced
from tests.test_web_frameworks import PARENT, TRACE, header_tenant, uvicorn_server


def _app(seen: list[tuple[str, str | None, str | None]]) -> TenantASGIMiddleware:
    async def endpoint(request: Request) -> PlainTextResponse:
        await request.body()
        context = trace.get_current_span().get_span_context()
        seen.append((request.url.path, f"{context.trace_id:032x}" if context.is_valid else None,
                     autotrace.current_tenant()))
        with autotrace.start_span(request.url.path.strip("/")):
            pass
        return PlainTextResponse("ok")

    routes = [Route("/{name}", endpoint, methods=["GET", "POST"])]
    return TenantASGIMiddleware(Starlette(routes=routes), tenant_from_scope=header_tenant)


def _pipelined(url: str, *requests: str) -> None:
    """``requests`` (head lines after the request line) sent in one write on one connection, and
    every response read."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall("".join(f"{request}\r\nHost: x\r\n\r\n" for request in requests).encode())
        received = b""
        while received.count(b"\r\n\r\nok") < len(requests):
            chunk = connection.recv(65536)
            assert chunk, received
            received += chunk


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_a_pipelined_request_starts_in_none_of_the_previous_requests_trace_or_tenant(
        traced: Traced, http: str) -> None:
    seen: list[Any] = []
    with uvicorn_server(_app(seen), http=http) as url:
        _pipelined(url, f"GET /first HTTP/1.1\r\ntraceparent: {PARENT}\r\nx-tenant: acme", "GET /second HTTP/1.1")
    assert seen == [("/first", TRACE, "acme"), ("/second", None, None)]
    assert [(r["name"], r["tenant"], r["trace_id"] == TRACE, r["parent_id"]) for r in traced.records()] == [
        ("first", "acme", True, PARENT.split("-")[2]), ("second", None, False, None)]


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_requests_after_a_large_upload_on_a_keep_alive_connection_start_in_none_of_its_state(
        traced: Traced, http: str) -> None:
    seen: list[Any] = []
    with uvicorn_server(_app(seen), http=http, loop="asyncio") as url, httpx.Client(base_url=url) as client:
        client.post("/upload", content=b"x" * 1_000_000, headers={"traceparent": PARENT, "x-tenant": "acme"})
        client.get("/next")
        client.get("/trusted", headers={"baggage": "autotrace.tenant=beta"})
    assert seen == [("/upload", TRACE, "acme"), ("/next", None, None), ("/trusted", None, None)]
    assert [(r["name"], r["tenant"], r["trace_id"] == TRACE) for r in traced.records()] == [
        ("upload", "acme", True), ("next", None, False), ("trusted", None, False)]


def test_a_later_request_of_the_connection_keeps_its_trusted_callers_tenant(tmp_path: Any) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", trust_incoming_tenant=True,
                      export_interval=0.05)
    seen: list[Any] = []
    with uvicorn_server(_app(seen), loop="asyncio") as url:
        _pipelined(url, "GET /first HTTP/1.1\r\nx-tenant: acme",
                   "GET /second HTTP/1.1\r\nbaggage: autotrace.tenant=beta")
        with httpx.Client(base_url=url) as client:
            client.post("/upload", content=b"x" * 1_000_000, headers={"x-tenant": "acme"})
            client.get("/after", headers={"baggage": "autotrace.tenant=gamma"})
    assert seen == [("/first", None, "acme"), ("/second", None, "beta"), ("/upload", None, "acme"),
                    ("/after", None, "gamma")]
    assert autotrace.flush(10.0)
    store = autotrace.local_store()
    assert store is not None
    records = sorted(store.observations(), key=lambda r: r["start_ns"])
    assert [(r["name"], r["tenant"]) for r in records] == [
        ("first", "acme"), ("second", "beta"), ("upload", "acme"), ("after", "gamma")]
    assert len({r["trace_id"] for r in records}) == 4


async def test_a_last_message_sent_through_any_awaitable_keeps_the_requests_state_after_it(traced: Traced) -> None:
    """A layer outside the middleware whose ``send`` suspends, or gives a future rather than a
    coroutine: the message is sent, and the request's state is its own again after it (a background
    task's), while the server's side ran in the server's."""
    import asyncio

    after: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        after.append(autotrace.current_tenant())

    sent: list[Any] = []

    async def suspending(message: Any) -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        sent.append((message["type"], autotrace.current_tenant()))

    def future(message: Any) -> asyncio.Future[None]:
        sent.append((message["type"], autotrace.current_tenant()))
        done = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(done.set_result, None)
        return done

    middleware = TenantASGIMiddleware(app, tenant_from_scope=lambda scope: "acme")
    for send in (suspending, future):
        await middleware({"type": "http", "headers": []}, None, send)
    assert sent == [("http.response.start", "acme"), ("http.response.body", None)] * 2
    assert after == ["acme", "acme"]
