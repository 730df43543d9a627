"""Replay freezes every OpenAI chat call: streamed (sync and async, the caller's usage asked or
not, tool calls, the SDK's ``stream`` helper), made through ``with_raw_response`` or
``with_streaming_response``, and made for a LangChain ``ChatOpenAI`` generation. The caller gets
the SDK's own objects reading the recorded reply, no request reaches the (loopback) server, and
the replay records what the original did."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import openai
import pytest
from langchain_openai import ChatOpenAI
from openai.types.chat import ParsedChatCompletion
from pydantic import BaseModel

import autotrace
from autotrace import _internal
from autotrace.integrations.openai import _replayed_http
from autotrace.replay import areplay, replay
from autotrace.runtime import state
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.llama_doubles import OpenAIBacked

pytestmark = pytest.mark.integrations("openai", "langchain")

ASK = [{"role": "user", "content": "where is my order?"}]
TOOLS = [{"type": "function", "function": {"name": "lookup_order", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}}}}]
CALL = [{"name": "lookup_order", "arguments": '{"order_id": "o-7"}'}]


def _answer() -> None:
    """The generation the replays start at (nothing after it)."""
    with autotrace.start_generation("answer", model="m") as gen:
        gen.set_output("ok")


def _tool_calls(chunks: list[Any]) -> list[tuple[Any, ...]]:
    """A stream's tool calls as the caller assembles them from the deltas."""
    calls: dict[int, list[Any]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, [None, "", ""])
                entry[0] = delta.id or entry[0]
                entry[1] += (delta.function.name or "") if delta.function else ""
                entry[2] += (delta.function.arguments or "") if delta.function else ""
    return [tuple(entry) for _, entry in sorted(calls.items())]


def _seen(chunks: list[Any]) -> dict[str, Any]:
    """What a caller reads from a stream: text, tool calls, finish reasons, a usage chunk's usage."""
    return {"text": "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
            "calls": _tool_calls(chunks),
            "finish": [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason],
            "usage": [c.usage.model_dump(exclude_none=True) for c in chunks if not c.choices]}


def streamed_turn(client: openai.OpenAI) -> dict[str, Any]:
    with autotrace.start_chain("turn"):
        plain = list(client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True))
        with client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True, tools=TOOLS,
                                            stream_options={"include_usage": True}) as stream:
            tools = list(stream)
        with client.chat.completions.stream(model="gpt-4o-mini", messages=ASK) as helper:
            final = helper.get_final_completion().choices[0].message.content
        _answer()
    return {"plain": _seen(plain), "tools": _seen(tools), "helper": final}


async def astreamed_turn(client: openai.AsyncOpenAI) -> dict[str, Any]:
    with autotrace.start_chain("turn"):
        plain = [c async for c in await client.chat.completions.create(model="gpt-4o-mini", messages=ASK,
                                                                        stream=True)]
        async with await client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True, tools=TOOLS,
                                                        stream_options={"include_usage": True}) as stream:
            tools = [c async for c in stream]
        async with client.chat.completions.stream(model="gpt-4o-mini", messages=ASK) as helper:
            final = (await helper.get_final_completion()).choices[0].message.content
        _answer()
    return {"plain": _seen(plain), "tools": _seen(tools), "helper": final}


def _script_streams(fake: FakeOpenAI) -> None:
    fake.script(reply="Your order ships today.")
    fake.script(tool_calls=CALL, usage=(31, 9))
    fake.script(reply="It ships in 24h.")


STREAMED_TREE = [("chain", "turn", [("generation", "openai.chat", []), ("generation", "openai.chat", []),
                                    ("generation", "openai.chat", []), ("generation", "answer", [])])]
STREAMED_SEEN = {
    "plain": {"text": "Your order ships today.", "calls": [], "finish": ["stop"], "usage": []},
    "tools": {"text": "", "calls": [("call_0", "lookup_order", '{"order_id": "o-7"}')], "finish": ["tool_calls"],
              "usage": [{"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40,
                         "prompt_tokens_details": {"cached_tokens": 0},
                         "completion_tokens_details": {"reasoning_tokens": 0}}]},
    "helper": "It ships in 24h."}


