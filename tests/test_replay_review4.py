"""Replay review 4: the live call a replay runs with overrides records the request it sent (the
model, parameters and messages after ``--set``), overrides win over the caller's ``extra_body``
and set nested keys, and a frozen call never hands the program a redaction placeholder as a value.
The real OpenAI SDK against the loopback fake server."""

from __future__ import annotations

from typing import Any

import openai
import pytest

import autotrace
from autotrace import _internal
from autotrace.interception import ReplayStop
from autotrace.replay import areplay, parse_overrides, replay
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced
from tests.test_replay_frozen_calls import _only_trace

pytestmark = pytest.mark.integrations("openai")

HI = [{"role": "user", "content": "hi"}]
BYE = [{"role": "user", "content": "bye"}]


def _chat(client: openai.OpenAI, stream: bool = False, **extra: Any) -> str:
    with autotrace.start_chain("turn"):
        if stream:
            chunks = client.chat.completions.create(model="gpt-4o-mini", temperature=0.2, messages=HI, stream=True,
                                                    **extra)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return client.chat.completions.create(model="gpt-4o-mini", temperature=0.2, messages=HI,
                                              **extra).choices[0].message.content or ""


def _responses(client: openai.OpenAI, reasoning: dict[str, Any]) -> str:
    with autotrace.start_chain("turn"):
        return client.responses.create(model="gpt-4o-mini", input=HI, temperature=0.2, reasoning=reasoning).output_text


