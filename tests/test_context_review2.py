"""``tenant``, ``trace_attributes`` and ``content_capture`` blocks inside a generator that another
task or thread resumes: a streamed response body run step by step in a thread pool, each step in
a copy of the request's context (as Starlette's ``iterate_in_threadpool`` does), or an async
generator left by ``break`` and closed by another task. The block's end cannot reset the value
there; it must not raise into the application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import autotrace
from tests.helpers import Traced


def _body() -> Iterator[str]:
    with autotrace.tenant("acme"), autotrace.trace_attributes(user_id="u-1"), autotrace.content_capture(False):
        with autotrace.start_span("render") as span:
            span.set_output("first")
        yield "first"
        yield "second"


def test_a_streamed_body_stepped_in_a_thread_pool_ends_its_blocks_quietly(traced: Traced) -> None:
    async def respond() -> list[str]:
        chunks, body = [], _body()
        while (chunk := await asyncio.to_thread(next, body, None)) is not None:  # each step: a copy of the context
            chunks.append(chunk)
        return chunks

    async def request() -> tuple[list[str], str | None]:
        with autotrace.tenant("globex"):
            return await respond(), autotrace.current_tenant()

    assert asyncio.run(request()) == (["first", "second"], "globex")
    [record] = traced.records()
    assert (record["name"], record["tenant"], record["parent_id"], record["output"]) == ("render", "acme", None, None)
    # the three blocks, each left in another context, and the two steps of the tenant block's leaving
    # globex's scope (its trace context and trace attributes: ``leave_other_tenants_trace``)
    assert autotrace.stats()["context_not_restored"] == 5


async def _stream() -> AsyncIterator[str]:
    with autotrace.tenant("acme"):
        with autotrace.start_span("produce"):
            pass
        yield "first"
        yield "second"


def test_an_async_generator_closed_by_another_task_ends_its_tenant_block_quietly(traced: Traced) -> None:
    async def main() -> tuple[str | None, str | None]:
        stream = _stream()
        async for _ in stream:
            break  # left suspended inside the block: this task's context has the tenant meanwhile
        during = autotrace.current_tenant()
        await asyncio.create_task(stream.aclose())  # as the loop's finaliser of async generators does
        return during, autotrace.current_tenant()

    assert asyncio.run(main()) == ("acme", "acme")  # the context it was entered in keeps it, as Python does
    assert [(r["name"], r["tenant"]) for r in traced.records()] == [("produce", "acme")]
    assert autotrace.stats()["context_not_restored"] == 1


def test_reset_in_its_own_context_still_restores_the_outer_values() -> None:
    with autotrace.tenant("acme"), autotrace.content_capture(True), autotrace.trace_attributes(session_id="s"):
        with autotrace.tenant("globex"), autotrace.content_capture(False), autotrace.trace_attributes(user_id="u"):
            assert autotrace.current_tenant() == "globex"
        assert autotrace.current_tenant() == "acme"
        assert autotrace.context.capture_enabled() is True
        assert autotrace.context.current_trace_attributes() == {"session.id": "s"}
    assert autotrace.current_tenant() is None and autotrace.context.current_trace_attributes() is None
    assert "context_not_restored" not in autotrace.stats()
