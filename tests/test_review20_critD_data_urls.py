"""Review 20 (critique D) of data URLs inside a message's text: a text that starts with a data URL
was noted whole, the question after the image lost with it; a payload broken into MIME lines was
noted up to its first line break only, the rest of it recorded in full; and one in JSON text whose
slashes and line breaks are escaped (``\\/``, ``\\n``) up to its first slash; and a short one written as an example (a
question about data URLs) was noted too, the text losing its subject. Real SDK over HTTP to the
loopback fake."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

PAYLOAD = "iVBORw0KGgoAAAANSUhEUgAA" * 400
URL = "data:image/png;base64," + PAYLOAD
LINES = "data:image/png;base64," + "\r\n".join(PAYLOAD[i:i + 76] for i in range(0, len(PAYLOAD), 76))
ESCAPED = json.dumps({"src": "data:image/png;base64," + "\n".join(["ab/cd+" * 13] * 80)}).replace("/", "\\/")
ESCAPED_URL = ESCAPED[len('{"src": "'):-2]


def _note(url: str) -> str:
    return f"<image{url[10:url.index(';')]} base64, {len(url)} chars>"


def test_the_text_around_a_data_url_is_kept_and_its_whole_payload_noted(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    messages: list[Any] = [
        {"role": "system", "content": f"Page:\n{LINES}\nRevenue grew 12%."},
        {"role": "user", "content": f"{URL}\n\nWhat is in this picture?"},
        {"role": "user", "content": [{"type": "text", "text": f"tool said {ESCAPED}"}]}]
    client.chat.completions.create(model="gpt-4o", messages=messages)
    # before: the question noted away with the image ("<image/png base64, 9650 chars>" alone), 9,526
    # characters of the broken payload kept, and most of the escaped one
    assert traced.one()["input"] == [
        {"role": "system", "content": f"Page:\n{_note(LINES)}\nRevenue grew 12%."},
        {"role": "user", "content": f"{_note(URL)}\n\nWhat is in this picture?"},
        {"role": "user", "content": [{"type": "text", "text": f'tool said {{"src": "{_note(ESCAPED_URL)}"}}'}]}]
    assert fake.requests[-1]["body"]["messages"] == messages


def test_a_text_about_data_urls_keeps_its_short_examples(traced: Traced, client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Why does the data:image/png;base64, prefix break my "
                                            "<img src=\"data:image/png;base64,iVBORw0KGgo=\">?"}]
    client.chat.completions.create(model="gpt-4o", messages=messages)
    # before: "Why does the <image/png base64, 22 chars> prefix break my <img src=\"<image/png ...>\">?"
    assert traced.one()["input"] == messages
