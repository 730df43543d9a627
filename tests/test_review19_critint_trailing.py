"""Critique of the one-read-at-a-time trailing usage read (``_trailing``, review 19): the
iteration an async stream's reader left is closed by the event loop one turn later, in a task of
its own. A reader that goes on at once (no await in between) is already inside the SDK's chunks
when that close runs. Real SDK over HTTP to the loopback fake."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from autotrace.integrations.openai import _trailing
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MESSAGES: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
USAGE = {"input": 9, "output": 4, "total": 13, "input_cached_tokens": 0, "output_reasoning_tokens": 0}


async def _left_at_the_finish_reason(aclient: openai.AsyncOpenAI, fake: FakeOpenAI) -> openai.AsyncStream[Any]:
    fake.script(reply="abc", chunks=3, usage=(9, 4), usage_delay=0.3)
    stream = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    async for chunk in stream:
        if chunk.choices[0].finish_reason:
            break
    return stream  # no await since: the loop has not yet closed the iteration left


def test_an_async_stream_read_on_at_once_after_its_reader_left_keeps_its_usage(
        traced: Traced, aclient: openai.AsyncOpenAI, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader drains the stream (a second loop, ``anext``) right after leaving it: the closed
    iteration found the SDK's chunks running, ended the observation without the usage, which the
    reader then read past."""
    monkeypatch.setattr(_trailing, "_WAIT", 10.0)

    async def main() -> tuple[list[Any], str]:
        drained = [chunk async for chunk in await _left_at_the_finish_reason(aclient, fake)]
        stream = await _left_at_the_finish_reason(aclient, fake)
        with pytest.raises(StopAsyncIteration) as ended:
            await stream.__anext__()
        await aclient.close()
        return drained, type(ended.value).__name__

    assert asyncio.run(main()) == ([], "StopAsyncIteration")
    records = traced.records()
    assert len(records) == 2
    for record in records:
        assert (record["level"], record["usage"], record["output"]) == (
            "DEFAULT", USAGE, {"role": "assistant", "content": "abc"})
