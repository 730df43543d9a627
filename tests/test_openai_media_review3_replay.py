"""A frozen chat call that asked for a spoken reply: no recording keeps the audio (an OpenAI
generation keeps a note of it, LangChain's ``ChatOpenAI`` generation keeps its text alone), so
the call runs live rather than serve a reply without the audio the program reads."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_openai import ChatOpenAI

import autotrace
from autotrace import _internal
from autotrace.replay import replay
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai", "langchain")

CLIP = "UklGRgAAAABXQVZF" * 8


def spoken_turn(llm: ChatOpenAI) -> tuple[Any, Any]:
    with autotrace.start_chain("turn"):
        message = llm.invoke("where is my order?")
        with autotrace.start_generation("answer", model="m") as answer:
            answer.set_output("ok")
    audio = message.additional_kwargs.get("audio") or {}
    return audio.get("transcript"), audio.get("data")


def test_a_frozen_langchain_call_asking_for_audio_runs_live(traced: Traced, fake: FakeOpenAI) -> None:
    llm = ChatOpenAI(model="gpt-4o-audio-preview", base_url=fake.base_url, api_key="k", max_retries=0,
                     model_kwargs={"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}})
    fake.script(audio=CLIP, reply="It ships today.")
    assert spoken_turn(llm) == ("It ships today.", CLIP)
    assert autotrace.flush(5)
    (summary,) = autotrace.local_store().traces()
    original = traced.trace(summary["trace_id"])
    (output,) = [r["output"] for r in original if r["name"] == "ChatOpenAI"]
    assert (output["content"], output["audio"]["transcript"], output["audio"]["data"]) == (
        "", "It ships today.", f"<base64, {len(CLIP)} chars>")  # the reply spoken: its audio noted, never kept
    at = next(r["id"] for r in original if r["name"] == "answer")
    live, sent = _internal.stats().get("openai.replay_live", 0), len(fake.requests)
    fake.script(audio=CLIP, reply="It ships today.")
    result = replay(original, at, spoken_turn, llm)
    assert result.result == ("It ships today.", CLIP)  # as the original run got it
    assert (len(fake.requests) - sent, _internal.stats()["openai.replay_live"]) == (1, live + 1)
