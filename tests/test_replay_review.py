"""Review of replay's freezing of OpenAI calls: recordings that cannot give the reply faithfully
(cut at the value size limit, fields of other types than the API's, log probabilities asked for)
run live; what held (SSE framing of any text, Azure deployments with per-call options, replays in
threads, the tenant rule) stays so. All against the real SDK over the loopback fake server."""

from __future__ import annotations

import threading
from typing import Any

import openai
import pytest

import autotrace
from autotrace import _internal
from autotrace.interception import ReplayStop
from autotrace.replay import replay
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced
from tests.test_replay_frozen_calls import ASK, _answer, _only_trace, _replayed, _seen

pytestmark = pytest.mark.integrations("openai")


def _client(fake: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)


def _at(original: list[dict[str, Any]]) -> str:
    return next(r["id"] for r in original if r["name"] == "answer")


def _ran_live(traced: Traced, fake: FakeOpenAI, entry: Any, client: Any, original: list[dict[str, Any]],
              calls: int = 1) -> Any:
    """What ``entry`` returned in a replay whose ``calls`` OpenAI calls all ran live (counted)."""
    live, before = _internal.stats().get("openai.replay_live", 0), len(fake.requests)
    result = replay(original, _at(original), entry, client)
    assert (len(fake.requests) - before, _internal.stats().get("openai.replay_live", 0) - live) == (calls, calls)
    assert [(r["metadata"] or {}).get("replay") for r in traced.trace(result.trace_id)] == [None] * (calls + 2)
    return result.result


def _chat(client: openai.OpenAI, stream: bool = False, **options: Any) -> Any:
    """What the caller reads of one chat call: the stream's text, tool calls ..., else the message."""
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=stream, **options)
    return _seen(list(reply)) if stream else reply.choices[0].message.model_dump(exclude_none=True)


def chat_turn(client: openai.OpenAI, stream: bool = False, **options: Any) -> Any:
    with autotrace.start_chain("turn"):
        seen = _chat(client, stream, **options)
        _answer()
    return seen


def responses_turn(client: openai.OpenAI, stream: bool | None = None) -> tuple[Any, ...]:
    """Two Responses calls (plain, streamed), after a chat call (``stream`` given) in the same turn."""
    with autotrace.start_chain("turn"):
        chat = () if stream is None else (_chat(client, stream),)
        text = client.responses.create(model="gpt-4o-mini", input="hi").output_text
        streamed = [e for e in client.responses.create(model="gpt-4o-mini", input="hi", stream=True)]
        _answer()
    return (*chat, text, "".join(e.delta for e in streamed if e.type == "response.output_text.delta"))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_chat_reply_cut_at_the_value_size_limit_runs_live(traced: Traced, stream: bool) -> None:
    """A reply longer than the value size limit is recorded cut (its JSON text, marked): served,
    the program would get that cut JSON text as the reply's content."""
    long = "x" * 100_000
    with FakeOpenAI() as fake:
        client = _client(fake)
        fake.script(reply=long)
        chat_turn(client, stream)
        original = _only_trace(traced)
        assert original[1]["output"].endswith("…[truncated]")
        fake.script(reply=long)
        seen = _ran_live(traced, fake, lambda c: chat_turn(c, stream), client, original)
    assert (seen["text"] if stream else seen["content"]) == long


def test_a_responses_reply_cut_at_the_value_size_limit_runs_live(traced: Traced) -> None:
    long = "t" * 100_000
    with FakeOpenAI() as fake:
        client = _client(fake)
        fake.script(reply=long)
        fake.script(reply=long)
        responses_turn(client)
        original = _only_trace(traced)
        assert [r["output"].endswith("…[truncated]") for r in original[1:3]] == [True, True]
        fake.script(reply=long)
        fake.script(reply=long)
        assert _ran_live(traced, fake, responses_turn, client, original, calls=2) == (long, long)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_chat_call_asking_for_log_probabilities_runs_live(traced: Traced, stream: bool) -> None:
    """The recording keeps the message, not its log probabilities: served, ``choice.logprobs``
    would be None where the API gives them."""
    with FakeOpenAI() as fake:
        client = _client(fake)
        fake.script(reply="recorded")
        chat_turn(client, stream, logprobs=True)
        fake.script(reply="live")
        seen = _ran_live(traced, fake, lambda c: chat_turn(c, stream, logprobs=True), client, _only_trace(traced))
    assert (seen["text"] if stream else seen["content"]) == "live"


