"""The tenant middleware under Flask and werkzeug's server, many concurrent tenants through uvicorn
and a threaded WSGI server, and hostile propagation headers: real servers, real HTTP requests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from flask import Flask, stream_with_context
from werkzeug.serving import WSGIRequestHandler, make_server

import autotrace
from autotrace.middleware import TenantASGIMiddleware, TenantWSGIMiddleware
from tests.helpers import Traced, served_in_thread, shape
from tests.test_web_frameworks import TRACE, header_tenant, headers, uvicorn_server


@contextmanager
def werkzeug_server(app: Any, threaded: bool = True) -> Iterator[str]:
    """``app`` served by werkzeug on a loopback port (HTTP/1.1 keep-alive) in a thread."""
    WSGIRequestHandler.protocol_version = "HTTP/1.1"
    try:
        with served_in_thread(make_server("127.0.0.1", 0, app, threaded=threaded)) as url:
            yield url
    finally:
        WSGIRequestHandler.protocol_version = "HTTP/1.0"


def flask_app() -> Any:
    app = Flask(__name__)

    @app.get("/hello")
    def hello() -> dict[str, Any]:
        with autotrace.start_chain("view"):
            return {"tenant": autotrace.current_tenant()}

    @app.get("/stream")
    def stream() -> Any:
        def body() -> Iterator[str]:
            with autotrace.start_chain("streaming"):
                for i in range(3):
                    with autotrace.start_span(f"chunk-{i}"):
                        yield f"{autotrace.current_tenant()}\n"
        return stream_with_context(body())

    @app.get("/crash")
    def crash() -> None:
        with autotrace.start_chain("crashing"):
            raise RuntimeError("boom")

    @app.after_request
    def after(response: Any) -> Any:
        with autotrace.start_span("after-request"):
            return response

    @app.teardown_request
    def teardown(error: BaseException | None) -> None:
        with autotrace.start_span("teardown"):
            pass

    return TenantWSGIMiddleware(app, tenant_from_environ=lambda env: env.get("HTTP_X_TENANT"))


def test_flask_request_hooks_and_error_are_in_the_tenant_and_trace(traced: Traced) -> None:
    with werkzeug_server(flask_app()) as url:
        assert httpx.get(f"{url}/hello", headers=headers()).json() == {"tenant": "acme"}
        assert httpx.get(f"{url}/crash", headers=headers()).status_code == 500
    records = traced.records()
    assert [(r["name"], r["tenant"], r["trace_id"], r["parent_id"], r["status_message"]) for r in records] == [
        ("view", "acme", TRACE, "b7ad6b7169203331", None),
        ("after-request", "acme", TRACE, "b7ad6b7169203331", None),
        ("teardown", "acme", TRACE, "b7ad6b7169203331", None),
        ("crashing", "acme", TRACE, "b7ad6b7169203331", "RuntimeError: boom"),
        ("after-request", "acme", TRACE, "b7ad6b7169203331", None),
        ("teardown", "acme", TRACE, "b7ad6b7169203331", None),
    ]


def test_flask_streamed_body_keeps_tenant_and_trace_and_nothing_stays_on_the_thread(traced: Traced) -> None:
    with werkzeug_server(flask_app(), threaded=False) as url, httpx.Client() as client:
        # one server thread, one keep-alive connection: the second request runs where the first did
        assert client.get(f"{url}/stream", headers=headers()).text == "acme\nacme\nacme\n"
        assert client.get(f"{url}/hello", headers=headers(tenant=None, parent=None)).json() == {"tenant": None}
    records = traced.records()
    streamed = [r for r in records if r["trace_id"] == TRACE]
    assert {r["tenant"] for r in streamed} == {"acme"}
    assert shape(streamed) == [("span", "after-request", []), ("span", "teardown", []), (
        "chain", "streaming", [("span", f"chunk-{i}", []) for i in range(3)]), ("span", "teardown", [])]
    assert {r["parent_id"] for r in streamed if not r["name"].startswith("chunk")} == {"b7ad6b7169203331"}
    later = [(r["name"], r["tenant"], r["parent_id"]) for r in records if r["trace_id"] != TRACE]
    assert later == [("view", None, None), ("after-request", None, None), ("teardown", None, None)]


def test_wsgi_list_bodies_and_file_wrappers_are_returned_as_they_are(traced: Traced) -> None:
    class FileWrapper:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def __iter__(self) -> Iterator[bytes]:
            return iter([self.data])

    body = [b"x"]
    app = TenantWSGIMiddleware(lambda environ, start_response: body)
    assert app({}, lambda *a: None) is body  # len() lets the server set Content-Length
    wrapped = FileWrapper(b"f")
    app = TenantWSGIMiddleware(lambda environ, start_response: wrapped)
    assert app({"wsgi.file_wrapper": FileWrapper}, lambda *a: None) is wrapped  # sendfile stays usable


def _many(url: str, path: str) -> list[Any]:
    """50 concurrent requests for 5 tenants, each in its own trace; what each response said."""
    def one(i: int) -> Any:
        trace_id = f"{i + 1:032x}"
        sent = headers(tenant=f"t{i % 5}", parent=f"00-{trace_id}-{i + 1:016x}-01")
        return trace_id, f"t{i % 5}", httpx.get(f"{url}{path}", headers=sent, timeout=30).json()["tenant"]

    with ThreadPoolExecutor(10) as pool:
        return list(pool.map(one, range(50)))


def _nothing_crossed(answers: list[Any], records: list[dict[str, Any]], name: str) -> None:
    assert all(tenant == said for _, tenant, said in answers)
    mine = sorted((r["trace_id"], r["tenant"]) for r in records if r["name"] == name)
    assert mine == sorted((trace_id, tenant) for trace_id, tenant, _ in answers)


def test_50_concurrent_requests_for_5_tenants_through_uvicorn(traced: Traced) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        with autotrace.start_chain("handler"):
            await asyncio.sleep(0.01)  # interleave the requests
            tenant = autotrace.current_tenant()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f'{{"tenant": "{tenant}"}}'.encode()})

    with uvicorn_server(TenantASGIMiddleware(app, header_tenant)) as url:
        answers = _many(url, "/")
    _nothing_crossed(answers, traced.records(), "handler")


def test_50_concurrent_requests_for_5_tenants_through_a_threaded_wsgi_server(traced: Traced) -> None:
    with werkzeug_server(flask_app()) as url:
        answers = _many(url, "/hello")
    _nothing_crossed(answers, traced.records(), "view")


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_hostile_propagation_headers_are_served_and_counted(traced: Traced, kind: str) -> None:
    hostile = [
        ({"traceparent": "00-" + "f" * 9000}, "propagation_invalid_traceparent", 1),
        ({"traceparent": "zz-\u00e9\u00ff-%%"}, "propagation_invalid_traceparent", 1),
        ({"baggage": "k=v," * 3000}, "propagation_baggage_too_long", 1),
        ({"baggage": "=;=,,\u00ff=\u00ff;;", "tracestate": "a" * 9000 + "=x"}, "propagation_invalid_baggage", 2),
    ]  # a header with control characters never reaches the application: the server answers 400
    server = uvicorn_server(TenantASGIMiddleware(fastapi_whoami(), header_tenant)) if kind == "asgi" \
        else werkzeug_server(flask_app())
    with server as url:
        for sent, counter, added in hostile:
            before = autotrace.stats().get(counter, 0)
            sent = {k: v.encode("utf-8") for k, v in sent.items()}
            response = httpx.get(f"{url}/hello", headers={**sent, "x-tenant": "acme"})
            assert (response.status_code, response.json()) == (200, {"tenant": "acme"}), sent
            assert autotrace.stats()[counter] == before + added
    views = [r for r in traced.records() if r["name"] == "view"]
    assert len({r["trace_id"] for r in views}) == 4 and {r["parent_id"] for r in views} == {None}
    assert {r["tenant"] for r in views} == {"acme"}


def fastapi_whoami() -> Any:
    from fastapi import FastAPI

    app = FastAPI(telemetry={"tracing": False})

    @app.get("/hello")
    async def hello() -> dict[str, Any]:
        with autotrace.start_chain("view"):
            return {"tenant": autotrace.current_tenant()}

    return app
