"""The usage event of a stream left at its finish reason is read before the stream closes
(``_trailing``). An async stream's iteration its reader left is closed by the event loop while
``close()`` (``async with``) reads that event: it ended the observation first, and the usage
that then arrived was lost. Real SDK over HTTP to the loopback fake."""

from __future__ import annotations

import asyncio
import errno
import os
from typing import Any

import openai
import pytest

import autotrace
from autotrace.integrations.openai import _trailing
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced
from tests.test_review18_openai_stream_usage import read_to_the_finish_of_a_stalling_server

pytestmark = pytest.mark.integrations("openai")

MESSAGES: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
USAGE = {"input": 9, "output": 4, "total": 13, "input_cached_tokens": 0, "output_reasoning_tokens": 0}


def test_an_async_stream_left_at_its_finish_reason_and_closed_records_a_usage_that_comes_late(
        traced: Traced, aclient: openai.AsyncOpenAI, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """``async with stream: async for ...: break``, the usage event 50 ms after the finish reason
    (the wait raised far above it: no timing is asserted)."""
    monkeypatch.setattr(_trailing, "_WAIT", 10.0)

    async def main() -> list[Any]:
        seen = []
        fake.script(reply="abc", chunks=3, usage=(9, 4), usage_delay=0.05)
        stream = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        async with stream:
            async for chunk in stream:
                seen.append(chunk.choices[0].finish_reason)
                if chunk.choices[0].finish_reason:
                    break
        fake.script(reply="abc", chunks=3, usage=(9, 4), usage_delay=0.05)
        async with aclient.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as helper:
            async for event in helper:
                if event.type == "content.done":
                    break
        await aclient.close()
        return seen

    assert asyncio.run(main()) == [None, None, None, None, "stop"]
    for record in traced.records():
        assert (record["level"], record["usage"], record["output"]) == (
            "DEFAULT", USAGE, {"role": "assistant", "content": "abc"})


def test_an_async_stream_read_again_after_its_reader_left_at_the_finish_reason_reads_on(
        traced: Traced, aclient: openai.AsyncOpenAI, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """The iteration left is closed by the event loop, which then reads the usage event from the
    SDK's chunks: a reader that goes on (a second loop draining the stream, ``anext``) met
    ``RuntimeError: anext(): asynchronous generator is already running`` meanwhile."""
    monkeypatch.setattr(_trailing, "_WAIT", 10.0)

    async def left_at_the_finish_reason() -> openai.AsyncStream[Any]:
        fake.script(reply="abc", chunks=3, usage=(9, 4), usage_delay=0.3)
        stream = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        async for chunk in stream:
            if chunk.choices[0].finish_reason:
                break
        await asyncio.sleep(0.02)  # the caller's own work: the event loop closes the iteration left
        return stream

    async def main() -> tuple[list[Any], str]:
        drained = [chunk async for chunk in await left_at_the_finish_reason()]
        stream = await left_at_the_finish_reason()
        with pytest.raises(StopAsyncIteration) as ended:
            await stream.__anext__()
        await aclient.close()
        return drained, type(ended.value).__name__

    assert asyncio.run(main()) == ([], "StopAsyncIteration")
    for record in traced.records():
        assert (record["level"], record["usage"], record["output"]) == (
            "DEFAULT", USAGE, {"role": "assistant", "content": "abc"})


def test_a_reader_is_freed_from_a_stalling_server_where_sockets_are_no_file_descriptors(
        traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection left was shut on a duplicate of its descriptor: where ``os.dup`` fails on
    a socket (Windows: a socket is no file descriptor), nothing was shut, and a reader that broke
    at the finish reason waited for the server or the read timeout (the SDK's: ten minutes)."""

    def no_descriptor(fd: int) -> int:
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(os, "dup", no_descriptor)
    assert read_to_the_finish_of_a_stalling_server() == [None, "stop"]
    assert autotrace.stats()["openai.stream_trailing_timeout"] == 1