def _only_trace(traced: Traced) -> list[dict[str, Any]]:
    (summary,) = autotrace.local_store().traces() if autotrace.flush(5) else []
    return traced.trace(summary["trace_id"])


def _fields(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What the replay must record as the original did, per observation in tree order."""
    return [(r["type"], r["name"], r["level"], r["model"], r["output"], r["usage"],
             (r["metadata"] or {}).get("finish_reason")) for r in records]


def _replayed(traced: Traced, fake: FakeOpenAI, entry: Callable[..., Any], arg: Any,
              frozen: list[str]) -> tuple[Any, list[dict[str, Any]]]:
    """What ``entry(arg)`` returned in a replay of the one recorded trace from its ``answer``
    generation (``areplay`` for a coroutine function), and the replay's records: it sent nothing,
    froze exactly ``frozen`` (in tree order) and recorded what the original did."""
    original = _only_trace(traced)
    at = next(r["id"] for r in original if r["name"] == "answer")
    before = len(fake.requests)
    if inspect.iscoroutinefunction(entry):
        result = asyncio.run(areplay(original, at, entry, arg))
    else:
        result = replay(original, at, entry, arg)
    assert len(fake.requests) == before  # no frozen call reached the server
    records = traced.trace(result.trace_id)
    assert shape(records) == shape(original)
    assert [r["name"] for r in records if (r["metadata"] or {}).get("replay") == "frozen"] == frozen
    assert _fields(records) == _fields(original)
    return result.result, records


def _recorded_run(fake: FakeOpenAI, kind: str, turn: Callable[..., Any], aturn: Callable[..., Any]) -> tuple[Any, Any, Any]:
    """A client of ``kind`` (``sync``/``async``) on ``fake``, its entry (``turn`` or ``aturn``), and
    what that entry returned when run once to record the trace."""
    if kind == "sync":
        client: Any = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        return client, turn, turn(client)
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    return client, aturn, asyncio.run(aturn(client))


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_frozen_streams_give_the_sdks_stream_reading_the_recorded_reply(traced: Traced, kind: str) -> None:
    with FakeOpenAI() as fake:
        _script_streams(fake)
        client, entry, seen = _recorded_run(fake, kind, streamed_turn, astreamed_turn)
        assert seen == STREAMED_SEEN
        assert shape(_only_trace(traced)) == STREAMED_TREE
        replayed, records = _replayed(traced, fake, entry, client, ["openai.chat"] * 3)
    assert replayed == STREAMED_SEEN  # the caller read the same text, tool calls and usage
    assert [r["output"] for r in records if r["name"] == "openai.chat"] == [
        {"role": "assistant", "content": "Your order ships today."},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_0", "type": "function", "function": {
            "name": "lookup_order", "arguments": '{"order_id": "o-7"}'}}]},
        {"role": "assistant", "content": "It ships in 24h."}]
    assert all(r["usage"] for r in records if r["name"] == "openai.chat")  # autotrace's usage, hidden from the caller


def test_a_frozen_stream_closed_early_records_what_was_read(traced: Traced) -> None:
    def turn(client: openai.OpenAI) -> str:
        with autotrace.start_chain("turn"):
            stream = client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True)
            first = next(stream)
            stream.close()
            _answer()
        return first.choices[0].delta.role or ""

    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="Your order ships today.")
        assert turn(client) == "assistant"
        _replayed(traced, fake, turn, client, ["openai.chat"])


def raw_turn(client: openai.OpenAI) -> dict[str, Any]:
    with autotrace.start_chain("turn"):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
        completion = raw.parse()
        raw_stream = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK, stream=True)
        streamed = _seen(list(raw_stream.parse()))
        with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=ASK) as response:
            read = response.parse().choices[0].message.content
        _answer()
    return {"status": raw.http_response.status_code, "type": raw.headers["content-type"],
            "parsed": (type(completion).__name__, completion.choices[0].message.content), "stream": streamed,
            "streaming": read}


async def araw_turn(client: openai.AsyncOpenAI) -> dict[str, Any]:
    with autotrace.start_chain("turn"):
        raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
        completion = raw.parse()  # ``with_raw_response`` parses at once, for an async client too
        raw_stream = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK,
                                                                             stream=True)
        streamed = _seen([c async for c in raw_stream.parse()])
        async with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini",
                                                                          messages=ASK) as response:
            read = (await response.parse()).choices[0].message.content
        _answer()
    return {"status": raw.http_response.status_code, "type": raw.headers["content-type"],
            "parsed": (type(completion).__name__, completion.choices[0].message.content), "stream": streamed,
            "streaming": read}


def _script_raw(fake: FakeOpenAI) -> None:
    fake.script(reply="Raw reply.")
    fake.script(reply="Raw stream.")
    fake.script(reply="Streaming response.")


RAW_SEEN = {"status": 200, "type": "application/json", "parsed": ("ChatCompletion", "Raw reply."),
            "stream": {"text": "Raw stream.", "calls": [], "finish": ["stop"], "usage": []},
            "streaming": "Streaming response."}


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_frozen_raw_responses_parse_to_the_recorded_reply(traced: Traced, kind: str) -> None:
    with FakeOpenAI() as fake:
        _script_raw(fake)
        client, entry, seen = _recorded_run(fake, kind, raw_turn, araw_turn)
        assert seen == RAW_SEEN
        replayed, _ = _replayed(traced, fake, entry, client, ["openai.chat"] * 3)
    assert replayed == RAW_SEEN


def lookup_order(order_id: str) -> str:
    """Look an order up."""
    return order_id


def langchain_turn(llm: ChatOpenAI) -> dict[str, Any]:
    with autotrace.start_chain("turn"):
        text = llm.invoke("where is my order?")
        called = llm.bind_tools([lookup_order]).invoke("look it up")
        streamed = "".join(str(chunk.content) for chunk in llm.stream("stream it"))
        _answer()
    return {"text": (text.content, text.usage_metadata), "called": (called.content, called.tool_calls),
            "streamed": streamed}


async def alangchain_turn(llm: ChatOpenAI) -> dict[str, Any]:
    with autotrace.start_chain("turn"):
        text = await llm.ainvoke("where is my order?")
        called = await llm.bind_tools([lookup_order]).ainvoke("look it up")
        streamed = "".join([str(chunk.content) async for chunk in llm.astream("stream it")])
        _answer()
    return {"text": (text.content, text.usage_metadata), "called": (called.content, called.tool_calls),
            "streamed": streamed}


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_frozen_langchain_chat_openai_calls_are_served_from_the_recording(traced: Traced, kind: str) -> None:
    with FakeOpenAI() as fake:
        llm = ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="It ships today.", usage=(12, 4))
        fake.script(tool_calls=[{"name": "lookup_order", "arguments": '{"order_id": "o-7"}'}])
        fake.script(reply="Streamed answer.")
        seen = langchain_turn(llm) if kind == "sync" else asyncio.run(alangchain_turn(llm))
        assert seen == {
            "text": ("It ships today.", {"input_tokens": 12, "output_tokens": 4, "total_tokens": 16,
                                         "input_token_details": {"cache_read": 0},
                                         "output_token_details": {"reasoning": 0}}),
            "called": ("", [{"name": "lookup_order", "args": {"order_id": "o-7"}, "id": "call_0",
                             "type": "tool_call"}]),
            "streamed": "Streamed answer."}
        entry = langchain_turn if kind == "sync" else alangchain_turn
        replayed, records = _replayed(traced, fake, entry, llm, ["ChatOpenAI"] * 3)
    assert replayed == seen
    assert shape(records) == [("chain", "turn", [("generation", "ChatOpenAI", []), ("generation", "ChatOpenAI", []),
                                                 ("generation", "ChatOpenAI", []), ("generation", "answer", [])])]


def _replays_a_recorded_rate_limit(traced: Traced, request: Callable[[openai.OpenAI], Any], name: str) -> None:
    """A turn whose ``request`` was refused (429) when recorded: its replay, with the call ``name``
    frozen, raises the SDK's ``RateLimitError`` at the call, and records it as the original did."""
    def turn(client: openai.OpenAI) -> tuple[Any, ...]:
        with autotrace.start_chain("turn"):
            try:
                request(client)
            except openai.RateLimitError as error:
                caught = (type(error).__name__, error.status_code)
            _answer()
        return caught

    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(error=(429, "slow down"))
        assert turn(client) == ("RateLimitError", 429)
        replayed, records = _replayed(traced, fake, turn, client, [name])
    assert replayed == ("RateLimitError", 429)
    assert records[1]["level"] == "ERROR" and "slow down" in records[1]["status_message"]


def test_a_frozen_stream_whose_recording_raised_raises_the_sdks_error_at_the_call(traced: Traced) -> None:
    _replays_a_recorded_rate_limit(
        traced, lambda client: client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True),
        "openai.chat")


