"""Streamed tool calls from a compatible server that numbers none (Gemini's OpenAI-compatible
API sends no ``index``: a call's first piece names its id, its later pieces nothing). They were
all kept under the one missing index, recorded as a single call whose name and arguments ran the
calls together. Real SDK over HTTP to the loopback fake."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MESSAGES: list[Any] = [{"role": "user", "content": "weather and time in Paris?"}]
CALLS = [{"name": "get_weather", "arguments": '{"city": "Paris"}'}, {"name": "get_time", "arguments": '{"tz": "CET"}'}]
RECORDED = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
    {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": '{"tz": "CET"}'}}]}


def _pieces(chunks: list[Any]) -> list[tuple[Any, Any, Any]]:
    return [(call.index, call.id, call.function.arguments)
            for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or ()]


def test_unnumbered_streamed_tool_calls_are_recorded_apart(traced: Traced, client: openai.OpenAI,
                                                           fake: FakeOpenAI) -> None:
    fake.script(tool_calls=CALLS, chunks=3, tool_call_index=False, model="gemini-2.5-flash")
    chunks = list(client.chat.completions.create(model="gemini-2.5-flash", messages=MESSAGES, stream=True))
    assert _pieces(chunks) == [(None, "call_0", ""), (None, None, '{"cit'), (None, None, 'y": "P'),
                               (None, None, 'aris"}'), (None, "call_1", ""), (None, None, '{"tz'),
                               (None, None, '": "'), (None, None, 'CET"}')]  # as the server sent them
    record = traced.one()
    assert record["output"] == RECORDED
    assert (record["level"], record["metadata"]["finish_reason"]) == ("DEFAULT", "tool_calls")


def test_unnumbered_tool_calls_of_an_async_stream(traced: Traced, aclient: openai.AsyncOpenAI,
                                                  fake: FakeOpenAI) -> None:
    async def main() -> list[Any]:
        fake.script(tool_calls=CALLS, chunks=2, tool_call_index=False)
        stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        return [chunk async for chunk in stream]

    assert len(asyncio.run(main())) == 8  # the role, 2 x (the id and name, 2 pieces), the finish (no usage chunk)
    assert traced.one()["output"] == RECORDED


def test_numbered_tool_calls_keep_their_index_order(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """The API's own pieces (numbered) are read by their index, as before."""
    fake.script(tool_calls=CALLS, chunks=3)
    list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert traced.one()["output"] == RECORDED
