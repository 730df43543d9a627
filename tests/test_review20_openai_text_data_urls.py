"""A base64 data URL inside a message's text (a scraped page's inline image in a RAG context, a
pasted screenshot) is noted in the recorded input by its kind and size, as an image part's is: it
was recorded in full, filling the input to its size limit and cutting off the conversation after
it. The request goes as the caller made it. Real SDK over HTTP to the loopback fake."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

URL = "data:image/png;base64," + "iVBORw0KGgoAAAANSUhEUgAA" * 400
NOTE = f"<image/png base64, {len(URL)} chars>"


def test_a_data_url_in_a_messages_text_is_noted(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    messages: list[Any] = [
        {"role": "system", "content": f"Context:\n![chart]({URL})\nRevenue grew 12%."},
        {"role": "user", "content": [{"type": "text", "text": f"see <img src=\"{URL}\"> here"},
                                     {"type": "text", "text": "and summarise"}]},
        {"role": "user", "content": "no image here; base64 is a word"}]
    client.chat.completions.create(model="gpt-4o", messages=messages)
    assert traced.one()["input"] == [
        {"role": "system", "content": f"Context:\n![chart]({NOTE})\nRevenue grew 12%."},
        {"role": "user", "content": [{"type": "text", "text": f"see <img src=\"{NOTE}\"> here"},
                                     {"type": "text", "text": "and summarise"}]},
        {"role": "user", "content": "no image here; base64 is a word"}]
    assert fake.requests[-1]["body"]["messages"] == messages


def test_a_text_conversation_is_recorded_as_given(traced: Traced, client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "what does ;base64, mean in a data URL?"}]
    client.chat.completions.create(model="gpt-4o", messages=messages)
    assert traced.one()["input"] == messages
