"""A Responses call's ``input`` given as one string, and its ``instructions``, are a message's text:
a base64 data URL in them (a scraped page's inline image) is noted by its kind and size, as in a
chat message's text; it was recorded in full. The request goes as the caller made it. Real SDK
over HTTP to the loopback fake."""

from __future__ import annotations

import openai
import pytest

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

URL = "data:image/png;base64," + "iVBORw0KGgoAAAANSUhEUgAA" * 400
NOTE = f"<image/png base64, {len(URL)} chars>"


def test_a_data_url_in_a_string_input_and_instructions_is_noted(traced: Traced, client: openai.OpenAI,
                                                                  fake: FakeOpenAI) -> None:
    text, instructions = f"Page:\n<img src=\"{URL}\">\nSummarise it.", f"Logo: ![logo]({URL})"
    client.responses.create(model="gpt-4o", input=text)
    client.responses.create(model="gpt-4o", input="plain", instructions=instructions)
    first, second = traced.records()
    assert first["input"] == "Page:\n<img src=\"" + NOTE + "\">\nSummarise it."
    assert second["input"] == {"instructions": f"Logo: ![logo]({NOTE})", "input": "plain"}
    assert fake.requests[-2]["body"]["input"] == text
    assert fake.requests[-1]["body"]["instructions"] == instructions


def test_a_plain_string_input_is_recorded_as_given(traced: Traced, client: openai.OpenAI) -> None:
    client.responses.create(model="gpt-4o", input="what does ;base64, mean?", instructions="be brief")
    assert traced.one()["input"] == {"instructions": "be brief", "input": "what does ;base64, mean?"}
