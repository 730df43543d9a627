"""A sync body Starlette streams from its thread pool, left at a ``yield`` when its client goes
away, is closed in its request's context when the request ends, as the response was cut off. A
response that began with an early hint (``http.response.early_hint``, 103) or a server push
(``http.response.push``), ASGI extensions Hypercorn serves over HTTP/2, was taken as finished
by that first message, which has no ``more_body``: the body was left open (its observations, an
LLM stream's too) until some later garbage collection, in whatever context was current then.

Real Starlette served by Hypercorn over loopback HTTP/2 (httpx with h2)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

import autotrace
from autotrace.middleware import TenantASGIMiddleware, _ends
from tests.test_web_frameworks import header_tenant

#: The tenant in scope where each ``/endless`` body was closed.
closed: list[str | None] = []

_FIRST = {
    "early_hint": {"type": "http.response.early_hint", "links": [b"</app.css>; rel=preload; as=style"]},
    "push": {"type": "http.response.push", "path": "/app.css", "headers": []},
}


def _app(first: dict[str, Any]) -> Any:
    async def endless(request: Request) -> StreamingResponse:
        def body() -> Iterator[bytes]:
            try:
                with autotrace.start_chain("endless"):
                    while True:
                        yield b"x" * 65536
            finally:
                closed.append(autotrace.current_tenant())
        return StreamingResponse(body())

    served = Starlette(routes=[Route("/endless", endless)])

    async def announcing(scope: Any, receive: Any, send: Any) -> None:
        if first["type"] in scope.get("extensions", {}):
            await send(first)
        await served(scope, receive, send)

    return TenantASGIMiddleware(announcing, header_tenant)


def _serve(app: Any) -> tuple[str, Any]:
    """``app`` served by Hypercorn on a loopback port in a thread: its URL and its stop."""
    hypercorn_config = pytest.importorskip("hypercorn.config")  # the only ASGI server here with HTTP/2
    hypercorn_asyncio = pytest.importorskip("hypercorn.asyncio")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = hypercorn_config.Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.loglevel = "ERROR"
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, daemon=True,
                              args=(hypercorn_asyncio.serve(app, config, shutdown_trigger=stop.wait),))
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.02)

    def close() -> None:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
    return f"http://127.0.0.1:{port}", close


@pytest.mark.parametrize("first", sorted(_FIRST))
def test_a_body_left_after_an_early_hint_or_a_push_is_closed_in_its_request(first: str) -> None:
    closed.clear()
    url, close = _serve(_app(_FIRST[first]))
    try:
        with httpx.Client(http1=False, http2=True) as client, \
                client.stream("GET", f"{url}/endless", headers={"x-tenant": "acme"}) as response:
            assert response.http_version == "HTTP/2"
            next(response.iter_bytes())  # then the client goes away
        deadline = time.monotonic() + 10  # the server notices when the stream is reset
        while not closed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert closed == ["acme"]
    finally:
        close()
    assert "context_not_restored" not in autotrace.stats()


def test_only_the_last_message_of_a_response_ends_it() -> None:
    """With trailers announced (and taken by the server) the last trailers end the response, not the
    body's end; an informational message never does."""
    body_end = {"type": "http.response.body", "body": b"x"}
    assert [_ends(body_end, False), _ends(body_end, True)] == [True, False]
    assert [_ends({"type": "http.response.trailers", "headers": [], "more_trailers": more}, True)
            for more in (True, False)] == [False, True]
    assert not any(_ends(message, False) for message in _FIRST.values())
    assert _ends({"type": "http.response.pathsend", "path": "/srv/file"}, False)
