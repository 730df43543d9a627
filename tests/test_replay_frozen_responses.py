"""Replay freezes OpenAI Responses API calls as it freezes chat calls: ``responses.create`` (sync
and async, ``stream=True``), ``responses.stream``, ``responses.parse`` and raw responses are served
by the SDK from the recorded reply, with no request to the (loopback) server; replies the
recording cannot give faithfully (background, a conversation's turn, a failed reply, a text when
more was asked for) run live, counted ``openai.replay_live``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import openai
import pytest
from pydantic import BaseModel

import autotrace
from autotrace import _internal
from autotrace.replay import replay
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.test_replay_frozen_calls import (
    _answer,
    _only_trace,
    _recorded_run,
    _replayed,
    _replays_a_recorded_rate_limit,
)

pytestmark = pytest.mark.integrations("openai")

TOOLS = [{"type": "function", "name": "lookup_order", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}}}]
CALL = [{"name": "lookup_order", "arguments": '{"order_id": "o-7"}'}]


class Order(BaseModel):
    order_id: str
    status: str


def _item(item: Any) -> tuple[Any, ...]:
    if item.type == "message":
        return ("message", item.role, [(p.type, p.text if p.type == "output_text" else p.refusal)
                                       for p in item.content])
    if item.type == "function_call":
        return ("function_call", item.call_id, item.name, item.arguments)
    return (item.type,)


def _read(response: Any) -> dict[str, Any]:
    """What a caller reads from a response (its id aside: the recording keeps none)."""
    usage = response.usage
    return {"text": response.output_text, "items": [_item(i) for i in response.output], "status": response.status,
            "model": response.model,
            "usage": usage and (usage.input_tokens, usage.output_tokens, usage.total_tokens,
                                usage.input_tokens_details.cached_tokens, usage.output_tokens_details.reasoning_tokens)}


def _streamed(events: list[Any]) -> dict[str, Any]:
    """What a caller reads from a stream's events: text, a function call's arguments, the final response."""
    (final,) = [e.response for e in events if e.type == "response.completed"]
    return {"text": "".join(e.delta for e in events if e.type == "response.output_text.delta"),
            "arguments": "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta"),
            "final": _read(final)}


def turn(client: openai.OpenAI) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    with autotrace.start_chain("turn"):
        seen["text"] = _read(client.responses.create(model="gpt-4o-mini", input="where is my order?"))
        seen["calls"] = _read(client.responses.create(model="gpt-4o-mini", input="look it up", tools=TOOLS))
        seen["stream"] = _streamed(list(client.responses.create(model="gpt-4o-mini", input="hi", stream=True)))
        with client.responses.stream(model="gpt-4o-mini", input="look it up", tools=TOOLS) as helper:
            seen["helper"] = _read(helper.get_final_response())
        seen["refusal"] = _read(client.responses.create(model="gpt-4o-mini", input="tell me a secret"))
        parsed = client.responses.parse(model="gpt-4o-mini", input="my order", text_format=Order)
        seen["parsed"] = (type(parsed).__name__, parsed.output_parsed, parsed.output_text)
        raw = client.responses.with_raw_response.create(model="gpt-4o-mini", input="raw")
        seen["raw"] = (raw.http_response.status_code, raw.headers["content-type"], raw.parse().output_text)
        with client.responses.with_streaming_response.create(model="gpt-4o-mini", input="read") as response:
            seen["streaming"] = response.parse().output_text
        _answer()
    return seen


async def aturn(client: openai.AsyncOpenAI) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    with autotrace.start_chain("turn"):
        seen["text"] = _read(await client.responses.create(model="gpt-4o-mini", input="where is my order?"))
        seen["calls"] = _read(await client.responses.create(model="gpt-4o-mini", input="look it up", tools=TOOLS))
        stream = await client.responses.create(model="gpt-4o-mini", input="hi", stream=True)
        seen["stream"] = _streamed([e async for e in stream])
        async with client.responses.stream(model="gpt-4o-mini", input="look it up", tools=TOOLS) as helper:
            seen["helper"] = _read(await helper.get_final_response())
        seen["refusal"] = _read(await client.responses.create(model="gpt-4o-mini", input="tell me a secret"))
        parsed = await client.responses.parse(model="gpt-4o-mini", input="my order", text_format=Order)
        seen["parsed"] = (type(parsed).__name__, parsed.output_parsed, parsed.output_text)
        raw = await client.responses.with_raw_response.create(model="gpt-4o-mini", input="raw")
        seen["raw"] = (raw.http_response.status_code, raw.headers["content-type"], raw.parse().output_text)
        async with client.responses.with_streaming_response.create(model="gpt-4o-mini", input="read") as response:
            seen["streaming"] = (await response.parse()).output_text
        _answer()
    return seen


def _script(fake: FakeOpenAI) -> None:
    fake.script(reply="It ships today.", usage=(12, 4), cached_tokens=2, reasoning_tokens=1, model="gpt-4o-mini-2024")
    fake.script(tool_calls=CALL, usage=(20, 6))
    fake.script(reply="Streamed answer.", usage=(3, 3))
    fake.script(tool_calls=CALL, usage=(20, 6))
    fake.script(refusal="I can't help with that.", usage=(5, 5))
    fake.script(reply='{"order_id":"o-7","status":"packed"}', usage=(8, 9))
    fake.script(reply="Raw reply.", usage=(2, 2))
    fake.script(reply="Streaming response.", usage=(2, 3))


def _message(text: str) -> tuple[Any, ...]:
    return ("message", "assistant", [("output_text", text)])


FUNCTION_CALL = ("function_call", "call_0", "lookup_order", '{"order_id": "o-7"}')
SEEN = {
    "text": {"text": "It ships today.", "items": [_message("It ships today.")], "status": "completed",
             "model": "gpt-4o-mini-2024", "usage": (12, 4, 16, 2, 1)},
    "calls": {"text": "", "items": [FUNCTION_CALL], "status": "completed", "model": "gpt-4o-mini",
              "usage": (20, 6, 26, 0, 0)},
    "stream": {"text": "Streamed answer.", "arguments": "", "final": {
        "text": "Streamed answer.", "items": [_message("Streamed answer.")], "status": "completed",
        "model": "gpt-4o-mini", "usage": (3, 3, 6, 0, 0)}},
    "helper": {"text": "", "items": [FUNCTION_CALL], "status": "completed", "model": "gpt-4o-mini",
               "usage": (20, 6, 26, 0, 0)},
    "refusal": {"text": "", "items": [("message", "assistant", [("refusal", "I can't help with that.")])],
                "status": "completed", "model": "gpt-4o-mini", "usage": (5, 5, 10, 0, 0)},
    "parsed": ("ParsedResponse", Order(order_id="o-7", status="packed"), '{"order_id":"o-7","status":"packed"}'),
    "raw": (200, "application/json", "Raw reply."),
    "streaming": "Streaming response.",
}


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_frozen_responses_calls_are_served_by_the_sdk_from_the_recording(traced: Traced, kind: str) -> None:
    with FakeOpenAI() as fake:
        _script(fake)
        client, entry, seen = _recorded_run(fake, kind, turn, aturn)
        assert seen == SEEN
        replayed, records = _replayed(traced, fake, entry, client, ["openai.responses"] * 8)
    assert replayed == SEEN  # what the caller read: text, calls, refusal, parsed, raw, streams
    assert shape(records) == [("chain", "turn", [("generation", "openai.responses", [])] * 8
                               + [("generation", "answer", [])])]
    frozen = [(r["output"], r["usage"], r["model"], r["metadata"]["finish_reason"]) for r in records[1:9]]
    assert frozen[:3] == [
        ("It ships today.", {"input": 12, "output": 4, "total": 16, "input_cached_tokens": 2,
                             "output_reasoning_tokens": 1}, "gpt-4o-mini-2024", "completed"),
        ([{"arguments": '{"order_id": "o-7"}', "call_id": "call_0", "name": "lookup_order", "type": "function_call",
           "id": "fc_0", "status": "completed"}],
         {"input": 20, "output": 6, "total": 26, "input_cached_tokens": 0, "output_reasoning_tokens": 0},
         "gpt-4o-mini", "completed"),
        ("Streamed answer.", {"input": 3, "output": 3, "total": 6, "input_cached_tokens": 0,
                              "output_reasoning_tokens": 0}, "gpt-4o-mini", "completed")]
    assert frozen[5][0] == '{"order_id":"o-7","status":"packed"}'  # the JSON text replied, kept as that text


def _recorded(traced: Traced) -> list[dict[str, Any]]:
    """The newest trace (the one just recorded, in a test that records after a replay too)."""
    assert autotrace.flush(5)
    return traced.trace(autotrace.local_store().traces(limit=1)[0]["trace_id"])


def _events(client: openai.OpenAI, **options: Any) -> list[tuple[str, Any]]:
    with autotrace.start_chain("turn"):
        events = list(client.responses.create(model="gpt-4o-mini", input="hi", stream=True, **options))
        _answer()
    return [(e.type, getattr(e, "delta", None)) for e in events]


def _replay_frozen(traced: Traced, fake: FakeOpenAI, entry: Callable[..., Any], client: Any,
                   original: list[dict[str, Any]] | None = None, **options: Any) -> Any:
    """What ``entry`` returned in a replay from ``answer`` that sent no request and froze the call."""
    original = original or _recorded(traced)
    before = len(fake.requests)
    result = replay(original, next(r["id"] for r in original if r["name"] == "answer"), entry, client, **options)
    assert len(fake.requests) == before
    records = traced.trace(result.trace_id)
    assert [(r["name"], (r["metadata"] or {}).get("replay")) for r in records] == [
        ("turn", None), ("openai.responses", "frozen"), ("answer", None)]
    assert [(r["output"], r["usage"]) for r in records] == [(r["output"], r["usage"]) for r in original]
    return result.result


def test_a_frozen_stream_sends_the_events_the_api_sends(traced: Traced) -> None:
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="Hello there.", tool_calls=CALL)
        _events(client, tools=TOOLS)
        replayed = _replay_frozen(traced, fake, _events, client, tools=TOOLS)
    assert replayed == [
        ("response.created", None), ("response.in_progress", None), ("response.output_item.added", None),
        ("response.content_part.added", None), ("response.output_text.delta", "Hello there."),
        ("response.output_text.done", None), ("response.content_part.done", None),
        ("response.output_item.done", None), ("response.output_item.added", None),
        ("response.function_call_arguments.delta", '{"order_id": "o-7"}'),
        ("response.function_call_arguments.done", None), ("response.output_item.done", None),
        ("response.completed", None)]


def _one_call(client: openai.OpenAI, **options: Any) -> Any:
    with autotrace.start_chain("turn"):
        response = client.responses.create(model="gpt-4o-mini", input="hi", **options)
        _answer()
    return response


def _replay_live(traced: Traced, fake: FakeOpenAI, client: openai.OpenAI, original: list[dict[str, Any]] | None = None,
                 entry: Callable[..., Any] = _one_call, **options: Any) -> Any:
    """A replay whose one Responses call ran live: one request, no replay metadata, counted."""
    original = original or _recorded(traced)
    live, before = _internal.stats().get("openai.replay_live", 0), len(fake.requests)
    result = replay(original, next(r["id"] for r in original if r["name"] == "answer"), entry, client, **options)
    assert len(fake.requests) == before + 1
    assert _internal.stats()["openai.replay_live"] == live + 1
    assert [(r["name"], (r["metadata"] or {}).get("replay")) for r in traced.trace(result.trace_id)] == [
        ("turn", None), ("openai.responses", None), ("answer", None)]
    return result.result


@pytest.mark.parametrize("options", [
    {"background": True}, {"conversation": "conv_1"}, {"include": ["message.output_text.logprobs"]},
    {"top_logprobs": 2}, {"reasoning": {"effort": "low", "summary": "auto"}},
    {"tools": [{"type": "web_search"}]}, {"extra_body": {"include": ["reasoning.encrypted_content"]}},
], ids=["background", "conversation", "include", "top_logprobs", "reasoning_summary", "hosted_tool", "extra_body"])
def test_a_reply_the_recording_cannot_give_runs_live(traced: Traced, options: dict[str, Any]) -> None:
    """A background call (its reply comes later, by its id), a conversation's turn (missing from
    the conversation otherwise), a recorded text when the request asked for more than a text."""
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="recorded")
        _one_call(client, **options)
        fake.script(reply="live")
        response = _replay_live(traced, fake, client, **options)
    assert response.status == ("queued" if "background" in options else "completed")


def test_a_background_stream_runs_live(traced: Traced) -> None:
    """Streamed, a background response records its reply; it still runs live (it can be resumed
    or retrieved by its id, which the recording does not keep)."""
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="recorded")
        _events(client, background=True)
        assert _recorded(traced)[1]["output"] == "recorded"
        fake.script(reply="live")
        streamed = _replay_live(traced, fake, client, None, _events, background=True)
    assert "".join(delta for kind, delta in streamed if kind == "response.output_text.delta") == "live"


@pytest.mark.parametrize("finish_reason", ["failed", None], ids=["failed_response", "error_event"])
def test_a_reply_the_api_gave_as_failed_runs_live_and_raises_nothing(traced: Traced, finish_reason: Any) -> None:
    """A ``failed`` response (the recording holds no error code to rebuild it), or a stream an
    error event ended before any output: neither raised at the call."""
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="recorded")
        _one_call(client)
        original = copy.deepcopy(_only_trace(traced))
        original[1].update(level="ERROR", status_message="The model failed to generate a response.", output=None)
        original[1]["metadata"]["finish_reason"] = finish_reason
        fake.script(reply="live")
        assert _replay_live(traced, fake, client, original).output_text == "live"


def test_a_frozen_call_whose_recording_raised_raises_the_sdks_error(traced: Traced) -> None:
    _replays_a_recorded_rate_limit(traced, lambda client: client.responses.create(model="gpt-4o-mini", input="hi"),
                                  "openai.responses")


def test_a_chained_call_is_frozen_and_a_recorded_response_id_is_given_back(traced: Traced) -> None:
    """A call continuing a chain (``previous_response_id``) is a plain reply: frozen. The frozen
    response has the recorded id when the recording names it, so a live call chaining to it
    continues the original's stored conversation."""
    def chain(client: openai.OpenAI) -> tuple[str, str]:
        with autotrace.start_chain("turn"):
            first = client.responses.create(model="gpt-4o-mini", input="hi")
            second = client.responses.create(model="gpt-4o-mini", input="and?", previous_response_id=first.id)
            _answer()
        return first.id, second.output_text

    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="first")
        fake.script(reply="second")
        assert chain(client) == ("resp_fake", "second")
        original = copy.deepcopy(_only_trace(traced))
        assert original[2]["input"] == {"previous_response_id": "resp_fake", "input": "and?"}
        assert [r["metadata"].get("response_id") for r in original[1:3]] == ["resp_fake", "resp_fake"]
        replayed, _ = _replayed(traced, fake, chain, client, ["openai.responses"] * 2)
        assert replayed == ("resp_fake", "second")  # the recorded id: a live call would chain to the original's
        del original[1]["metadata"]["response_id"]  # a recording made before ids were recorded
        before = len(fake.requests)
        result = replay(original, next(r["id"] for r in original if r["name"] == "answer"), chain, client)
        assert len(fake.requests) == before
        assert result.result == ("resp_replayed", "second")
        original[1]["metadata"]["response_id"] = "resp_original"
        before = len(fake.requests)
        result = replay(original, next(r["id"] for r in original if r["name"] == "answer"), chain, client)
        assert len(fake.requests) == before
    assert result.result == ("resp_original", "second")


