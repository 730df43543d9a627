"""OpenAI calls found off the path in an audit: servers that reject the ``stream_options`` autotrace
adds, media sent inline as base64, servers' odd model names and counts, Responses API parameters.
The caller gets what the SDK alone would give; the record says what happened."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest

import autotrace
from autotrace.integrations import openai as openai_integration
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "where is my order"}]


@pytest.fixture(autouse=True)
def _no_refusals() -> Iterator[None]:
    yield
    openai_integration._REFUSALS.endpoints.clear()


@pytest.fixture
def refusing() -> Iterator[FakeOpenAI]:
    """A server that rejects ``stream_options`` (Azure OpenAI before API version 2024-09-01)."""
    with FakeOpenAI() as server:
        server.reject_stream_options = True
        yield server


def _chain(error: BaseException | None) -> list[BaseException]:
    """``error`` and the exceptions it was raised while handling."""
    found = []
    while error is not None:
        found.append(error)
        error = error.__context__
    return found


def _azure(fake: FakeOpenAI, api_version: str = "2024-06-01") -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=fake.root_url, api_version=api_version, api_key="x", max_retries=0)


def test_a_server_rejecting_stream_options_still_streams_to_the_caller(traced: Traced,
                                                                       refusing: FakeOpenAI) -> None:
    azure = _azure(refusing)
    for _ in range(2):
        stream = azure.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "echo: where is my order"
    # the first stream is sent again as the caller made it; the next one is sent so at once
    assert ["stream_options" in r["body"] for r in refusing.requests] == [True, False, False]
    records = traced.records()
    assert [(r["level"], r["output"]["content"]) for r in records] == [("DEFAULT", "echo: where is my order")] * 2
    assert autotrace.stats()["openai.stream_options_rejected"] == 1


def test_another_api_version_of_the_endpoint_is_asked_for_usage_again(traced: Traced, refusing: FakeOpenAI) -> None:
    for client in (_azure(refusing), _azure(refusing, api_version="2024-10-21")):
        for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
            pass
    assert ["stream_options" in r["body"] for r in refusing.requests] == [True, False, True, False]


def test_an_async_stream_rejected_for_stream_options_is_sent_again(traced: Traced, refusing: FakeOpenAI) -> None:
    client = openai.AsyncOpenAI(base_url=refusing.base_url, api_key="x", max_retries=0)

    async def main() -> str:
        stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(main()) == "echo: where is my order"
    assert len(refusing.requests) == 2
    (record,) = traced.records()
    assert record["output"]["content"] == "echo: where is my order"


def test_a_rejection_of_the_callers_own_request_is_not_sent_again(traced: Traced, fake: FakeOpenAI,
                                                                  client: openai.OpenAI) -> None:
    fake.script(error=(400, "Invalid value for 'temperature'"))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, temperature=9)
    assert len(fake.requests) == 1
    (record,) = traced.records()
    assert record["level"] == "ERROR"


def test_a_second_failure_reaches_the_caller_as_the_sdk_raised_it(traced: Traced, refusing: FakeOpenAI) -> None:
    refusing.script(error=(400, "Unrecognized request argument supplied: stream_options"))
    refusing.script(error=(429, "slow down"))
    with pytest.raises(openai.RateLimitError) as raised:
        _azure(refusing).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    # not chained to the rejection the caller never caused
    assert not any("stream_options" in str(e) for e in _chain(raised.value))
    (record,) = traced.records()
    assert record["level"] == "ERROR" and "slow down" in record["status_message"]


IMAGE = "data:image/png;base64," + "iVBORw0KGgo" * 10_000  # 110 kB, past the value limit once with the text


def test_an_inline_image_is_noted_and_the_conversation_after_it_kept(traced: Traced, client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}},
                                             {"type": "input_audio", "input_audio": {"data": "UklGR" * 400,
                                                                                     "format": "wav"}}]},
                {"role": "assistant", "content": "a cat"}, {"role": "user", "content": "what colour is it"}]
    client.chat.completions.create(model="gpt-4o", messages=messages)
    (record,) = traced.records()
    assert record["input"] == [
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": f"<image/png base64, {len(IMAGE)} chars>", "detail": "low"}},
            {"type": "input_audio", "input_audio": {"data": "<base64, 2000 chars>", "format": "wav"}}]},
        {"role": "assistant", "content": "a cat"}, {"role": "user", "content": "what colour is it"}]
    assert messages[0]["content"][0]["image_url"]["url"] == IMAGE  # the caller's messages are left as they are
    assert "attributes_truncated" not in autotrace.stats()


def test_an_inline_image_given_to_the_responses_api_is_noted(traced: Traced, client: openai.OpenAI) -> None:
    long_text = "tell me about it " * 100  # a long text is the conversation: kept
    given = [{"role": "user", "content": [{"type": "input_image", "image_url": IMAGE},
                                          {"type": "input_image", "image_url": "https://example.com/cat.png"},
                                          {"type": "input_text", "text": long_text}]}]
    client.responses.create(model="gpt-4.1", input=given, instructions="be brief")
    (record,) = traced.records()
    assert record["input"] == {"instructions": "be brief", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": f"<image/png base64, {len(IMAGE)} chars>"},
        {"type": "input_image", "image_url": "https://example.com/cat.png"},
        {"type": "input_text", "text": long_text}]}]}


def test_a_model_name_that_is_no_string_costs_nothing_else(traced: Traced, fake: FakeOpenAI,
                                                            client: openai.OpenAI) -> None:
    fake.script(model=123, usage=(10, 2))  # type: ignore[arg-type]  # a compatible server's odd reply
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (record,) = traced.records()
    assert record["usage"]["input"] == 10 and record["metadata"]["finish_reason"] == "stop"
    assert record["cost"] is None
    assert not any(name.startswith("internal_errors") for name in autotrace.stats())


def test_cached_tokens_past_the_input_never_make_a_negative_cost(traced: Traced, fake: FakeOpenAI,
                                                                 client: openai.OpenAI) -> None:
    fake.script(usage=(10, 2), cached_tokens=50)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (record,) = traced.records()
    assert record["cost"] == pytest.approx({"input": 10 * 1.25 / 1e6, "output": 2 * 10.0 / 1e6,
                                            "total": (10 * 1.25 + 2 * 10.0) / 1e6})


def test_responses_api_reasoning_and_text_options_are_model_parameters(traced: Traced,
                                                                       client: openai.OpenAI) -> None:
    client.responses.create(model="o3", input="hi", reasoning={"effort": "high"}, text={"verbosity": "low"},
                            truncation="auto", max_output_tokens=50)
    (record,) = traced.records()
    assert record["model_parameters"] == {"reasoning": {"effort": "high"}, "text": {"verbosity": "low"},
                                          "truncation": "auto", "max_output_tokens": 50}


def test_a_spoken_reply_is_recorded_with_its_transcript_and_its_audio_noted(traced: Traced, fake: FakeOpenAI,
                                                                          client: openai.OpenAI) -> None:
    audio = "UklGRiQA" * 20_000  # 160 kB of base64 wav
    fake.script(reply="it is a cat", audio=audio)
    reply = client.chat.completions.create(model="gpt-4o-audio-preview", modalities=["text", "audio"],
                                           audio={"voice": "alloy", "format": "wav"},
                                           messages=[{"role": "user", "content": "what is it?"}])
    assert reply.choices[0].message.audio.data == audio  # the caller's reply is untouched
    (record,) = traced.records()
    assert record["output"]["audio"] == {"id": "audio_fake", "data": f"<base64, {len(audio)} chars>",
                                         "expires_at": reply.choices[0].message.audio.expires_at,
                                         "transcript": "it is a cat"}
    assert record["output"]["role"] == "assistant" and "attributes_truncated" not in autotrace.stats()
