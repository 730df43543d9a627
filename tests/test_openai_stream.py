"""OpenAI streams: transparent proxy, first-token time, usage capture, and exactly one span on
every exit path (exhausted, break + close, with, async with + break, exception, abandonment)."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
from typing import Any

import openai
import pytest
from openai import AsyncStream, Stream

import autotrace
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "tell me"}]


def _one(traced: Traced) -> dict[str, Any]:
    records = traced.records()
    assert len(records) == 1, [r["name"] for r in records]
    return records[0]


def _ns(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso).timestamp() * 1e9)


def test_exhausted_stream_records_output_usage_and_first_token(traced: Traced, client: openai.OpenAI,
                                                               fake: FakeOpenAI) -> None:
    fake.script(reply="one two three four", chunks=20, usage=(9, 4))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, Stream)  # the proxy is transparent to isinstance
    chunks = list(stream)
    assert all(chunk.choices for chunk in chunks)  # the usage chunk autotrace asked for stays hidden
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two three four"
    assert fake.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    record = _one(traced)
    assert record["output"] == {"role": "assistant", "content": "one two three four"}
    assert record["usage"] == {"input": 9, "output": 4, "total": 13, "input_cached_tokens": 0,
                               "output_reasoning_tokens": 0}
    assert record["cost"]["total"] > 0 and record["metadata"]["finish_reason"] == "stop"
    assert record["start_ns"] <= _ns(record["completion_start_time"]) <= record["end_ns"]


def test_caller_that_asked_for_usage_sees_the_usage_chunk(traced: Traced, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert _one(traced)["usage"]["total"] == chunks[-1].usage.total_tokens


def test_stream_usage_off_leaves_the_request_as_the_caller_made_it(tmp_path: Any, client: openai.OpenAI,
                                                                    fake: FakeOpenAI) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("openai",),
                      stream_usage=False)
    fake.script(reply="one two", chunks=4, usage=(9, 4))
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert "stream_options" not in fake.requests[-1]["body"]
    assert all(chunk.choices for chunk in chunks)  # the server sent no usage chunk
    record = _one(Traced(tmp_path / "t.db"))
    assert record["output"] == {"role": "assistant", "content": "one two"}
    assert record["usage"] is None and record["cost"] is None  # nothing to count without the server's usage


def test_break_then_close_ends_once(traced: Traced, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    for _chunk in stream:
        break
    stream.close()
    stream.close()
    assert _one(traced)["level"] == "DEFAULT"


def test_with_block_and_break(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply="abcdefghij", chunks=10)
    with client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream:
        for chunk in stream:
            if chunk.choices[0].delta.content:
                break
    assert _one(traced)["output"]["content"] == "a"


def test_async_with_and_break(traced: Traced, aclient: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply="abcdefghij", chunks=10)

    async def consume() -> str:
        stream = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        assert isinstance(stream, AsyncStream)
        async with stream:
            async for chunk in stream:
                if chunk.choices[0].delta.content:
                    return chunk.choices[0].delta.content
        return ""

    assert asyncio.run(consume()) == "a"
    assert _one(traced)["output"]["content"] == "a"


def test_async_stream_exhausted_and_closed(traced: Traced, aclient: openai.AsyncOpenAI) -> None:
    async def consume() -> list[Any]:
        stream = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        chunks = [c async for c in stream]
        await stream.close()
        return chunks

    chunks = asyncio.run(consume())
    assert all(c.choices for c in chunks)
    record = _one(traced)
    assert record["output"]["content"] == "echo: tell me" and record["usage"]["total"] > 0


def test_consumer_exception_inside_with(traced: Traced, client: openai.OpenAI) -> None:
    class ConsumerBug(Exception):
        pass

    with pytest.raises(ConsumerBug), client.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                                    stream=True) as stream:
        for _ in stream:
            raise ConsumerBug
    assert len(traced.records()) == 1


def test_error_from_the_stream_itself(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    stream.response.close()  # the connection dies under the consumer
    with pytest.raises(Exception) as raised:
        list(stream)
    record = _one(traced)
    assert record["level"] == "ERROR" and type(raised.value).__name__ in record["status_message"]


def test_abandoned_stream_ends_on_collection(traced: Traced, client: openai.OpenAI) -> None:
    def start() -> None:
        stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        next(iter(stream))

    start()
    gc.collect()
    assert len(traced.records()) == 1


def test_stream_attributes_and_helpers_behave_as_without_autotrace(traced: Traced, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert stream.response.status_code == 200
    assert next(stream).choices[0].delta.role == "assistant"
    stream.close()


def test_responses_and_completions_streams(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply="streamed answer", usage=(5, 2))
    events = [e.type for e in client.responses.create(model="gpt-4.1", input="q", stream=True)]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    text = "".join(c.choices[0].text for c in client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="p", stream=True) if c.choices)
    assert text == "echo: p"
    by_name = {r["name"]: r for r in traced.records()}
    assert by_name["openai.responses"]["output"] == "streamed answer"
    assert by_name["openai.responses"]["usage"]["total"] == 7
    assert by_name["openai.responses"]["completion_start_time"] is not None
    assert by_name["openai.completions"]["output"] == "echo: p"
    assert by_name["openai.completions"]["usage"]["total"] > 0


def test_streamed_tool_calls_are_assembled(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(tool_calls=[{"name": "refund", "arguments": '{"order": 7}'}])
    list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    record = _one(traced)
    assert record["output"]["tool_calls"] == [
        {"id": "call_0", "type": "function", "function": {"name": "refund", "arguments": '{"order": 7}'}}
    ]
    assert record["metadata"]["finish_reason"] == "tool_calls"


LONG_REPLY = " ".join(f"w{i}" for i in range(150))


def test_long_stream_is_folded_while_it_runs_and_recorded_whole(traced: Traced, client: openai.OpenAI,
                                                                 fake: FakeOpenAI) -> None:
    """Past the first token, chunks are kept without a call per chunk and folded in batches (150
    chunks: two batches during the stream, the rest at the end); nothing is lost or doubled."""
    fake.script(reply=LONG_REPLY, chunks=150, usage=(9, 150))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert all(chunk.choices for chunk in chunks)  # the usage chunk stays hidden
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == LONG_REPLY
    assert len(stream._self_state.chunks) == 0  # everything read, nothing held
    record = _one(traced)
    assert record["output"] == {"role": "assistant", "content": LONG_REPLY}
    assert record["usage"]["output"] == 150 and record["metadata"]["finish_reason"] == "stop"
    assert record["start_ns"] <= _ns(record["completion_start_time"]) <= record["end_ns"]


def test_long_async_stream_is_recorded_whole(traced: Traced, aclient: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply=LONG_REPLY, chunks=150, usage=(9, 150))

    async def run() -> list[Any]:
        stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        return [chunk async for chunk in stream]

    chunks = asyncio.run(run())
    assert all(chunk.choices for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == LONG_REPLY
    record = _one(traced)
    assert record["output"] == {"role": "assistant", "content": LONG_REPLY} and record["usage"]["output"] == 150


def test_a_failing_fold_costs_the_record_its_output_never_the_caller_its_chunks(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fold that fails (a chunk shape autotrace does not know) loses that batch's output in the
    record; the caller still gets every chunk and the observation still ends."""
    from autotrace.integrations.openai import _stream

    def broken(self: Any, chunks: list[Any]) -> None:
        raise RuntimeError("unexpected chunk shape")

    monkeypatch.setattr(_stream.StreamState, "_fold", broken)
    fake.script(reply=LONG_REPLY, chunks=150, usage=(9, 150))
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == LONG_REPLY
    record = _one(traced)
    assert record["output"] == {"role": "assistant", "content": None}
    assert autotrace.stats()["internal_errors.openai.stream_fold"] >= 1