def test_recorded_cache_write_tokens_are_given_back(traced: Traced) -> None:
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="recorded", usage=(40, 2), cached_tokens=8)
        _one_call(client)
        original = copy.deepcopy(_recorded(traced))
        original[1]["usage"]["input_cache_write_tokens"] = 30
        details = _replay_frozen(traced, fake, _one_call, client, original).usage.input_tokens_details
    assert (details.cached_tokens, details.cache_write_tokens) == (8, 30)


def _with_items(traced: Traced, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trace just recorded, its Responses call's output doctored to ``items``."""
    original = copy.deepcopy(_recorded(traced))
    original[1]["output"] = items
    return original


REASONING = {"type": "reasoning", "id": "rs_1", "summary": []}
MESSAGE = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
           "content": [{"type": "output_text", "text": "Thought it through.", "annotations": []}]}
#: With a call for the program among them, the output items are recorded (not the text alone).
FUNCTION = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "lookup_order",
            "arguments": '{"order_id": "o-7"}', "status": "completed"}


def test_recorded_output_items_are_given_back_as_recorded(traced: Traced) -> None:
    """A reasoning model's items; a reasoning item without summary streams as the API streams it
    (added, done)."""
    items = [REASONING, MESSAGE, FUNCTION]
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="recorded")
        _one_call(client)
        response = _replay_frozen(traced, fake, _one_call, client, _with_items(traced, items))
        assert [_item(i) for i in response.output] == [
            ("reasoning",), _message("Thought it through."),
            ("function_call", "call_1", "lookup_order", '{"order_id": "o-7"}')]
        assert response.output_text == "Thought it through."
        fake.script(reply="recorded")
        _events(client)
        streamed = _replay_frozen(traced, fake, _events, client, _with_items(traced, items))
    assert streamed[:4] == [("response.created", None), ("response.in_progress", None),
                            ("response.output_item.added", None), ("response.output_item.done", None)]


