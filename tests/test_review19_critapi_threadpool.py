"""Sync iterators Starlette steps in its thread pool (``iterate_in_threadpool``) within a request
served by ``TenantASGIMiddleware``: the middleware closes, at the request's end, only a generator
that nothing but its own bookkeeping holds any more (left by its reader). One the application
still holds (a job the request started, a stream a later request resumes) is the application's:
closing it cut the job's data short and made the resuming request fail. And a body, once finished
or left, is not kept for the rest of a long connection (a WebSocket's).

Real Starlette served by uvicorn over loopback; a WebSocket client from ``websockets``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.sync.client import connect

import autotrace
from autotrace.middleware import TenantASGIMiddleware
from tests.test_web_frameworks import header_tenant, uvicorn_server


def _numbers(n: int) -> Iterator[int]:
    yield from range(n)


def _app() -> TenantASGIMiddleware:
    jobs: dict[str, asyncio.Future[int]] = {}
    begun, resume = asyncio.Event(), asyncio.Event()
    streams: dict[str, Iterator[str]] = {}

    async def job() -> int:
        items = iterate_in_threadpool(_numbers(30))
        got = [await anext(items)]
        begun.set()
        await resume.wait()  # the request that started it has ended by then
        return len(got + [item async for item in items])

    async def start(request: Request) -> PlainTextResponse:
        jobs["job"] = asyncio.ensure_future(job())
        await begun.wait()  # it is between two items when this request ends
        return PlainTextResponse("started")

    async def finish(request: Request) -> PlainTextResponse:
        resume.set()
        return PlainTextResponse(str(await jobs["job"]))

    def stream() -> Iterator[str]:
        yield from ("one", "two", "three")

    async def part(request: Request) -> PlainTextResponse:
        """The next item of a stream that outlives each request (resumed by the next one)."""
        items = streams.setdefault("s", stream())
        return PlainTextResponse(await anext(iterate_in_threadpool(items)))

    async def chat(websocket: WebSocket) -> None:
        await websocket.accept()
        closed: list[str | None] = []

        def answer(text: str) -> Iterator[str]:
            try:
                yield from text.split()
            finally:
                closed.append(autotrace.current_tenant())

        async for message in websocket.iter_text():
            kept = answer(message)
            words = []
            async for word in iterate_in_threadpool(kept):
                words.append(word)
                if word == "stop":  # left at a yield: nobody reads it any more
                    break
            del kept
            await asyncio.sleep(0)  # the loop closes the abandoned reader (``aclose``)
            await websocket.send_text(json.dumps({"words": words, "closed": closed}))

    routes = [Route("/start", start), Route("/finish", finish), Route("/part", part), WebSocketRoute("/chat", chat)]
    return TenantASGIMiddleware(Starlette(routes=routes), header_tenant)


def test_a_job_the_request_started_reads_all_its_items_after_the_request_ended() -> None:
    with uvicorn_server(_app()) as url:
        assert httpx.get(f"{url}/start", headers={"x-tenant": "acme"}).text == "started"
        assert httpx.get(f"{url}/finish").text == "30"


def test_a_stream_the_application_keeps_is_not_closed_when_the_request_that_read_it_ends() -> None:
    with uvicorn_server(_app()) as url:
        got = [httpx.get(f"{url}/part") for _ in range(3)]
    assert [(r.status_code, r.text) for r in got] == [(200, "one"), (200, "two"), (200, "three")]


def test_a_long_connection_keeps_no_body_it_finished_or_left() -> None:
    with uvicorn_server(_app()) as url, connect(url.replace("http", "ws") + "/chat",
                                                additional_headers={"x-tenant": "acme"}) as ws:
        ws.send("a b c")
        first = json.loads(ws.recv())
        ws.send("x stop y")
        second = json.loads(ws.recv())
        ws.send("d")
        third = json.loads(ws.recv())
    assert first == {"words": ["a", "b", "c"], "closed": ["acme"]}
    # left at "stop": closed in its request's tenant when the next body starts, not when the connection ends
    assert second["words"] == ["x", "stop"]
    assert third == {"words": ["d"], "closed": ["acme", "acme", "acme"]}
