"""LangChain review 17 (real langchain-core): a streamed step that is interrupted before LangChain
tells its input records no input, not the ``{"input": ""}`` LangChain starts a streamed run with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from langchain_core.runnables import RunnableGenerator, RunnableParallel

from autotrace.observation import STREAM_CLOSED
from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain")


async def _shout(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
    async for chunk in chunks:
        yield chunk.upper()


async def _stalled(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
    await asyncio.Event().wait()  # a slow branch: the reader leaves before it yields
    async for chunk in chunks:
        yield chunk


def test_a_branch_closed_before_its_input_is_told_records_no_placeholder_input(traced: Traced) -> None:
    both = RunnableParallel(a=RunnableGenerator(_shout, name="shout"), b=RunnableGenerator(_stalled, name="stalled"))

    async def first_chunk() -> None:
        async for chunk in both.astream("hi"):
            assert chunk == {"a": "HI"}
            break  # a client that disconnected

    asyncio.run(first_chunk())
    records = traced.records()
    assert shape(records) == [("chain", "RunnableParallel<a,b>", [("chain", "shout", []), ("chain", "stalled", [])])]
    # "shout" is ended when the task is done, before LangChain closes its stream and tells its input
    assert [(r["name"], r["level"], r["status_message"], r["input"]) for r in records] == [
        ("RunnableParallel<a,b>", "WARNING", STREAM_CLOSED, "hi"),
        ("shout", "WARNING", STREAM_CLOSED, None),
        ("stalled", "WARNING", "CancelledError", "hi")]
    _nothing_open()