@pytest.mark.parametrize("item", [
    {**REASONING, "summary": [{"type": "summary_text", "text": "Looked it up."}]},
    {**MESSAGE, "content": [{"type": "output_text", "text": "See [1].", "annotations": [
        {"type": "url_citation", "url": "https://example.com", "title": "x", "start_index": 4, "end_index": 7}]}]},
    {"type": "web_search_call", "id": "ws_1", "status": "completed"},
], ids=["reasoning_summary", "annotations", "other_item"])
def test_a_stream_of_items_the_api_streams_otherwise_runs_live(traced: Traced, item: dict[str, Any]) -> None:
    """Items whose stream has events of their own (summary, annotations, hosted tools' progress)."""
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="recorded")
        _events(client)
        fake.script(reply="live")
        streamed = _replay_live(traced, fake, client, _with_items(traced, [item, MESSAGE, FUNCTION]), _events)
        assert "".join(delta for kind, delta in streamed if kind == "response.output_text.delta") == "live"
        _one_call(client)  # not streamed: the recorded items are given back
        response = _replay_frozen(traced, fake, _one_call, client, _with_items(traced, [item, MESSAGE, FUNCTION]))
    assert response.output[0].type == item["type"]


@pytest.mark.parametrize("recorded", [
    {"level": "ERROR", "status_message": "The server had an error.", "output": "Partial"},
    {"level": "WARNING", "status_message": "max_output_tokens", "output": "Cut sh", "finish_reason": "incomplete"},
    {"output": [{"type": "image_generation_call", "id": "ig_1", "status": "completed",
                 "result": "<base64, 1024 chars>"}, FUNCTION]},
], ids=["error_event", "incomplete", "generated_image"])
def test_a_recording_that_is_no_whole_reply_runs_live(traced: Traced, recorded: dict[str, Any]) -> None:
    """A stream an error event ended (no final response), an incomplete reply (its reason is not
    recorded), a generated image (kept as a note)."""
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="recorded")
        _one_call(client)
        original = copy.deepcopy(_recorded(traced))
        finish_reason = recorded.pop("finish_reason", None)
        original[1].update(recorded)
        if finish_reason is not None:
            original[1]["metadata"]["finish_reason"] = finish_reason
        fake.script(reply="live")
        assert _replay_live(traced, fake, client, original).output_text == "live"


