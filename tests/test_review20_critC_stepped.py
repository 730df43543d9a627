"""The middleware's ``receive`` and last ``send`` (run in the server's context) stay what a server's
are: coroutines, so an application may start a task of them (``asyncio.create_task(receive())``, as
Django Channels' ``await_many_dispatch`` does): they were a bare awaitable that ``create_task``
refused (a 500 for every request). And a server's awaitable whose iterator has only ``__next__``
(Granian's ``receive`` and ``send`` answer such objects) is awaited as ``await`` does: stepping it
called its missing ``send``/``throw`` (an ``AttributeError`` for every request, and for a
cancellation)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

import autotrace
from autotrace.middleware import TenantASGIMiddleware
from tests.helpers import Traced
from tests.test_web_frameworks import uvicorn_server


async def _echo_in_tasks(scope: Any, receive: Any, send: Any) -> None:
    """An application awaiting tasks of ``receive()`` and of its last ``send``."""
    message = await asyncio.get_running_loop().create_task(receive())
    await send({"type": "http.response.start", "status": 200, "headers": []})
    tenant = autotrace.current_tenant() or "-"
    await asyncio.create_task(send({"type": "http.response.body", "body": message["body"] + tenant.encode()}))


def test_an_application_may_start_tasks_of_receive_and_of_its_last_send(traced: Traced) -> None:
    with uvicorn_server(TenantASGIMiddleware(_echo_in_tasks, tenant_from_scope=lambda scope: "acme")) as url:
        response = httpx.post(url + "/", content=b"hi:")
    assert (response.status_code, response.text) == (200, "hi:acme")


class _IterAwaitable:
    """A server's awaitable as Granian's: ``__await__`` answers an iterator with only ``__next__``,
    yielding None (a busy wait) until its result is there."""

    def __init__(self, result: Any, pending: int = 2) -> None:
        self.result, self.pending = result, pending

    def __await__(self) -> _IterAwaitable:
        return self

    def __iter__(self) -> _IterAwaitable:
        return self

    def __next__(self) -> None:
        if self.pending:
            self.pending -= 1
            return None
        raise StopIteration(self.result)


async def test_a_server_awaitable_with_only_next_is_awaited_as_await_does(traced: Traced) -> None:
    sent: list[Any] = []

    def receive() -> _IterAwaitable:
        return _IterAwaitable({"type": "http.request", "body": b"hi", "more_body": False})

    def send(message: Any) -> _IterAwaitable:
        sent.append((message["type"], message.get("body"), autotrace.current_tenant()))
        return _IterAwaitable(None)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["body"]})

    await TenantASGIMiddleware(app, tenant_from_scope=lambda scope: "acme")({"type": "http", "headers": []},
                                                                            receive, send)
    assert sent == [("http.response.start", None, "acme"), ("http.response.body", b"hi", None)]


async def test_a_cancelled_receive_of_such_an_awaitable_raises_the_cancellation(traced: Traced) -> None:
    outcome: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            async with asyncio.timeout(0.01):
                await receive()
        except TimeoutError:
            outcome.append("timed out")

    never = _IterAwaitable(None, pending=10**9)
    await TenantASGIMiddleware(app)({"type": "http", "headers": []}, lambda: never, None)
    assert outcome == ["timed out"]


@pytest.mark.parametrize("method", ["send", "throw", "close"])
def test_each_step_runs_in_the_servers_context_and_close_reaches_the_awaitable(method: str) -> None:
    """A generator-based awaitable: values and exceptions go in as ``await`` passes them, and
    abandoning the request's coroutine closes it, each in the server's context."""
    seen: list[Any] = []

    class Awaitable:
        def __await__(self) -> Any:
            try:
                seen.append(("sent", (yield "wait"), autotrace.current_tenant()))
            except ValueError as exc:
                seen.append(("thrown", str(exc), autotrace.current_tenant()))
            except GeneratorExit:
                seen.append(("closed", None, autotrace.current_tenant()))
                raise
            return "done"

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(("app", await receive(), autotrace.current_tenant()))

    call = TenantASGIMiddleware(app, tenant_from_scope=lambda scope: "acme")(
        {"type": "http", "headers": []}, Awaitable, None)
    assert call.send(None) == "wait"
    if method == "send":
        with pytest.raises(StopIteration):
            call.send(1)
        assert seen == [("sent", 1, None), ("app", "done", "acme")]
    elif method == "throw":
        with pytest.raises(StopIteration):
            call.throw(ValueError("no"))
        assert seen == [("thrown", "no", None), ("app", "done", "acme")]
    else:
        call.close()
        assert seen == [("closed", None, None)]
    assert autotrace.current_tenant() is None
