"""A base64 data URL in a model's reply text (a chat message's ``content``, a Responses reply's
``output_text``) is noted in the recorded output by its kind and size, as it is when the same text
is sent back as input: it was recorded in full, filling the output to its size limit. The caller
gets the reply as the API gave it. Real SDK over HTTP to the loopback fake."""

from __future__ import annotations

import openai
import pytest

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

URL = "data:image/png;base64," + "iVBORw0KGgoAAAANSUhEUgAA" * 400
NOTE = f"<image/png base64, {len(URL)} chars>"
REPLY = f"Here is the chart: ![chart]({URL}) Revenue grew 12%."
NOTED = f"Here is the chart: ![chart]({NOTE}) Revenue grew 12%."
WEB_SEARCH = {"type": "web_search_call", "id": "ws_1", "status": "completed",
              "action": {"type": "search", "query": "revenue chart"}}


def test_a_data_url_in_a_chat_reply_is_noted_as_it_is_when_sent_back(traced: Traced, client: openai.OpenAI,
                                                                      fake: FakeOpenAI) -> None:
    fake.script(reply=REPLY)
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "chart?"}])
    assert reply.choices[0].message.content == REPLY  # the caller's reply as the API gave it
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "assistant", "content": REPLY}])
    first, sent_back = traced.records()
    assert first["output"] == {"role": "assistant", "content": NOTED}
    assert sent_back["input"] == [{"role": "assistant", "content": NOTED}]


def test_a_chat_reply_without_a_data_url_is_recorded_as_given(traced: Traced, client: openai.OpenAI,
                                                              fake: FakeOpenAI) -> None:
    fake.script(reply="a short data:image/png;base64,AAAA example and ;base64, as a word")
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "what is it?"}])
    assert traced.one()["output"] == {"role": "assistant",
                                      "content": "a short data:image/png;base64,AAAA example and ;base64, as a word"}


def test_a_data_url_in_a_responses_reply_text_is_noted(traced: Traced, client: openai.OpenAI,
                                                       fake: FakeOpenAI) -> None:
    fake.script(reply=REPLY)
    assert client.responses.create(model="gpt-4o", input="chart?").output_text == REPLY
    fake.script(reply=REPLY)
    with client.responses.stream(model="gpt-4o", input="chart?") as stream:
        assert stream.get_final_response().output_text == REPLY
    plain, streamed = traced.records()
    assert plain["output"] == NOTED
    assert streamed["output"] == NOTED


def test_a_data_url_in_a_responses_message_item_beside_a_tool_is_noted(traced: Traced, client: openai.OpenAI,
                                                                       fake: FakeOpenAI) -> None:
    fake.script(reply=REPLY, hosted=[WEB_SEARCH])
    response = client.responses.create(model="gpt-4o", input="chart?")
    assert response.output[1].content[0].text == REPLY
    search, message = traced.one()["output"]
    assert search["type"] == "web_search_call"
    assert message["type"] == "message"
    assert message["content"] == [{"type": "output_text", "text": NOTED, "annotations": []}]


def test_a_data_url_in_a_responses_stream_closed_early_is_noted(traced: Traced, client: openai.OpenAI,
                                                                fake: FakeOpenAI) -> None:
    fake.script(reply=REPLY, chunks=4)
    with client.responses.stream(model="gpt-4o", input="chart?") as stream:
        for event in stream:
            if event.type == "response.output_text.done":
                break  # the text streamed; the final response never read
    assert traced.one()["output"] == NOTED


@pytest.mark.parametrize("completion", [False, True], ids=["chat", "legacy-completions"])
def test_a_data_url_in_a_streamed_reply_is_noted(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI,
                                                 completion: bool) -> None:
    """A streamed reply's joined text too (chat and legacy completions), as one not streamed."""
    fake.script(reply=REPLY, chunks=5)
    if completion:
        stream = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="chart?", stream=True)
        assert "".join(chunk.choices[0].text for chunk in stream if chunk.choices) == REPLY
    else:
        stream = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "chart?"}],
                                                stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == REPLY
    output = traced.one()["output"]
    assert output == (NOTED if completion else {"role": "assistant", "content": NOTED})