def test_a_compaction_runs_live(traced: Traced) -> None:
    """``responses.compact`` (a Responses generation) answers no ``response``: it is not rebuilt."""
    def compact(client: openai.OpenAI) -> str:
        with autotrace.start_chain("turn"):
            compacted = client.responses.compact(model="gpt-4o-mini", input=[{"role": "user", "content": "hi"}])
            _answer()
        return compacted.object

    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        assert compact(client) == "response.compaction"
        original = _recorded(traced)
        live, before = _internal.stats().get("openai.replay_live", 0), len(fake.requests)
        result = replay(original, next(r["id"] for r in original if r["name"] == "answer"), compact, client)
        assert len(fake.requests) == before + 1
    assert result.result == "response.compaction"
    assert _internal.stats()["openai.replay_live"] == live + 1


@pytest.mark.integrations("openai", "langchain")
def test_a_responses_call_a_framework_recorded_runs_live(traced: Traced) -> None:
    """LangChain's ``ChatOpenAI(use_responses_api=True)`` records its own message, not a reply to rebuild."""
    from langchain_openai import ChatOpenAI

    def ask(llm: ChatOpenAI) -> Any:
        with autotrace.start_chain("turn"):
            content = llm.invoke("hi").content
            _answer()
        return content

    with FakeOpenAI() as fake:
        llm = ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="k", max_retries=0, use_responses_api=True)
        fake.script(reply="recorded")
        ask(llm)
        original = _recorded(traced)
        assert [r["name"] for r in original] == ["turn", "ChatOpenAI", "answer"]
        fake.script(reply="live")
        before = len(fake.requests)
        result = replay(original, original[2]["id"], ask, llm)
        assert len(fake.requests) == before + 1
    assert [part["text"] for part in result.result] == ["live"]
