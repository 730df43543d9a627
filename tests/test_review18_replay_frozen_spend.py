"""A replay's frozen generations spent nothing: what reaches Langfuse says so (no tokens, cost 0),
while the local store keeps the recorded usage and cost (``show`` marks the call ``frozen``)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

import autotrace
from autotrace.replay import first_difference, replay
from autotrace.testing.fake_openai import FakeOpenAI
from autotrace.testing.otlp_receiver import OtlpReceiver

ASK = [{"role": "user", "content": "where is my order?"}]


def _turn(client: openai.OpenAI) -> str:
    with autotrace.start_chain("turn"):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        with autotrace.start_generation("answer", model="m") as gen:
            gen.set_output("ok")
    return reply.choices[0].message.content or ""


def _exported(rx: OtlpReceiver, trace_id: str) -> dict[str, dict[str, Any]]:
    return {s.name: s.attributes for s in rx.spans if s.trace_id == trace_id}


@pytest.mark.parametrize("stream", [False, True])
def test_a_frozen_chat_call_sends_langfuse_no_usage_and_no_cost(rx: OtlpReceiver, tmp_path: Any,
                                                               stream: bool) -> None:
    from autotrace.export.credentials import Credentials

    autotrace.install(langfuse_host="http://127.0.0.1:9", export_interval=0.05, integrations=("openai",),
                      credentials={"t": Credentials("pk-t", "sk-t", host=rx.endpoint)},
                      local_store="on", local_store_path=tmp_path / "traces.db")

    def turn(client: openai.OpenAI) -> str:
        if not stream:
            return _turn(client)
        with autotrace.start_chain("turn"):
            text = "".join(c.choices[0].delta.content or "" for c in
                           client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True) if c.choices)
            with autotrace.start_generation("answer", model="m") as gen:
                gen.set_output("ok")
        return text

    with FakeOpenAI() as fake, openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client:
        fake.script(reply="It ships today.", usage=(1200, 300))
        with autotrace.tenant("t"):
            assert turn(client) == "It ships today."
        assert autotrace.flush(10)
        store = autotrace.local_store()
        (summary,) = store.traces()
        original = store.trace(summary["trace_id"])
        at = next(r["id"] for r in original if r["name"] == "answer")
        with autotrace.tenant("t"):
            result = replay(original, at, turn, client)
        assert len(fake.requests) == 1  # the frozen call sent nothing
    assert result.result == "It ships today."
    assert autotrace.flush(10)
    sent = _exported(rx, original[0]["trace_id"])["openai.chat"]
    assert json.loads(sent["langfuse.observation.usage_details"]) == {"input": 1200, "output": 300, "total": 1500, "input_cached_tokens": 0,
                                                                     "output_reasoning_tokens": 0}
    assert json.loads(sent["langfuse.observation.cost_details"])["total"] > 0
    frozen = _exported(rx, result.trace_id)["openai.chat"]
    assert json.loads(frozen["langfuse.observation.metadata.replay"]) == "frozen"
    assert json.loads(frozen["langfuse.observation.usage_details"]) == {"input": 0, "output": 0, "total": 0}
    assert json.loads(frozen["langfuse.observation.cost_details"]) == {"total": 0.0}
    assert (frozen.get("gen_ai.usage.input_tokens"), frozen.get("gen_ai.usage.output_tokens")) == (0, 0)
    # the local store keeps what the recording said, and the comparison sees no difference
    replayed = store.trace(result.trace_id)
    (local,) = [r for r in replayed if r["name"] == "openai.chat"]
    (recorded,) = [r for r in original if r["name"] == "openai.chat"]
    assert (local["usage"], local["cost"]) == (recorded["usage"], recorded["cost"])
    assert local["usage"] == {"input": 1200, "output": 300, "total": 1500, "input_cached_tokens": 0,
                                                                     "output_reasoning_tokens": 0}
    assert first_difference(original, replayed) is None