@pytest.mark.parametrize("output", [
    {"role": "assistant", "content": "x", "refusal": 5},
    {"role": "assistant", "content": None, "function_call": "lookup"},
    {"role": "assistant", "content": "x", "annotations": "none"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": 5, "type": "function", "function": {
        "name": "f", "arguments": "{}"}}]},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": 7, "function": {
        "name": "f", "arguments": "{}"}}]},
    {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
], ids=["refusal", "function_call", "annotations", "tool_call_id", "tool_call_type", "tool_call_no_id"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_recorded_field_of_another_type_than_the_apis_runs_live(traced: Traced, output: dict[str, Any],
                                                                  stream: bool) -> None:
    """An edited (or foreign) recording: served, the program would read a field of a type the API
    never gives (``message.function_call.name`` on a string raises)."""
    with FakeOpenAI() as fake:
        client = _client(fake)
        fake.script(reply="recorded")
        chat_turn(client, stream)
        original = _only_trace(traced)
        original[1]["output"] = output
        fake.script(reply="live")
        seen = _ran_live(traced, fake, lambda c: chat_turn(c, stream), client, original)
    assert (seen["text"] if stream else seen["content"]) == "live"


@pytest.mark.parametrize("content", ["as text", [{"type": "output_text"}], [{"type": "refusal", "refusal": 1}],
                                     ["part"]], ids=["text", "no_text", "refusal_type", "not_a_part"])
def test_a_recorded_message_item_that_is_not_the_apis_runs_live(traced: Traced, content: Any) -> None:
    """Served as recorded, ``response.output_text`` would raise on it (``'str' object has no attribute 'type'``)."""
    def turn(client: openai.OpenAI) -> str:
        with autotrace.start_chain("turn"):
            text = client.responses.create(model="gpt-4o-mini", input="hi").output_text
            _answer()
        return text

    with FakeOpenAI() as fake:
        client = _client(fake)
        fake.script(reply="recorded")
        turn(client)
        original = _only_trace(traced)
        original[1]["output"] = [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                                  "content": content}]
        fake.script(reply="live")
        assert _ran_live(traced, fake, turn, client, original) == "live"


# -- what held --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["a\n\ndata: [DONE]\n\nevent: error\ndata: {}\n\nb", "emoji 🎉 ü \u2028 end\r\n"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_any_text_is_served_whole_without_breaking_the_event_stream(traced: Traced, text: str, stream: bool) -> None:
    with FakeOpenAI() as fake:
        client = _client(fake)
        fake.script(reply=text)
        fake.script(reply=text)
        fake.script(reply=text)
        seen = responses_turn(client, stream)
        replayed, _ = _replayed(traced, fake, lambda c: responses_turn(c, stream), client,
                                ["openai.chat", "openai.responses", "openai.responses"])
    assert replayed == seen
    assert (seen[0]["text"] if stream else seen[0]["content"], *seen[1:]) == (text, text, text)


def test_an_azure_deployment_with_per_call_options_is_frozen(traced: Traced) -> None:
    def turn(client: openai.AzureOpenAI) -> Any:
        with autotrace.start_chain("turn"):
            reply = client.with_options(max_retries=3, timeout=5).chat.completions.create(
                model="deployment", messages=ASK, extra_headers={"X-Team": "a"}, extra_query={"q": "1"}, timeout=3)
            streamed = list(client.chat.completions.create(model="deployment", messages=ASK, stream=True))
            _answer()
        return reply.choices[0].message.content, _seen(streamed)

    with FakeOpenAI() as fake:
        client = openai.AzureOpenAI(azure_endpoint=fake.root_url, api_key="k", api_version="2024-10-21", max_retries=0)
        fake.script(reply="first")
        fake.script(reply="second")
        seen = turn(client)
        replayed, _ = _replayed(traced, fake, turn, client, ["openai.chat"] * 2)
    assert replayed == seen == ("first", {"text": "second", "calls": [], "finish": ["stop"], "usage": []})


def test_replays_in_threads_each_serve_their_own_recording(traced: Traced) -> None:
    with FakeOpenAI() as fake:
        client = _client(fake)
        fake.script(reply="one")
        chat_turn(client)
        original = _only_trace(traced)
        before, results = len(fake.requests), []

        def run() -> None:
            for _ in range(5):
                results.append(replay(original, _at(original), chat_turn, client).result)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(fake.requests) == before
    assert results == [{"role": "assistant", "content": "one"}] * 20


def test_a_frozen_call_for_another_tenant_stops_the_replay(traced: Traced) -> None:
    def turn(client: openai.OpenAI, tenant: str) -> Any:
        with autotrace.tenant(tenant), autotrace.start_chain("turn"):
            client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
            _answer()

    with FakeOpenAI() as fake:
        client = _client(fake)
        fake.script(reply="acme's secret")
        turn(client, "acme")
        original = _only_trace(traced)
        before = len(fake.requests)
        with pytest.raises(ReplayStop, match="another tenant"):
            replay(original, _at(original), turn, client, "globex")
        assert len(fake.requests) == before


def test_the_chosen_streamed_generation_runs_live_with_the_overrides(traced: Traced) -> None:
    def turn(client: openai.OpenAI) -> Any:
        with autotrace.start_chain("turn"):
            return _seen(list(client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True)))

    with FakeOpenAI() as fake:
        client = _client(fake)
        fake.script(reply="recorded", usage=(3, 4))
        turn(client)
        original = _only_trace(traced)
        fake.script(reply="live", usage=(5, 6))
        result = replay(original, original[1]["id"], turn, client, overrides={"model": "gpt-x"})
        sent = fake.requests[-1]["body"]
    assert result.result == {"text": "live", "calls": [], "finish": ["stop"], "usage": []}  # usage hidden
    assert (sent["model"], sent.get("stream_options")) == ("gpt-x", {"include_usage": True})
    records = traced.trace(result.trace_id)
    assert [(r["name"], r["usage"]) for r in records] == [
        ("turn", None), ("openai.chat", {"input": 5, "output": 6, "total": 11, "input_cached_tokens": 0,
                                         "output_reasoning_tokens": 0})]