def _one_call_turn(client: openai.OpenAI, **options: Any) -> Any:
    with autotrace.start_chain("turn"):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=ASK, **options)
        _answer()
    return reply.choices[0].message.content


def _replay_live(traced: Traced, fake: FakeOpenAI, client: openai.OpenAI, **options: Any) -> list[dict[str, Any]]:
    """A replay whose one chat call ran live: one request, no replay metadata."""
    original = _only_trace(traced)
    at = next(r["id"] for r in original if r["name"] == "answer")
    before = len(fake.requests)
    result = replay(original, at, _one_call_turn, client, **options)
    assert len(fake.requests) == before + 1
    records = traced.trace(result.trace_id)
    assert [(r["name"], (r["metadata"] or {}).get("replay")) for r in records] == [
        ("turn", None), ("openai.chat", None), ("answer", None)]
    return records


def test_a_frozen_call_whose_reply_cannot_be_built_runs_live(traced: Traced,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed SDK (or anything else failing while the reply is built): the call is sent as today."""
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="recorded")
        assert _one_call_turn(client, stream=False) == "recorded"

        def changed(record: Any) -> Any:
            raise TypeError("a changed SDK")

        monkeypatch.setattr(_replayed_http, "completion_body", changed)
        failures = _internal.stats().get("internal_errors.openai.replay", 0)
        fake.script(reply="live again")
        records = _replay_live(traced, fake, client)
    assert records[1]["output"] == {"role": "assistant", "content": "live again"}
    assert _internal.stats()["internal_errors.openai.replay"] == failures + 1


def test_a_spoken_reply_the_recording_cannot_give_runs_live(traced: Traced) -> None:
    """The recording keeps a note of the audio, not its data: the call runs live, as before."""
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="hello", audio="UklGRg==")
        _one_call_turn(client)
        live = _internal.stats().get("openai.replay_live", 0)
        fake.script(reply="again", audio="UklGRg==")
        records = _replay_live(traced, fake, client)
    assert records[1]["output"]["audio"]["transcript"] == "again"
    assert _internal.stats()["openai.replay_live"] == live + 1


def llama_turn(llm: OpenAIBacked) -> tuple[str, str]:
    with autotrace.start_chain("turn"):
        text = llm.complete("ping").text
        streamed = "".join(r.delta or "" for r in llm.stream_complete("pong"))
        _answer()
    return text, streamed


@pytest.mark.integrations("llama_index", "openai")
def test_frozen_llama_index_llm_calls_are_served_from_the_recording(traced: Traced) -> None:
    with FakeOpenAI() as fake:
        llm = OpenAIBacked(base_url=fake.base_url)
        fake.script(reply="pinged")
        fake.script(reply="ponged")
        assert llama_turn(llm) == ("pinged", "ponged")
        frozen = ["OpenAIBacked.complete", "OpenAIBacked.stream_complete"]
        replayed, records = _replayed(traced, fake, llama_turn, llm, frozen)
    assert replayed == ("pinged", "ponged")
    assert shape(records) == [("chain", "turn", [("generation", "OpenAIBacked.complete", []),
                                                 ("generation", "OpenAIBacked.stream_complete", []),
                                                 ("generation", "answer", [])])]
    assert [r["output"] for r in records[1:3]] == ["pinged", "ponged"]


class Order(BaseModel):
    order_id: str
    status: str


def parsed_turn(client: openai.OpenAI) -> tuple[Any, ...]:
    with autotrace.start_chain("turn"):
        completion = client.chat.completions.parse(model="gpt-4o-mini", messages=ASK, response_format=Order)
        raw = client.chat.completions.with_raw_response.parse(model="gpt-4o-mini", messages=ASK, response_format=Order)
        _answer()
    return (isinstance(completion, ParsedChatCompletion), completion.choices[0].message.parsed,
            raw.parse().choices[0].message.parsed)


def test_a_frozen_structured_output_call_gives_the_parsed_reply(traced: Traced) -> None:
    """``parse()`` (its post-parser applied by the SDK) and its raw form, both frozen."""
    reply = '{"order_id": "o-7", "status": "packed"}'
    seen = (True, Order(order_id="o-7", status="packed"), Order(order_id="o-7", status="packed"))
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply=reply)
        fake.script(reply=reply)
        assert parsed_turn(client) == seen
        replayed, _ = _replayed(traced, fake, parsed_turn, client, ["openai.chat"] * 2)
    assert replayed == seen


def test_a_reply_recorded_with_the_apis_empty_annotations_is_frozen(traced: Traced) -> None:
    """The API's replies carry ``annotations: []`` (recorded as such): a reply still rebuilt from them."""
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="recorded")
        _one_call_turn(client)
        original = _only_trace(traced)
        assert original[1]["output"] == {"role": "assistant", "content": "recorded"}
        original[1]["output"]["annotations"] = []  # as the API's own reply is recorded
        at = next(r["id"] for r in original if r["name"] == "answer")
        before = len(fake.requests)
        result = replay(original, at, _one_call_turn, client)
        assert len(fake.requests) == before
    assert result.result == "recorded"
    records = traced.trace(result.trace_id)
    assert [(r["name"], r["output"], (r["metadata"] or {}).get("replay")) for r in records] == [
        ("turn", None, None), ("openai.chat", {"role": "assistant", "content": "recorded", "annotations": []}, "frozen"),
        ("answer", "ok", None)]



