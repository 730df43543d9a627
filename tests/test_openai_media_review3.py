"""Inline media a demanding user sends back to OpenAI, recorded as notes of kind and size, never as
bytes: a generated image (``image_generation_call``) or a spoken reply (a chat message's
``audio``) given back as input for the next turn, and payloads shorter than a page (a thumbnail's
data URL, a short clip's base64)."""

from __future__ import annotations

import base64
from typing import Any

import openai
import pytest

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

IMAGE = base64.b64encode(b"\x89PNG\r\n" + b"\x07" * 3000).decode()  # 4008 chars
CLIP = base64.b64encode(b"RIFF" + b"\x00" * 2996).decode()  # 4000 chars
THUMB = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n" + b"\x01" * 60).decode()  # 110 chars
SHORT_CLIP = base64.b64encode(b"RIFF" + b"\x00" * 200).decode()  # 272 chars


def test_a_generated_image_given_back_as_input_is_recorded_as_a_note(traced: Traced, client: openai.OpenAI,
                                                                     fake: FakeOpenAI) -> None:
    """Multi-turn image editing as OpenAI documents it: the first reply's output items (its
    ``image_generation_call`` with the image's base64 ``result``) go back in the next ``input``."""
    tools: Any = [{"type": "image_generation"}]
    fake.script(hosted=[{"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": IMAGE}],
                reply="Here it is.")
    first = client.responses.create(model="gpt-4.1", input="draw a cat", tools=tools)
    client.responses.create(model="gpt-4.1", tools=tools,
                            input=[*first.output, {"role": "user", "content": "make it blue"}])
    assert fake.requests[-1]["body"]["input"][0]["result"] == IMAGE  # the API got the image
    created, again = traced.records()
    assert created["output"][0]["result"] == again["input"][0]["result"] == "<base64, 4008 chars>"
    assert again["input"] == [
        {"id": "ig_1", "result": "<base64, 4008 chars>", "status": "completed", "type": "image_generation_call"},
        {"id": "msg_fake", "content": [{"annotations": [], "text": "Here it is.", "type": "output_text"}],
         "role": "assistant", "status": "completed", "type": "message"},
        {"role": "user", "content": "make it blue"}]


def test_a_spoken_reply_given_back_in_the_conversation_is_recorded_as_a_note(traced: Traced, client: openai.OpenAI,
                                                                             fake: FakeOpenAI) -> None:
    """The reply message appended to the conversation as the SDK returned it, its audio's data
    with it: noted, its transcript kept."""
    fake.script(audio=CLIP, reply="It ships today.")
    spoken = client.chat.completions.create(model="gpt-4o-audio-preview", modalities=["text", "audio"],
                                            audio={"voice": "alloy", "format": "wav"},
                                            messages=[{"role": "user", "content": "where is my order?"}])
    message = spoken.choices[0].message
    client.chat.completions.create(model="gpt-4o-audio-preview", messages=[
        {"role": "user", "content": "where is my order?"}, message, {"role": "user", "content": "thanks"}])
    assert fake.requests[-1]["body"]["messages"][1]["audio"]["data"] == CLIP
    _, again = traced.records()
    assert again["input"] == [
        {"role": "user", "content": "where is my order?"},
        {"content": None, "role": "assistant", "audio": {"id": "audio_fake", "data": "<base64, 4000 chars>",
                                                         "expires_at": message.audio.expires_at,
                                                         "transcript": "It ships today."}},
        {"role": "user", "content": "thanks"}]


def test_short_payloads_are_notes_too(traced: Traced, client: openai.OpenAI) -> None:
    """A thumbnail's data URL and a short clip are bytes all the same (chat and Responses)."""
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": THUMB, "detail": "low"}},
        {"type": "input_audio", "input_audio": {"data": SHORT_CLIP, "format": "wav"}},
        {"type": "file", "file": {"file_data": THUMB, "filename": "thumb.png"}}]}])
    client.responses.create(model="gpt-4.1", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "and this?"}, {"type": "input_image", "image_url": THUMB, "detail": "auto"},
        {"type": "input_file", "file_data": THUMB, "filename": "thumb.png"}]}])
    chat, responses = traced.records()
    assert chat["input"] == [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "<image/png base64, 110 chars>", "detail": "low"}},
        {"type": "input_audio", "input_audio": {"data": "<base64, 272 chars>", "format": "wav"}},
        {"type": "file", "file": {"file_data": "<image/png base64, 110 chars>", "filename": "thumb.png"}}]}]
    assert responses["input"] == [{"role": "user", "content": [
        {"type": "input_text", "text": "and this?"},
        {"type": "input_image", "image_url": "<image/png base64, 110 chars>", "detail": "auto"},
        {"type": "input_file", "file_data": "<image/png base64, 110 chars>", "filename": "thumb.png"}]}]


def test_short_media_in_a_reply_is_a_note_too(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """A short spoken reply's audio and a small generated image in a reply were recorded as their
    base64 (only payloads of 1,024 characters or more were noted)."""
    fake.script(audio=SHORT_CLIP, reply="hi")
    client.chat.completions.create(model="gpt-4o-audio-preview", modalities=["text", "audio"],
                                   audio={"voice": "alloy", "format": "wav"}, messages=[{"role": "user", "content": "hi"}])
    small = base64.b64encode(b"\x89PNG\r\n" + b"\x02" * 90).decode()
    fake.script(hosted=[{"type": "image_generation_call", "id": "ig_2", "status": "completed", "result": small}],
                reply="Here it is.")
    client.responses.create(model="gpt-4.1", input="draw a dot", tools=[{"type": "image_generation"}])
    spoken, drawn = traced.records()
    assert spoken["output"]["audio"]["data"] == "<base64, 272 chars>"
    assert spoken["output"]["audio"]["transcript"] == "hi"
    assert drawn["output"][0]["result"] == f"<base64, {len(small)} chars>"
