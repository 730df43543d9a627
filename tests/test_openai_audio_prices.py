"""What OpenAI's audio calls cost, as recorded: speech to text priced per token of each kind (audio
input dearer than text input), speech priced per character of its text (``tts-1``, ``tts-1-hd``)
or per token when its reply streamed as events says how many (``gpt-4o-mini-tts``). Each through
the real SDK against the loopback fake server; the caller gets what the SDK alone would give."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import openai
import pytest

from autotrace.integrations.openai import _media, pricing
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

AUDIO = ("call.mp3", b"\xff\xfb" * 1024, "audio/mpeg")  # 2048 bytes: 20 audio tokens at the fake
#: The fake's usage for AUDIO: 20 audio tokens and 2 text (prompt) tokens in, 6 text tokens out.
USAGE = {"input": 22, "output": 6, "total": 28, "input_audio_tokens": 20, "input_text_tokens": 2}
TEXT = "Your order has shipped."  # 23 characters



def _cost(input_cost: float, output_cost: float) -> Any:
    return pytest.approx({"input": input_cost, "output": output_cost, "total": input_cost + output_cost})


# -- speech to text: audio and text input priced apart ---------------------------------------------
@pytest.mark.parametrize(("model", "text_in", "audio_in", "text_out"), [
    ("gpt-4o-transcribe", 2.50, 6.0, 10.0),
    ("gpt-4o-mini-transcribe", 1.25, 3.0, 5.0),
    ("gpt-4o-mini-transcribe-2025-12-15", 1.25, 3.0, 5.0),  # a snapshot: its base model's price
])
def test_a_transcription_prices_its_audio_and_text_input_apart(traced: Traced, client: openai.OpenAI, model: str,
                                                               text_in: float, audio_in: float,
                                                               text_out: float) -> None:
    assert client.audio.transcriptions.create(model=model, file=AUDIO).text == "transcript of call.mp3"
    record = traced.one()
    assert (record["model"], record["usage"]) == (model, USAGE)
    assert record["cost"] == _cost((20 * audio_in + 2 * text_in) / 1e6, 6 * text_out / 1e6)


def test_a_streamed_transcript_prices_its_audio_input_as_audio(traced: Traced, client: openai.OpenAI,
                                                               fake: FakeOpenAI) -> None:
    fake.script(chunks=2, reply="hello from the caller", usage=(200, 5))
    events = list(client.audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO, stream=True))
    assert [e.type for e in events] == ["transcript.text.delta"] * 2 + ["transcript.text.done"]
    record = traced.one()
    assert record["usage"] == {"input": 202, "output": 5, "total": 207, "input_audio_tokens": 200,
                               "input_text_tokens": 2}
    assert record["cost"] == _cost((200 * 6.0 + 2 * 2.50) / 1e6, 5 * 10.0 / 1e6)


def test_a_transcript_without_its_input_split_gets_no_cost() -> None:
    """A compatible server's usage with no split by kind: no price fits it, so none is guessed."""
    assert pricing.media_cost("gpt-4o-transcribe", {"input": 22, "output": 6, "total": 28}) is None
    assert pricing.media_cost("gpt-4o-mini-transcribe", {"input": 22, "input_audio_tokens": 20, "output": 6}) is None


def test_a_price_set_for_a_transcription_model_is_used(traced: Traced, client: openai.OpenAI) -> None:
    """``set_prices`` overrides the built-in prices of a media model too (an Azure deployment's);
    the tables are put back after each test (``conftest``)."""
    pricing.set_prices({"gpt-4o-transcribe": (1.0, 1.0, 2.0)})
    client.audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO)
    assert traced.one()["cost"] == _cost(22 * 1.0 / 1e6, 6 * 2.0 / 1e6)