def test_a_frozen_stream_sends_a_usage_event_only_when_the_request_asks(traced: Traced,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Recorded with usage (autotrace asked), replayed with ``stream_usage`` off: the request asks
    for no usage, so no usage-only chunk (no choices) reaches the caller."""
    def turn(client: openai.OpenAI) -> dict[str, Any]:
        with autotrace.start_chain("turn"):
            chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True))
            _answer()
        return _seen(chunks)

    seen = {"text": "No usage.", "calls": [], "finish": ["stop"], "usage": []}
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="No usage.", usage=(5, 3))
        assert turn(client) == seen
        original = _only_trace(traced)
        assert original[1]["usage"] == {"input": 5, "output": 3, "total": 8, "input_cached_tokens": 0,
                                        "output_reasoning_tokens": 0}
        monkeypatch.setattr(state, "stream_usage", False)
        before = len(fake.requests)
        result = replay(original, next(r["id"] for r in original if r["name"] == "answer"), turn, client)
        assert len(fake.requests) == before
    assert result.result == seen
    records = traced.trace(result.trace_id)
    assert [(r["name"], r["output"], r["usage"], (r["metadata"] or {}).get("replay")) for r in records] == [
        ("turn", None, None, None), ("openai.chat", {"role": "assistant", "content": "No usage."}, None, "frozen"),
        ("answer", "ok", None, None)]


def _chat_call(client: openai.OpenAI) -> Any:
    with autotrace.start_chain("turn"):
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        _answer()
    return completion


def test_a_frozen_chat_reply_gives_back_its_cached_and_cache_write_tokens(traced: Traced) -> None:
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(reply="recorded", usage=(40, 2), cached_tokens=8, cache_write_tokens=30)
        _chat_call(client)
        completion, _ = _replayed(traced, fake, _chat_call, client, ["openai.chat"])
    details = completion.usage.prompt_tokens_details
    assert (completion.choices[0].message.content, details.cached_tokens, details.cache_write_tokens) == (
        "recorded", 8, 30)
