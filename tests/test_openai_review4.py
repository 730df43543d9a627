"""OpenAI calls the fourth review found recorded short: a parse helper's reply that the SDK rejects
(cut short, filtered, failing the caller's schema) was recorded as an error with no output, usage
or cost, though the API sent, and billed, it. Real SDK over HTTP to the loopback fake."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pydantic
import pytest

from autotrace.integrations.openai import pricing
from autotrace.observation import STREAM_CLOSED
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "weather?"}]


class Weather(pydantic.BaseModel):
    city: str

    @pydantic.field_validator("city")
    @classmethod
    def known(cls, city: str) -> str:
        if city != "Paris":
            raise ValueError("unknown city")
        return city


def _cost(model: str, tokens_in: int, tokens_out: int) -> dict[str, float]:
    cost = pricing.cost(model, {"input": tokens_in, "output": tokens_out})
    assert cost is not None
    return cost


@pytest.mark.parametrize(("finish", "content", "error"), [
    ("length", '{"city": "Pa', openai.LengthFinishReasonError),
    ("content_filter", None, openai.ContentFilterFinishReasonError),
    ("stop", '{"city": "Lyon"}', pydantic.ValidationError),
])
def test_a_chat_reply_the_parse_helper_rejects_is_recorded_with_its_usage(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI, finish: str, content: str | None,
        error: type[Exception]) -> None:
    """``chat.completions.parse`` raises for a reply cut short (``length``), filtered, or failing
    the caller's schema: the call failed, but the API sent the reply and billed its tokens."""
    fake.script(reply=content or "", finish_reason=finish, usage=(9, 4))
    with pytest.raises(error):
        client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Weather)
    record = traced.one()
    assert record["level"] == "ERROR" and record["error"] is True
    assert record["status_message"].startswith(error.__name__)
    assert record["output"] == ({"role": "assistant", "content": content} if content else {"role": "assistant"})
    assert record["usage"] == {"input": 9, "output": 4, "total": 13, "input_cached_tokens": 0,
                               "output_reasoning_tokens": 0}
    assert record["cost"] == _cost("gpt-4o-mini", 9, 4)
    assert record["metadata"]["finish_reason"] == finish


def test_a_responses_reply_the_parse_helper_rejects_is_recorded_with_its_usage(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply='{"city": "Lyon"}', usage=(12, 5))
    with pytest.raises(pydantic.ValidationError):
        client.responses.parse(model="gpt-4o-mini", input="weather?", text_format=Weather)
    record = traced.one()
    assert record["level"] == "ERROR" and record["status_message"].startswith("ValidationError")
    assert record["output"] == '{"city": "Lyon"}'  # the reply's text, kept as that text
    assert record["usage"]["input"] == 12 and record["usage"]["output"] == 5
    assert record["cost"] == _cost("gpt-4o-mini", 12, 5)
    assert record["metadata"]["response_id"] == "resp_fake"


def test_a_parsed_reply_is_recorded_as_before_and_the_options_are_put_back(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply='{"city": "Paris"}', usage=(9, 4))
    result = client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Weather)
    assert result.choices[0].message.parsed == Weather(city="Paris")
    record = traced.one()
    assert record["level"] == "DEFAULT"
    assert record["output"] == {"role": "assistant", "content": '{"city": "Paris"}', "parsed": {"city": "Paris"}}
    assert record["cost"] == _cost("gpt-4o-mini", 9, 4)


def test_a_raw_parse_call_whose_reply_is_rejected_records_it(traced: Traced, client: openai.OpenAI,
                                                             fake: FakeOpenAI) -> None:
    """``with_raw_response.parse``: the caller's ``parse()`` raises; the observation, recorded when
    the call returns, has the reply and the error (not an internal failure with nothing)."""
    fake.script(reply='{"city": "Pa', finish_reason="length", usage=(9, 4))
    raw = client.chat.completions.with_raw_response.parse(model="gpt-4o-mini", messages=MESSAGES,
                                                          response_format=Weather)
    with pytest.raises(openai.LengthFinishReasonError):
        raw.parse()
    record = traced.one()
    assert record["level"] == "ERROR" and record["status_message"].startswith("LengthFinishReasonError")
    assert record["output"] == {"role": "assistant", "content": '{"city": "Pa'}
    assert record["cost"] == _cost("gpt-4o-mini", 9, 4)


