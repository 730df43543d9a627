"""OpenAI calls as a voice or image agent makes them: speech to text (transcriptions,
translations, streamed transcripts), text to speech (plain, raw, streamed responses) and images
(generate, edit, streamed). Each call is one generation; the caller gets what the SDK alone would
give, and no byte of an upload or of generated media is recorded."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

import openai
import pytest

from autotrace.integrations.openai import _extract, pricing
from autotrace.observation import STREAM_CLOSED
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

AUDIO = ("call.mp3", b"\xff\xfb" * 1024, "audio/mpeg")  # 2048 bytes
GPT4O_USAGE = {"input": 22, "output": 6, "total": 28, "input_audio_tokens": 20, "input_text_tokens": 2}
GPT4O_COST = {"input": (20 * 6.0 + 2 * 2.5) / 1e6, "output": 6 * 10.0 / 1e6,  # audio and text input priced apart
              "total": (20 * 6.0 + 2 * 2.5 + 6 * 10.0) / 1e6}



def _metadata(record: dict[str, Any]) -> dict[str, Any]:
    """The record's metadata without what every OpenAI call has (provider, base URL)."""
    return {k: v for k, v in record["metadata"].items() if k not in ("provider", "base_url")}


# -- speech to text ------------------------------------------------------------------------------------
def test_a_whisper_transcription_records_the_upload_as_a_note_and_its_duration(traced: Traced,
                                                                               client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(model="whisper-1", file=AUDIO, language="en", prompt="Acme Corp",
                                                response_format="verbose_json", temperature=0.2)
    assert result.text == "transcript of call.mp3" and result.duration == 4.2
    record = traced.one()
    assert (record["name"], record["type"], record["model"]) == ("openai.audio.transcriptions", "generation",
                                                                 "whisper-1")
    assert record["model_parameters"] == {"language": "en", "prompt": "Acme Corp", "response_format": "verbose_json",
                                          "temperature": 0.2}
    assert record["input"] == "<audio/mpeg file call.mp3, 2048 bytes>"
    assert record["output"] == "transcript of call.mp3"
    assert _metadata(record) == {"operation": "transcription", "language": "english", "audio_seconds": 4.2}
    assert record["usage"] is None  # a duration: Langfuse's usage counts carry no unit
    assert record["cost"] == pytest.approx({"input": 4.2 / 60 * 0.006, "output": 0.0, "total": 4.2 / 60 * 0.006})
    assert record["level"] == "DEFAULT"


def test_a_gpt4o_transcription_records_token_usage_by_kind_and_its_cost(traced: Traced,
                                                                        client: openai.OpenAI) -> None:
    assert client.audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO).text == "transcript of call.mp3"
    record = traced.one()
    assert (record["output"], record["usage"]) == ("transcript of call.mp3", GPT4O_USAGE)
    assert record["cost"] == pytest.approx(GPT4O_COST)
    assert _metadata(record) == {"operation": "transcription"}


def test_a_transcript_as_text_is_recorded_as_returned_and_an_open_file_is_measured_unread(
        traced: Traced, client: openai.OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "voicemail.mp3"
    path.write_bytes(b"\x00" * 3000)
    with path.open("rb") as audio:
        srt = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=audio, response_format="srt")
    assert srt == "1\n00:00:00,000 --> 00:00:04,200\ntranscript of voicemail.mp3\n\n"
    record = traced.one()
    kind = mimetypes.guess_type("voicemail.mp3")[0] or "audio"
    assert record["input"] == f"<{kind} file voicemail.mp3, 3000 bytes>"
    assert (record["output"], record["usage"], record["cost"]) == (srt, None, None)


async def test_an_async_translation_is_one_generation(traced: Traced, aclient: openai.AsyncOpenAI) -> None:
    result = await aclient.audio.translations.create(model="whisper-1", file=AUDIO)
    assert result.text == "transcript of call.mp3"
    record = traced.one()
    assert (record["name"], record["input"], record["output"]) == (
        "openai.audio.translations", "<audio/mpeg file call.mp3, 2048 bytes>", "transcript of call.mp3")
    assert _metadata(record) == {"operation": "translation", "audio_seconds": 4.2}


