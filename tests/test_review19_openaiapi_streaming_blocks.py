"""``with_streaming_response`` blocks whose response the caller never parses: speech written with
``stream_to_file`` (the SDK's way to save speech), a body read line by line. The SDK closes the
response as the block is left, so nothing a parse could add is to come: the observation ends
then, not when the response is freed (a response still referenced, at a script's or notebook's
top level, would otherwise never be exported). The real SDK against the loopback fake."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

TTS_COST = {"input": 11 * 15.0 / 1e6, "output": 0.0, "total": 11 * 15.0 / 1e6}


def _speech(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record[key] for key in ("name", "type", "model", "input", "output", "level", "usage", "parent_id")}


SPEECH = {"name": "openai.audio.speech", "type": "generation", "model": "tts-1", "input": "hello there",
          "output": "<audio/mpeg>", "level": "DEFAULT", "usage": None, "parent_id": None}


def test_speech_streamed_to_a_file_is_recorded_when_its_block_ends(traced: Traced, client: openai.OpenAI,
                                                                  tmp_path: Path) -> None:
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy",
                                                            input="hello there") as response:
        response.stream_to_file(tmp_path / "out.mp3")
    assert (tmp_path / "out.mp3").stat().st_size == 440
    (record,) = traced.records()  # ``response`` is still referenced: ended by the block, not by being freed
    assert _speech(record) == SPEECH
    assert record["metadata"]["input_characters"] == 11
    assert record["cost"] == pytest.approx(TTS_COST)
    assert response.http_response.is_closed  # the SDK closed it, as without autotrace


def test_async_speech_streamed_to_a_file_is_recorded_when_its_block_ends(traced: Traced,
                                                                        aclient: openai.AsyncOpenAI,
                                                                        tmp_path: Path) -> None:
    async def speak() -> Any:
        async with aclient.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy",
                                                                       input="hello there") as response:
            await response.stream_to_file(tmp_path / "out.mp3")
        return response

    kept = asyncio.run(speak())
    (record,) = traced.records()
    assert _speech(record) == SPEECH
    assert record["cost"] == pytest.approx(TTS_COST)
    assert kept.http_response.is_closed


def test_a_body_read_line_by_line_ends_with_the_block(traced: Traced, client: openai.OpenAI) -> None:
    with client.responses.with_streaming_response.create(model="gpt-5.4", input="lines") as response:
        assert b"echo: lines" in b"".join(response.iter_bytes())
    (record,) = traced.records()  # nothing left to parse once the SDK closes it: no output, no usage
    assert (record["name"], record["input"], record["output"], record["usage"], record["level"]) == (
        "openai.responses", "lines", None, None, "DEFAULT")
    with pytest.raises(Exception) as raised:  # the SDK's own: the body was streamed
        response.parse()
    assert type(raised.value).__name__ == "StreamAlreadyConsumed"
    assert len(traced.records()) == 1


def test_a_body_read_whole_still_waits_for_a_parse_after_the_block(traced: Traced, client: openai.OpenAI) -> None:
    with client.responses.with_streaming_response.create(model="gpt-5.4", input="later") as response:
        response.read()
    assert traced.records() == []  # the caller may parse it after the block
    assert response.parse().output_text == "echo: later"
    (record,) = traced.records()
    assert (record["output"], record["usage"]["input"], record["level"]) == ("echo: later", 4, "DEFAULT")
