"""Review 21 critique of unnumbered streamed tool calls (Gemini's OpenAI-compatible API sends no
``index``): past the 128 calls a choice keeps, the argument pieces of a dropped call (which name no
call) were added to the latest kept call's arguments, as numbered calls' never were. Real SDK over
HTTP to the loopback fake."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

import autotrace
from autotrace.integrations.openai._stream_choices import _MAX_TOOL_CALLS
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

CALLS = [{"name": f"tool_{n}", "arguments": json.dumps({"n": n})} for n in range(_MAX_TOOL_CALLS + 2)]


@pytest.mark.parametrize("numbered", [True, False])
def test_the_pieces_of_calls_past_the_limit_are_dropped_not_joined_to_the_last_kept(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI, numbered: bool) -> None:
    fake.script(tool_calls=CALLS, chunks=2, tool_call_index=numbered)
    chunks: list[Any] = list(client.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "user", "content": "go"}], stream=True))
    assert sum(len(c.choices[0].delta.tool_calls or ()) for c in chunks if c.choices) == 3 * len(CALLS)
    calls = traced.one()["output"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        (f"call_{n}", f"tool_{n}", {"n": n}) for n in range(_MAX_TOOL_CALLS)]
    assert autotrace.stats()["openai.stream_tool_call_pieces_dropped"] == 6  # 2 calls of 3 pieces
