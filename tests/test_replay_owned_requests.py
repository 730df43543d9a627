"""A generation that sent several OpenAI requests (the program's own ``start_generation`` around
two calls, say) records how many (``metadata.model_requests``). A replay that freezes it runs
those requests live: its one recorded output answers none of them alone, and serving it to each
would hand the program replies the model never gave."""

from __future__ import annotations

from typing import Any

import openai
import pytest

import autotrace
from autotrace import _internal
from autotrace.replay import replay
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.test_replay_frozen_calls import ASK, _answer, _only_trace

pytestmark = pytest.mark.integrations("openai")


def _turn(client: openai.OpenAI, requests: int, stream: bool) -> list[str]:
    """One user-made generation around ``requests`` chat calls (streamed or not), then ``answer``."""
    replies = []
    with autotrace.start_chain("turn"):
        with autotrace.start_generation("draft-and-check", model="gpt-4o-mini") as gen:
            for _ in range(requests):
                if stream:
                    chunks = client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True)
                    replies.append("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))
                else:
                    reply = client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
                    replies.append(reply.choices[0].message.content)
            gen.set_output(" | ".join(replies))
        _answer()
    return replies


def _generation(records: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [r for r in records if r["name"] == "draft-and-check"]
    return found


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_generation_that_sent_two_requests_has_them_run_live_in_a_replay(
        traced: Traced, fake: FakeOpenAI, client: openai.OpenAI, stream: bool) -> None:
    fake.script(reply="first", usage=(10, 2))
    fake.script(reply="second", usage=(12, 3))
    assert _turn(client, 2, stream) == ["first", "second"]
    original = _only_trace(traced)
    recorded = _generation(original)
    assert recorded["metadata"]["model_requests"] == 2
    assert recorded["usage"] == {"input": 22, "output": 5, "total": 27, "input_cached_tokens": 0,
                                 "output_reasoning_tokens": 0}  # both replies' usage, summed
    assert shape(original) == [("chain", "turn", [("generation", "draft-and-check", []),
                                                  ("generation", "answer", [])])]

    fake.script(reply="live-a", usage=(10, 2))
    fake.script(reply="live-b", usage=(12, 3))
    sent, live = len(fake.requests), _internal.stats().get("openai.replay_live", 0)
    at = next(r["id"] for r in original if r["name"] == "answer")
    result = replay(original, at, _turn, client, 2, stream)
    assert result.result == ["live-a", "live-b"]  # the model's replies, not the recorded output twice
    assert len(fake.requests) == sent + 2
    assert _internal.stats()["openai.replay_live"] == live + 2
    autotrace.flush(5)
    replayed = traced.trace(result.trace_id)
    assert shape(replayed) == shape(original)
    generation = _generation(replayed)
    assert generation["output"] == "live-a | live-b"
    assert generation["metadata"]["model_requests"] == 2
    assert "replay" not in generation["metadata"]  # nothing was served from the recording
    assert generation["usage"]["input"] == 22  # the live replies' usage, summed


def test_a_generation_that_sent_one_request_records_no_count_and_is_served_in_a_replay(
        traced: Traced, fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.script(reply="only")
    assert _turn(client, 1, False) == ["only"]
    original = _only_trace(traced)
    assert "model_requests" not in (_generation(original)["metadata"] or {})
    sent = len(fake.requests)
    at = next(r["id"] for r in original if r["name"] == "answer")
    assert replay(original, at, _turn, client, 1, False).result == ["only"]
    assert len(fake.requests) == sent  # frozen: served from the recording