def test_an_async_raw_parse_call_whose_reply_is_rejected_records_it(traced: Traced, aclient: openai.AsyncOpenAI,
                                                                    fake: FakeOpenAI) -> None:
    fake.script(reply='{"city": "Lyon"}', usage=(9, 4))

    async def call() -> None:
        raw = await aclient.chat.completions.with_raw_response.parse(model="gpt-4o-mini", messages=MESSAGES,
                                                                     response_format=Weather)
        with pytest.raises(pydantic.ValidationError):
            await raw.parse()
        await aclient.close()

    asyncio.run(call())
    record = traced.one()
    assert record["level"] == "ERROR" and record["status_message"].startswith("ValidationError")
    assert record["output"] == {"role": "assistant", "content": '{"city": "Lyon"}'}
    assert record["cost"] == _cost("gpt-4o-mini", 9, 4)


def test_an_async_parse_call_whose_reply_is_rejected_records_it(traced: Traced, aclient: openai.AsyncOpenAI,
                                                                fake: FakeOpenAI) -> None:
    fake.script(reply="", finish_reason="content_filter", usage=(9, 4))

    async def call() -> None:
        with pytest.raises(openai.ContentFilterFinishReasonError):
            await aclient.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Weather)
        await aclient.close()

    asyncio.run(call())
    record = traced.one()
    assert record["level"] == "ERROR" and record["metadata"]["finish_reason"] == "content_filter"
    assert record["cost"] == _cost("gpt-4o-mini", 9, 4)


def test_a_failed_request_of_a_parse_helper_records_no_reply(traced: Traced, client: openai.OpenAI,
                                                             fake: FakeOpenAI) -> None:
    """No reply came (the API's error): nothing is kept, the error alone is recorded."""
    fake.script(error=(400, "bad schema"))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Weather)
    record = traced.one()
    assert record["level"] == "ERROR" and record["output"] is None and record["usage"] is None
    assert json.dumps(record["input"]) == json.dumps(MESSAGES)


# -- the SDK's stream helpers raise errors of their own ------------------------------------------------

def test_a_chat_stream_helper_that_rejects_its_parsed_reply_records_the_error(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """``chat.completions.stream(response_format=...)`` raises when the reply is cut short: the
    stream it reads never sees that error, and its loop over that stream is left as the error
    passes (which looked like a reader stopping after the reply finished: DEFAULT, no error)."""
    fake.script(reply='{"city": "Pa', finish_reason="length", usage=(9, 4))
    with pytest.raises(openai.LengthFinishReasonError), client.chat.completions.stream(
            model="gpt-4o-mini", messages=MESSAGES, response_format=Weather) as stream:
        stream.until_done()
    record = traced.one()
    assert record["level"] == "ERROR" and record["error"] is True
    assert record["status_message"].startswith("LengthFinishReasonError")
    assert record["output"] == {"role": "assistant", "content": '{"city": "Pa'}
    assert record["metadata"]["finish_reason"] == "length"


def test_a_responses_stream_helper_that_rejects_its_parsed_reply_records_the_error(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply='{"city": "Lyon"}', usage=(12, 5))
    with pytest.raises(pydantic.ValidationError), client.responses.stream(
            model="gpt-4o-mini", input="weather?", text_format=Weather) as stream:
        for _ in stream:
            pass
    record = traced.one()
    assert record["level"] == "ERROR" and record["status_message"].startswith("ValidationError")
    assert record["output"] == '{"city": "Lyon"}'  # the text streamed: the helper raises at its end,
    assert record["usage"] is None  # before the final response


def test_an_async_stream_helper_that_rejects_its_parsed_reply_records_the_error(
        traced: Traced, aclient: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply='{"city": "Lyon"}', usage=(9, 4))

    async def call() -> None:
        with pytest.raises(pydantic.ValidationError):
            async with aclient.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES,
                                                       response_format=Weather) as stream:
                await stream.get_final_completion()
        await aclient.close()

    asyncio.run(call())
    record = traced.one()
    assert record["level"] == "ERROR" and record["status_message"].startswith("ValidationError")
    assert record["output"] == {"role": "assistant", "content": '{"city": "Lyon"}'}


@pytest.mark.parametrize("kind", ["chat", "responses"])
def test_a_stream_helper_read_to_its_end_or_left_early_is_recorded_as_before(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI, kind: str) -> None:
    fake.script(reply='{"city": "Paris"}', usage=(9, 4), chunks=4)
    fake.script(reply='{"city": "Paris"}', usage=(9, 4), chunks=4)
    for leave_early in (False, True):
        manager: Any = (client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES, response_format=Weather)
                        if kind == "chat" else
                        client.responses.stream(model="gpt-4o-mini", input="weather?", text_format=Weather))
        with manager as stream:
            for event in stream:
                if leave_early and event.type.endswith(".delta"):
                    break
    full, left = traced.records()
    assert (full["level"], full["status_message"]) == ("DEFAULT", None)
    assert full["cost"] == _cost("gpt-4o-mini", 9, 4)
    assert (left["level"], left["status_message"]) == ("WARNING", STREAM_CLOSED)
    assert left["usage"] is None
