"""A ``with`` block around ``yield``: the block's observation is current in its reader's context
between steps, as Python runs a generator in its caller's context. Once it has ended, a context it
was left current in starts new observations under the observation the block was entered in, not
under the ended one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import autotrace
from tests.helpers import Traced, shape


def test_a_generator_closed_inside_a_later_block_leaves_no_ended_parent_behind(traced: Traced) -> None:
    def steps() -> Iterator[int]:
        with autotrace.start_span("stream"):
            yield 1
            yield 2

    reader = steps()
    with autotrace.start_span("turn") as turn:
        next(reader)
        with autotrace.start_span("consume"):
            reader.close()  # the stream's block ends before the block entered after it
        with autotrace.start_span("after"):
            pass
        assert autotrace.current_observation() is turn
    assert shape(traced.records()) == [
        ("span", "turn", [("span", "stream", [("span", "consume", [])]), ("span", "after", [])])]


def test_an_async_generator_left_with_break_leaves_no_ended_parent_behind(traced: Traced) -> None:
    async def tokens() -> AsyncIterator[str]:
        async with autotrace.start_generation("reply"):
            yield "a"
            yield "b"

    async def handler() -> None:
        with autotrace.start_chain("turn") as turn:
            async for _ in tokens():
                break  # the event loop closes the generator later, in a task of its own
            for _ in range(3):
                await asyncio.sleep(0)
            with autotrace.start_tool("after"):
                pass
            assert autotrace.current_observation() is turn
            autotrace.score("kept", 1)  # the current observation: the turn, not the ended reply

    asyncio.run(handler())
    records = traced.records()
    assert shape(records) == [("chain", "turn", [("generation", "reply", []), ("tool", "after", [])])]
    reply = next(r for r in records if r["name"] == "reply")
    assert reply["level"] == "WARNING"  # closed by the loop: interrupted
    store = autotrace.local_store()
    assert store is not None
    turn_id = next(r["id"] for r in records if r["name"] == "turn")
    assert [(s["name"], s["observation_id"]) for s in store.scores(reply["trace_id"])] == [("kept", turn_id)]
    assert autotrace.stats()["context_not_restored"] == 1
