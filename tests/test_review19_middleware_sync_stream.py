"""A sync generator streamed by Starlette (``StreamingResponse``) is stepped in the thread pool, each
step in a fresh copy of the request's context: an observation (or a tenant scope) held open across
a ``yield`` was no longer current after it. The LLM calls made there went under the request's span
instead of the block's (a tenant scope's calls to the request's tenant), and the block's end could
not restore the context (``context_not_restored``). And a generator left at a ``yield`` when the
client went away was never closed (Starlette does not), until some later garbage collection, in
whatever context was current then: its observations, an LLM stream's too, stayed open. Under the
middleware each such body now runs all its steps in one context and is closed in it when the
request ends, as under WSGI; outside its requests a step runs as before.

Real Starlette and the real openai SDK, served by uvicorn over loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Mount, Route

import autotrace
from autotrace.middleware import TenantASGIMiddleware
from tests.helpers import Traced, shape
from tests.test_web_frameworks import PARENT, TRACE, header_tenant, uvicorn_server

pytestmark = pytest.mark.integrations("openai")

_step: ContextVar[str] = ContextVar("step", default="-")
#: The tenant in scope where each ``/endless`` body was closed.
closed: list[str | None] = []


def _app(client: openai.OpenAI) -> Starlette:
    def ask(text: str) -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

    async def answer(request: Request) -> StreamingResponse:
        def body() -> Iterator[str]:
            with autotrace.start_chain("answer"):
                ask("first")
                yield f"{autotrace.current_tenant()}\n"
                ask("second")  # after a yield: still under "answer"
                yield f"{autotrace.current_tenant()}\n"
            with autotrace.tenant("globex"):
                yield f"{autotrace.current_tenant()}\n"
                ask("third")  # in the block's tenant
            yield f"{autotrace.current_tenant()}\n"
        return StreamingResponse(body())

    async def steps(request: Request) -> StreamingResponse:
        def body() -> Iterator[str]:
            _step.set("set by the first step")
            yield "1\n"
            yield _step.get()
        return StreamingResponse(body())

    async def endless(request: Request) -> StreamingResponse:
        def body() -> Iterator[bytes]:
            try:
                with autotrace.start_chain("endless"):
                    for _ in client.chat.completions.create(
                            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True):
                        while True:
                            yield b"x" * 65536
            finally:
                closed.append(autotrace.current_tenant())
        return StreamingResponse(body())

    routes = [Route("/steps", steps)]
    served = Starlette(routes=[Route("/answer", answer), Route("/endless", endless), *routes])
    return Starlette(routes=[Mount("/served", TenantASGIMiddleware(served, header_tenant)), *routes])


def test_a_sync_streamed_body_keeps_its_open_observation_and_tenant_across_yields(
        traced: Traced, client: openai.OpenAI) -> None:
    with uvicorn_server(_app(client)) as url:
        response = httpx.get(f"{url}/served/answer", headers={"x-tenant": "acme", "traceparent": PARENT})
        served_steps = httpx.get(f"{url}/served/steps").text
        plain_steps = httpx.get(f"{url}/steps").text
    assert response.text == "acme\nacme\nglobex\nacme\n"
    assert [served_steps, plain_steps] == ["1\nset by the first step", "1\n-"]  # as before outside the middleware
    records = traced.records()
    assert shape(records) == [("chain", "answer", [("generation", "openai.chat", []), ("generation", "openai.chat", [])]),
                              ("generation", "openai.chat", [])]
    answer, third = records[0], records[-1]
    assert [(r["trace_id"] == TRACE, r["tenant"]) for r in records] == [
        (True, "acme"), (True, "acme"), (True, "acme"), (False, "globex")]
    assert answer["parent_id"] == PARENT.split("-")[2] and third["parent_id"] is None
    assert "context_not_restored" not in autotrace.stats()


def test_a_sync_streamed_body_left_by_its_client_is_closed_in_its_request_when_it_ends(
        traced: Traced, client: openai.OpenAI) -> None:
    closed.clear()
    with uvicorn_server(_app(client)) as url:
        with httpx.stream("GET", f"{url}/served/endless", headers={"x-tenant": "acme", "traceparent": PARENT}) as response:
            next(response.iter_bytes())  # then the client goes away
        deadline = time.monotonic() + 10  # the server notices when its next write fails
        while not closed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert closed == ["acme"]
    records = traced.records()
    assert shape(records) == [("chain", "endless", [("generation", "openai.chat", [])])]
    assert [(r["tenant"], r["trace_id"] == TRACE, r["level"], r["status_message"]) for r in records] == [
        ("acme", True, "WARNING", "GeneratorExit"),
        ("acme", True, "WARNING", "interrupted: closed by its reader before the end")]
    assert "context_not_restored" not in autotrace.stats()


def _served_without_starlette_loaded(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("never called")


def test_a_plain_asgi_app_is_wrapped_without_touching_starlette(monkeypatch: pytest.MonkeyPatch) -> None:
    """The middleware patches Starlette only where it is loaded, and never imports it."""
    import sys

    monkeypatch.delitem(sys.modules, "starlette.concurrency")
    TenantASGIMiddleware(_served_without_starlette_loaded)
    assert "starlette.concurrency" not in sys.modules
