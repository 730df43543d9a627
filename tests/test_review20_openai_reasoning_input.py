"""A reasoning item given back as Responses input keeps its text in the recorded input: a long
``reasoning_text`` (a part of no text type) was taken for an inline payload by its length alone
and recorded as ``<base64, N chars>``. A long string that starts as base64 still is noted. Real
SDK over HTTP to the loopback fake."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

REASONING = "The user asks for the weather in Paris, so I call the weather tool first. " * 20
PAYLOAD = "iVBORw0KGgoAAAANSUhEUgAA" * 60  # raw base64, in a field that does not say it is one


def test_a_reasoning_items_text_given_back_as_input_is_kept(traced: Traced, client: openai.OpenAI,
                                                            fake: FakeOpenAI) -> None:
    reasoning: dict[str, Any] = {"type": "reasoning", "id": "rs_1",
                                 "summary": [{"type": "summary_text", "text": "Weather lookup."}],
                                 "content": [{"type": "reasoning_text", "text": REASONING}]}
    image = {"type": "input_image", "image_url": PAYLOAD, "detail": "low"}
    conversation = [{"role": "user", "content": "weather in Paris?"}, reasoning,
                    {"role": "user", "content": [{"type": "input_text", "text": "and this?"}, image]}]
    client.responses.create(model="o3", input=conversation)
    assert traced.one()["input"] == [
        {"role": "user", "content": "weather in Paris?"},
        reasoning,
        {"role": "user", "content": [{"type": "input_text", "text": "and this?"},
                                     {**image, "image_url": f"<base64, {len(PAYLOAD)} chars>"}]},
    ]
    assert fake.requests[-1]["body"]["input"] == conversation  # sent as the caller made it


def test_a_long_text_in_a_part_of_another_type_is_kept_in_a_chat_input(traced: Traced, client: openai.OpenAI) -> None:
    """Any text: CJK text (no space, no ASCII) and a compatible server's ``thinking`` part."""
    cjk = "巴黎的天气怎么样我应该先调用天气工具然后总结" * 60
    messages: list[Any] = [{"role": "assistant", "content": [{"type": "thinking", "thinking": REASONING},
                                                              {"type": "thinking", "thinking": cjk},
                                                              {"type": "text", "text": "Sunny."}]},
                           {"role": "user", "content": "thanks"}]
    client.chat.completions.create(model="gpt-4o", messages=messages)
    assert traced.one()["input"] == messages