def test_a_streamed_transcript_is_recorded_when_it_ends(traced: Traced, client: openai.OpenAI,
                                                        fake: FakeOpenAI) -> None:
    fake.script(chunks=3, reply="hello from the caller", usage=(20, 6))
    events = list(client.audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO, stream=True))
    assert [e.type for e in events] == ["transcript.text.delta"] * 3 + ["transcript.text.done"]
    record = traced.one()
    assert (record["output"], record["usage"], record["level"]) == ("hello from the caller", GPT4O_USAGE, "DEFAULT")
    assert record["cost"] == pytest.approx(GPT4O_COST)
    assert record["model_parameters"] == {"stream": True} and record["completion_start_time"] is not None


def test_a_streamed_transcript_left_early_keeps_what_was_streamed(traced: Traced, client: openai.OpenAI,
                                                                  fake: FakeOpenAI) -> None:
    fake.script(chunks=3, reply="hello from the caller")
    stream = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO, stream=True)
    for event in stream:
        if event.type == "transcript.text.delta":
            break
    stream.close()
    record = traced.one()
    assert (record["output"], record["usage"]) == ("hello f", None)
    assert (record["level"], record["status_message"]) == ("WARNING", STREAM_CLOSED)


def test_a_failed_transcription_records_the_error_and_the_caller_gets_it_unchanged(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(error=(400, "Invalid file format. Supported formats: ['flac', 'mp3']"))
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=("notes.txt", b"hello", "text/plain"))
    assert caught.value.status_code == 400
    record = traced.one()
    assert record["level"] == "ERROR" and "Invalid file format" in record["status_message"]
    assert (record["input"], record["output"]) == ("<text/plain file notes.txt, 5 bytes>", None)


# -- text to speech --------------------------------------------------------------------------------------
def test_speech_records_its_text_and_a_note_of_the_audio(traced: Traced, client: openai.OpenAI) -> None:
    audio = client.audio.speech.create(model="gpt-4o-mini-tts", voice="coral", input="Your order has shipped.",
                                       instructions="Speak warmly.", speed=1.25, response_format="wav")
    assert len(audio.content) == len("Your order has shipped.") * 40
    record = traced.one()
    assert (record["name"], record["model"], record["input"]) == ("openai.audio.speech", "gpt-4o-mini-tts",
                                                                  "Your order has shipped.")
    assert record["model_parameters"] == {"voice": "coral", "instructions": "Speak warmly.", "response_format": "wav",
                                          "speed": 1.25}
    assert record["output"] == "<audio/wav, 920 bytes>"
    assert (record["usage"], record["cost"]) == (None, None)


def test_speech_with_raw_response_gives_the_caller_the_same_bytes(traced: Traced, client: openai.OpenAI) -> None:
    raw = client.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input="hello")
    assert raw.headers["content-type"] == "audio/mpeg" and len(raw.parse().content) == 200
    assert traced.one()["output"] == "<audio/mpeg, 200 bytes>"


@pytest.mark.parametrize("how", ["read", "iter_bytes"])
def test_streamed_speech_is_not_read_by_autotrace_and_is_noted_as_its_block_ends(traced: Traced,
                                                                                client: openai.OpenAI,
                                                                                how: str) -> None:
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="hello") as response:
        assert "_content" not in response.http_response.__dict__  # the body is still the caller's to read
        data = response.read() if how == "read" else b"".join(response.iter_bytes())
        assert traced.records() == []  # the caller is still reading it
    assert len(data) == 200
    record = traced.one()  # a parse would add nothing: ended with the block (``response`` still held)
    assert record["output"] == ("<audio/mpeg, 200 bytes>" if how == "read" else "<audio/mpeg>")
    assert (record["input"], record["level"]) == ("hello", "DEFAULT")


