"""``autotrace.tenant`` / ``trace_attributes`` / ``content_capture`` used as decorators of async
functions, generators and async generators: the whole body runs in scope (each step of a
generator), the code iterating a suspended generator does not, and the function keeps its kind."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import httpx

import autotrace
from autotrace.context import capture_enabled, current_trace_attributes
from tests.helpers import Traced


def test_a_decorated_coroutine_function_runs_its_body_in_the_tenant(traced: Traced) -> None:
    @autotrace.tenant("acme")
    @autotrace.trace_attributes(user_id="u1")
    @autotrace.content_capture(False)
    async def handler(x: int) -> Any:
        await asyncio.sleep(0)
        with autotrace.start_tool("lookup"):
            await asyncio.sleep(0)
        return autotrace.current_tenant(), (current_trace_attributes() or {}).get("user.id"), capture_enabled(), x

    assert inspect.iscoroutinefunction(handler) and handler.__name__ == "handler"
    assert asyncio.run(handler(3)) == ("acme", "u1", False, 3)
    record = traced.one()
    assert (record["name"], record["tenant"]) == ("lookup", "acme")
    assert autotrace.current_tenant() is None


def test_a_decorated_generator_is_in_scope_at_each_step_and_its_reader_is_not(traced: Traced) -> None:
    finished: list[Any] = []

    @autotrace.tenant("acme")
    def rows(n: int) -> Any:
        try:
            for i in range(n):
                with autotrace.start_tool(f"row{i}"):
                    pass
                got = yield i, autotrace.current_tenant()
                finished.append(("got", got, autotrace.current_tenant()))
        finally:
            finished.append(("finally", autotrace.current_tenant()))
        return "done"

    assert inspect.isgeneratorfunction(rows)
    stream = rows(3)
    assert next(stream) == (0, "acme")
    assert autotrace.current_tenant() is None  # suspended: the reader is not in the tenant
    assert stream.send("a") == (1, "acme")
    stream.close()  # closed early: its finally runs in the tenant too
    assert finished == [("got", "a", "acme"), ("finally", "acme")]
    assert list(rows(1)) == [(0, "acme")]
    assert sorted((r["name"], r["tenant"]) for r in traced.records()) == [
        ("row0", "acme"), ("row0", "acme"), ("row1", "acme")]


def test_a_decorated_async_generator_is_in_scope_at_each_step(traced: Traced) -> None:
    @autotrace.tenant("acme")
    async def chunks() -> Any:
        for i in range(2):
            await asyncio.sleep(0)
            with autotrace.start_span(f"chunk{i}"):
                pass
            yield autotrace.current_tenant()

    async def read() -> list[Any]:
        return [(item, autotrace.current_tenant()) async for item in chunks()]

    assert inspect.isasyncgenfunction(chunks)
    assert asyncio.run(read()) == [("acme", None), ("acme", None)]
    assert sorted((r["name"], r["tenant"]) for r in traced.records()) == [("chunk0", "acme"), ("chunk1", "acme")]


def test_decorated_methods_and_plain_functions_still_work() -> None:
    class Service:
        @autotrace.tenant("acme")
        def items(self) -> Any:
            yield self, autotrace.current_tenant()

        @autotrace.tenant("acme")
        def call(self, x: int) -> Any:
            return x, autotrace.current_tenant()

    service = Service()
    assert list(service.items()) == [(service, "acme")]
    assert service.call(2) == (2, "acme")
    with autotrace.tenant("globex") as name:
        assert name == "globex" == autotrace.current_tenant()
    assert autotrace.current_tenant() is None


def test_a_decorated_stream_body_served_by_starlette_under_uvicorn_is_the_tenants(traced: Traced) -> None:
    """A sync generator body is stepped in anyio's thread pool, each step in a fresh copy of the
    request's context: each step still runs in the tenant, and every block ends where it began."""
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    from tests.test_web_frameworks import uvicorn_server

    @autotrace.tenant("acme")
    def lines() -> Any:
        for i in range(3):
            with autotrace.start_span(f"line{i}"):
                pass
            yield f"{autotrace.current_tenant()}\n"

    @autotrace.tenant("globex")
    async def chunks() -> Any:
        yield f"{autotrace.current_tenant()}\n"

    async def sync_body(request: Any) -> StreamingResponse:
        return StreamingResponse(lines())

    async def async_body(request: Any) -> StreamingResponse:
        return StreamingResponse(chunks())

    app = Starlette(routes=[Route("/sync", sync_body), Route("/async", async_body)])
    with uvicorn_server(app) as url:
        assert httpx.get(f"{url}/sync").text == "acme\nacme\nacme\n"
        assert httpx.get(f"{url}/async").text == "globex\n"
    assert sorted((r["name"], r["tenant"]) for r in traced.records()) == [
        ("line0", "acme"), ("line1", "acme"), ("line2", "acme")]
    assert autotrace.stats().get("context_not_restored", 0) == 0


def test_a_decorated_generator_read_under_another_tenants_span_gives_its_spans_to_its_tenant(
        traced: Traced) -> None:
    @autotrace.tenant("acme")
    def rows() -> Any:
        for i in range(2):
            with autotrace.start_tool(f"row{i}"):
                pass
            yield i

    with autotrace.tenant("globex"), autotrace.start_chain("reader") as reader:
        assert list(rows()) == [0, 1]
        assert autotrace.current_tenant() == "globex"
    records = {r["name"]: r for r in traced.records()}
    assert {name: r["tenant"] for name, r in records.items()} == {"reader": "globex", "row0": "acme", "row1": "acme"}
    assert records["row0"]["trace_id"] != reader.trace_id != records["row1"]["trace_id"]


def test_one_block_entered_twice_at_once_leaks_nothing() -> None:
    block = autotrace.tenant("acme")
    with block:
        with block:  # each entry undone by its own exit (test_review17_critique_api_scopes)
            assert autotrace.current_tenant() == "acme"
        assert autotrace.current_tenant() == "acme"
    assert autotrace.current_tenant() is None
    with block:  # once left, it may be entered again
        assert autotrace.current_tenant() == "acme"
    assert autotrace.current_tenant() is None