def _generation(records: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [r for r in records if r["type"] == "generation"]
    return found


def _replayed(traced: Traced, entry: Any, *args: Any, overrides: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    original = _only_trace(traced)
    result = replay(original, _generation(original)["id"], entry, *args, overrides=overrides, **kwargs)
    assert result.reached
    return _generation(traced.trace(result.trace_id))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_live_chat_call_records_the_request_it_sent_with_the_overrides(
        traced: Traced, fake: FakeOpenAI, client: openai.OpenAI, stream: bool) -> None:
    """It recorded the caller's request: model parameters ``{"temperature": 0.2}`` and input "hi"
    while ``temperature`` 0.9 and "bye" were sent."""
    _chat(client, stream)
    overrides = {**parse_overrides(["model=gpt-4o", "temperature=0.9", "seed=7"]), "messages": BYE}
    sent = len(fake.requests)
    generation = _replayed(traced, _chat, client, stream, overrides=overrides)
    (request,) = [r["body"] for r in fake.requests[sent:]]
    assert (request["model"], request["temperature"], request["seed"], request["messages"]) == ("gpt-4o", 0.9, 7, BYE)
    assert generation["model"] == "gpt-4o"
    assert generation["model_parameters"] == {"temperature": 0.9, **({"stream": True} if stream else {}), "seed": 7}
    assert generation["input"] == BYE
    assert generation["output"] == {"role": "assistant", "content": "echo: bye"}


def test_a_live_responses_call_records_its_overridden_input_and_a_nested_setting(
        traced: Traced, fake: FakeOpenAI, client: openai.OpenAI) -> None:
    """``--set reasoning.effort=high`` was sent as a parameter named ``reasoning.effort`` (which
    the API rejects); it now sets ``effort`` of the request's ``reasoning``, keeping its other keys."""
    asked = {"effort": "low", "summary": "auto"}
    _responses(client, asked)
    overrides = {**parse_overrides(["reasoning.effort=high", "temperature=0.9"]), "input": BYE}
    sent = len(fake.requests)
    generation = _replayed(traced, _responses, client, asked, overrides=overrides)
    (request,) = [r["body"] for r in fake.requests[sent:]]
    assert "reasoning.effort" not in request
    assert (request["reasoning"], request["temperature"], request["input"]) == (
        {"effort": "high", "summary": "auto"}, 0.9, BYE)
    assert asked == {"effort": "low", "summary": "auto"}  # the caller's own object is left as it was
    assert generation["model_parameters"] == {"temperature": 0.9, "reasoning": {"effort": "high", "summary": "auto"}}
    assert generation["input"] == BYE


def test_an_override_wins_over_the_callers_extra_body(traced: Traced, fake: FakeOpenAI, client: openai.OpenAI) -> None:
    """The SDK merges ``extra_body`` over the body: the override was set in the body only, and the
    caller's ``extra_body`` temperature (0.3) was sent instead of the override's 0.9."""
    extra_body = {"temperature": 0.3, "top_k": 20}
    _chat(client, extra_body=extra_body)
    sent = len(fake.requests)
    generation = _replayed(traced, _chat, client, extra_body=extra_body,
                           overrides=parse_overrides(["temperature=0.9"]))
    (request,) = [r["body"] for r in fake.requests[sent:]]
    assert (request["temperature"], request["top_k"]) == (0.9, 20)
    assert extra_body == {"temperature": 0.3, "top_k": 20}
    assert generation["model_parameters"] == {"temperature": 0.9}


def test_a_framework_generation_that_owns_the_call_records_the_overrides(
        traced: Traced, fake: FakeOpenAI, client: openai.OpenAI) -> None:
    """The program's own ``start_generation`` around the call recorded neither the parameters nor
    the messages sent (``temperature`` 0.9, "bye")."""

    def turn() -> None:
        with autotrace.start_chain("turn"), autotrace.start_generation("draft", model="gpt-4o-mini") as gen:
            gen.set_output(client.chat.completions.create(model="gpt-4o-mini", messages=HI).choices[0].message.content)

    turn()
    generation = _replayed(traced, turn, overrides={**parse_overrides(["model=gpt-4o", "temperature=0.9"]),
                                                    "messages": BYE})
    assert fake.requests[-1]["body"] == {"model": "gpt-4o", "messages": BYE, "temperature": 0.9}
    assert (generation["model"], generation["model_parameters"], generation["output"]) == (
        "gpt-4o", {"temperature": 0.9}, "echo: bye")
    assert generation["input"] == BYE


@autotrace.traced_tool(name="lookup_customer")
def _lookup_customer(customer: str) -> dict[str, str]:
    return {"customer": customer, "email": "bob@example.com"}


def _support(client: openai.OpenAI) -> str:
    with autotrace.start_chain("turn"):
        with autotrace.start_tool("crm_note") as note:  # the program's own block: it runs in a replay
            note.set_output("noted for bob@example.com")
        found = _lookup_customer("c-1")
        with autotrace.start_generation("answer", model="m") as gen:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=[
                {"role": "user", "content": f"write to {found['email']}"}]).choices[0].message.content or ""
            gen.set_output(reply)
        return reply


def test_a_frozen_call_whose_recorded_output_was_redacted_stops_the_replay(
        traced: Traced, fake: FakeOpenAI, client: openai.OpenAI) -> None:
    """The tool's recorded output is ``{"email": "<EMAIL>"}`` (redacted on its way to the store):
    frozen, it gave the program the placeholder, which the live generation then sent to the model
    ("write to <EMAIL>") as if it were the customer's address. The program's own block before it,
    which runs in a replay whatever its recording holds, does not stop the replay."""
    _support(client)
    original = _only_trace(traced)
    assert [r["output"] for r in original if r["type"] == "tool"] == [
        "noted for <EMAIL>", {"customer": "c-1", "email": "<EMAIL>"}]
    at = next(r["id"] for r in original if r["name"] == "answer")
    sent = len(fake.requests)
    with pytest.raises(ReplayStop, match="tool 'lookup_customer' holds a value redaction replaced \\(<EMAIL>\\)"):
        replay(original, at, _support, client)
    assert len(fake.requests) == sent  # nothing reached the model
    assert autotrace.flush(5)
    (summary,) = [t for t in autotrace.local_store().traces() if t["trace_id"] != original[0]["trace_id"]]
    replayed = {r["name"]: r for r in traced.trace(summary["trace_id"])}
    assert sorted(replayed) == ["crm_note", "lookup_customer", "turn"]
    assert replayed["crm_note"]["level"] == "DEFAULT"
    assert (replayed["lookup_customer"]["level"], replayed["lookup_customer"]["output"]) == ("ERROR", None)
    assert replayed["lookup_customer"]["status_message"].startswith("replay stopped: the recorded output of tool")


@pytest.mark.parametrize("owned", [False, True], ids=["openai-call", "owned-by-a-generation"])
def test_a_frozen_model_reply_that_was_redacted_runs_live(
        traced: Traced, fake: FakeOpenAI, client: openai.OpenAI, owned: bool) -> None:
    """The recorded reply ``Mail <EMAIL>`` was served to the program as what the model said (also
    when the program's own generation around the call recorded it)."""

    def ask() -> str:
        return client.chat.completions.create(model="gpt-4o-mini", messages=HI).choices[0].message.content or ""

    def turn() -> list[str]:
        with autotrace.start_chain("turn"):
            if owned:
                with autotrace.start_generation("draft", model="gpt-4o-mini") as draft:
                    first = ask()
                    draft.set_output(first)
            else:
                first = ask()
            with autotrace.start_generation("answer", model="m") as gen:
                gen.set_output("ok")
            return [first]

    fake.script(reply="Mail bob@example.com")
    assert turn() == ["Mail bob@example.com"]
    original = _only_trace(traced)
    reply = next(r for r in original if r["name"] in ("openai.chat", "draft"))["output"]
    assert reply == "Mail <EMAIL>" if owned else reply["content"] == "Mail <EMAIL>"
    fake.script(reply="Mail bob@example.com")
    live, sent = _internal.stats().get("openai.replay_live", 0), len(fake.requests)
    result = replay(original, next(r["id"] for r in original if r["name"] == "answer"), turn)
    assert result.result == ["Mail bob@example.com"]  # the model's reply, not the placeholder
    assert len(fake.requests) == sent + 1
    assert _internal.stats().get("openai.replay_live", 0) == live + (0 if owned else 1)
    replayed = next(r for r in traced.trace(result.trace_id) if r["name"] in ("openai.chat", "draft"))
    assert "replay" not in (replayed["metadata"] or {})


def test_a_stream_sent_again_without_stream_options_keeps_the_overrides(
        traced: Traced, fake: FakeOpenAI, client: openai.OpenAI) -> None:
    """A server that rejects the ``stream_options`` autotrace adds gets the request again without
    them: that was the caller's own request (``gpt-4o-mini``, "hi"), the overrides dropped, while
    the replayed generation recorded them as sent."""
    _chat(client, stream=True)
    fake.reject_stream_options = True  # (a replay runs in a new process, which has not met the refusal)
    sent = len(fake.requests)
    generation = _replayed(traced, _chat, client, True, overrides={**parse_overrides(["model=gpt-4o"]),
                                                                   "messages": BYE})
    rejected, resent = (r["body"] for r in fake.requests[sent:])
    assert rejected["stream_options"] == {"include_usage": True}
    assert resent == {"model": "gpt-4o", "messages": BYE, "stream": True, "temperature": 0.2}
    assert (generation["model"], generation["input"], generation["output"]) == (
        "gpt-4o", BYE, {"role": "assistant", "content": "echo: bye"})


async def test_an_async_stream_sent_again_keeps_the_overrides_and_records_them(
        traced: Traced, fake: FakeOpenAI, aclient: openai.AsyncOpenAI) -> None:
    """The async client's request as the sync one's (``test_a_stream_sent_again_...``)."""

    async def turn() -> str:
        with autotrace.start_chain("turn"):
            chunks = await aclient.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])

    assert await turn() == "echo: hi"
    original = _only_trace(traced)
    fake.reject_stream_options = True
    sent = len(fake.requests)
    result = await areplay(original, _generation(original)["id"], turn,
                           overrides={**parse_overrides(["temperature=0.9"]), "messages": BYE})
    assert result.result == "echo: bye"
    assert [r["body"] for r in fake.requests[sent:]][-1] == {"model": "gpt-4o-mini", "messages": BYE, "stream": True,
                                                              "temperature": 0.9}
    generation = _generation(traced.trace(result.trace_id))
    assert (generation["model_parameters"], generation["input"]) == ({"stream": True, "temperature": 0.9}, BYE)


@pytest.mark.parametrize("setting", ["reasoning..effort=high", ".effort=high", "reasoning.=high", "=1"])
def test_a_setting_with_an_empty_key_part_is_refused(setting: str) -> None:
    """``reasoning..effort`` would have set a key named "" inside ``reasoning`` and been sent."""
    with pytest.raises(ValueError, match="--set expects key=value"):
        parse_overrides([setting])
    assert parse_overrides(["reasoning.effort=high"]) == {"model_parameters": {"reasoning.effort": "high"}}