# -- images ----------------------------------------------------------------------------------------------
def test_a_dalle_image_keeps_its_address_and_revised_prompt(traced: Traced, client: openai.OpenAI) -> None:
    result = client.images.generate(model="dall-e-3", prompt="a red fox", size="1024x1024", quality="hd",
                                    style="vivid", n=1)
    assert result.data[0].url == "https://images.example/0.png"
    record = traced.one()
    assert (record["name"], record["input"]) == ("openai.images.generate", "a red fox")
    assert record["model_parameters"] == {"n": 1, "quality": "hd", "size": "1024x1024", "style": "vivid"}
    assert record["output"] == [{"url": "https://images.example/0.png",
                                 "revised_prompt": "A detailed picture of a red fox"}]
    assert (record["usage"], record["cost"]) == (None, None)


def test_a_gpt_image_records_no_base64_but_its_usage_and_cost(traced: Traced, client: openai.OpenAI) -> None:
    result = client.images.generate(model="gpt-image-1", prompt="a red fox", n=2)
    size = len(result.data[0].b64_json or "")
    record = traced.one()
    assert record["output"] == [{"b64_json": f"<image/png base64, {size} chars>"}] * 2
    assert record["usage"] == {"input": 6, "output": 544, "total": 550, "input_text_tokens": 6,
                               "input_image_tokens": 0}
    assert record["cost"] == pytest.approx({"input": 6 * 5.0 / 1e6, "output": 544 * 40.0 / 1e6,
                                            "total": (6 * 5.0 + 544 * 40.0) / 1e6})


async def test_an_async_image_edit_notes_each_image_and_the_mask(traced: Traced, aclient: openai.AsyncOpenAI) -> None:
    await aclient.images.edit(model="gpt-image-1", prompt="add a hat",
                              image=[("a.png", b"p" * 100, "image/png"), ("b.png", b"q" * 10, "image/png")],
                              mask=("mask.png", b"m" * 7, "image/png"), input_fidelity="high")
    record = traced.one()
    assert (record["name"], record["model_parameters"]) == ("openai.images.edit", {"input_fidelity": "high"})
    assert record["input"] == {"prompt": "add a hat", "image": ["<image/png file a.png, 100 bytes>",
                                                                "<image/png file b.png, 10 bytes>"],
                               "mask": "<image/png file mask.png, 7 bytes>"}
    assert record["usage"]["input_image_tokens"] == 130 and record["cost"] is not None


def test_a_streamed_image_records_the_final_image_not_the_previews(traced: Traced, client: openai.OpenAI) -> None:
    events = list(client.images.generate(model="gpt-image-1", prompt="a red fox", stream=True, partial_images=2))
    assert [e.type for e in events] == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    record = traced.one()
    assert record["output"] == [{"b64_json": f"<image/png base64, {len(events[-1].b64_json)} chars>"}]
    assert record["usage"] == {"input": 6, "output": 272, "total": 278, "input_text_tokens": 6,
                               "input_image_tokens": 0}
    assert (record["level"], record["completion_start_time"] is not None) == ("DEFAULT", True)


# -- what stays as it was ----------------------------------------------------------------------------------
def test_chat_and_embeddings_are_matched_first_and_moderations_last() -> None:
    suffixes = list(_extract.ENDPOINTS)
    assert suffixes[:2] == ["/chat/completions", "/responses"] and suffixes.index("/embeddings") == 3
    assert suffixes[-1] == "/moderations" and suffixes.index("/audio/transcriptions") > suffixes.index("/embeddings")
    assert _extract.endpoint("/audio/speech") == ("speech", "openai.audio.speech", "generation")


def test_media_prices_need_the_counts_they_price() -> None:
    assert pricing.media_cost("whisper-1", None, None) is None
    assert pricing.media_cost("gpt-image-1", {"input": 10, "output": 5}) is None  # no split by kind
    assert pricing.media_cost("tts-1", None) is None and pricing.media_cost(None, {"input": 1}) is None