# -- speech: per character of its text, or per token when the reply says ----------------------------
@pytest.mark.parametrize(("model", "per_million"), [("tts-1", 15.0), ("tts-1-hd", 30.0), ("tts-1-hd-1106", 30.0)])
def test_speech_by_a_tts_model_is_priced_per_character_of_its_text(traced: Traced, client: openai.OpenAI,
                                                                   model: str, per_million: float) -> None:
    audio = client.audio.speech.create(model=model, voice="alloy", input=TEXT)
    assert len(audio.content) == len(TEXT) * 40
    record = traced.one()
    assert (record["input"], record["output"], record["usage"]) == (TEXT, "<audio/mpeg, 920 bytes>", None)
    assert record["metadata"]["input_characters"] == 23
    assert record["cost"] == _cost(23 * per_million / 1e6, 0.0)


async def test_async_speech_counts_the_characters_of_a_text_beyond_ascii(traced: Traced,
                                                                         aclient: openai.AsyncOpenAI) -> None:
    text = "Grüße aus Köln ☕"  # 16 characters, sent as JSON escapes
    raw = await aclient.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input=text)
    assert raw.headers["content-type"] == "audio/mpeg"
    record = traced.one()
    assert record["metadata"]["input_characters"] == 16
    assert record["cost"] == _cost(16 * 15.0 / 1e6, 0.0)


def test_speech_by_gpt_4o_mini_tts_as_audio_has_no_usage_and_no_cost(traced: Traced, client: openai.OpenAI) -> None:
    """Its audio output is priced per token, and an audio reply gives no count: none is guessed."""
    client.audio.speech.create(model="gpt-4o-mini-tts", voice="coral", input=TEXT, instructions="Speak warmly.")
    record = traced.one()
    assert (record["usage"], record["cost"]) == (None, None)
    assert record["metadata"]["input_characters"] == 23


def test_speech_streamed_as_events_records_its_usage_and_cost(traced: Traced, client: openai.OpenAI,
                                                              fake: FakeOpenAI) -> None:
    fake.script(chunks=3, usage=(9, 410))
    reply = client.audio.speech.create(model="gpt-4o-mini-tts", voice="coral", input=TEXT, stream_format="sse")
    events = [json.loads(line[len("data: "):]) for line in reply.text.split("\n\n") if line]
    assert [event["type"] for event in events] == ["speech.audio.delta"] * 3 + ["speech.audio.done"]
    assert len(base64.b64decode("".join(event["audio"] for event in events[:-1]))) == len(TEXT) * 40
    record = traced.one()
    assert record["output"] == f"<text/event-stream, {len(reply.content)} bytes>"
    assert record["usage"] == {"input": 9, "output": 410, "total": 419}
    assert record["model_parameters"] == {"voice": "coral", "stream_format": "sse"}
    assert record["metadata"]["input_characters"] == 23
    assert record["cost"] == _cost(9 * 0.60 / 1e6, 410 * 12.0 / 1e6)


DONE = b'{"type": "speech.audio.done", "usage": {"input_tokens": 3, "output_tokens": 7, "total_tokens": 10}}'


@pytest.mark.parametrize(("content_type", "body", "usage"), [
    ("text/event-stream", b'data: {"type": "speech.audio.delta", "audio": "AAAA"}\n\ndata: ' + DONE + b"\n\n",
     {"input": 3, "output": 7, "total": 10}),
    # named events and CRLF line ends: the event's name is no JSON string, only its data is read
    ("text/event-stream; charset=utf-8", b"event: speech.audio.done\r\ndata: " + DONE + b"\r\n\r\n",
     {"input": 3, "output": 7, "total": 10}),
    ("text/event-stream", b'data: {"type": "speech.audio.delta", "audio": "AAAA"}\n\n', None),  # cut short
    ("text/event-stream", b'data: {"type": "speech.audio.done", "usage": {"input_tok', None),  # cut mid-event
    ("audio/mpeg", b"data: " + DONE, None),  # audio bytes are not searched
])
def test_speech_usage_is_read_from_a_read_event_stream_only(content_type: str, body: bytes,
                                                            usage: dict[str, int] | None) -> None:
    response = httpx.Response(200, headers={"content-type": content_type}, content=body)
    assert _media.usage_fields(_media._speech_usage(response)) == usage
    unread = httpx.Response(200, headers={"content-type": content_type}, stream=httpx.ByteStream(body))
    assert _media._speech_usage(unread) is None  # a body the caller reads is never read here
