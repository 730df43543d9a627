"""OpenAI streams: traced in place (the caller gets the SDK's own stream), first-token time, usage
capture, and exactly one span on every exit path (exhausted, break, break + close, with, async
with + break, exception, abandonment)."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import openai
import pytest
from openai import AsyncStream, Stream

import autotrace
from autotrace import bounds, schema
from autotrace.integrations.openai import _stream_choices
from autotrace.integrations.openai._stream import StreamState, tracking
from autotrace.observation import STREAM_CLOSED as INTERRUPTED
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, iso_ns

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "tell me"}]




def test_exhausted_stream_records_output_usage_and_first_token(traced: Traced, client: openai.OpenAI,
                                                               fake: FakeOpenAI) -> None:
    fake.script(reply="one two three four", chunks=20, usage=(9, 4))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert type(stream) is Stream  # the SDK's own object, not a proxy
    chunks = list(stream)
    assert all(chunk.choices for chunk in chunks)  # the usage chunk autotrace asked for stays hidden
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two three four"
    assert fake.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    record = traced.one()
    assert record["output"] == {"role": "assistant", "content": "one two three four"}
    assert record["usage"] == {"input": 9, "output": 4, "total": 13, "input_cached_tokens": 0,
                               "output_reasoning_tokens": 0}
    assert record["cost"]["total"] > 0 and record["metadata"]["finish_reason"] == "stop"
    assert record["start_ns"] <= iso_ns(record["completion_start_time"]) <= record["end_ns"]


def test_caller_that_asked_for_usage_sees_the_usage_chunk(traced: Traced, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert traced.one()["usage"]["total"] == chunks[-1].usage.total_tokens


def test_stream_usage_off_leaves_the_request_as_the_caller_made_it(tmp_path: Any, client: openai.OpenAI,
                                                                    fake: FakeOpenAI) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("openai",),
                      stream_usage=False)
    fake.script(reply="one two", chunks=4, usage=(9, 4))
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert "stream_options" not in fake.requests[-1]["body"]
    assert all(chunk.choices for chunk in chunks)  # the server sent no usage chunk
    record = Traced(tmp_path / "t.db").one()
    assert record["output"] == {"role": "assistant", "content": "one two"}
    assert record["usage"] is None and record["cost"] is None  # nothing to count without the server's usage


def test_break_then_close_ends_once(traced: Traced, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    for _chunk in stream:
        break
    stream.close()
    stream.close()
    record = traced.one()  # the reply was cut before it finished: interrupted
    assert (record["level"], record["status_message"]) == ("WARNING", INTERRUPTED)


def test_a_stream_left_after_its_finish_reason_is_not_interrupted(traced: Traced, client: openai.OpenAI,
                                                                 fake: FakeOpenAI) -> None:
    """Only trailing events (the usage event, ``[DONE]``) were left unread: the reply had finished."""
    fake.script(reply="abc", chunks=3)
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].finish_reason:
            break
    stream.close()
    record = traced.one()
    assert (record["level"], record.get("status_message"), record["output"]["content"]) == ("DEFAULT", None, "abc")


def test_with_block_and_break(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply="abcdefghij", chunks=10)
    with client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream:
        for chunk in stream:
            if chunk.choices[0].delta.content:
                break
    assert traced.one()["output"]["content"] == "a"


def test_async_with_and_break(traced: Traced, aclient: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply="abcdefghij", chunks=10)

    async def consume() -> str:
        stream = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        assert type(stream) is AsyncStream
        async with stream:
            async for chunk in stream:
                if chunk.choices[0].delta.content:
                    return chunk.choices[0].delta.content
        return ""

    assert asyncio.run(consume()) == "a"
    assert traced.one()["output"]["content"] == "a"


def test_async_aclose_ends_the_observation(traced: Traced, aclient: openai.AsyncOpenAI) -> None:
    """``AsyncStream.aclose`` goes through the SDK's own ``close``, where the tracking is."""
    async def consume() -> Any:
        stream = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        first = await anext(stream)
        await stream.aclose()
        assert tracking(stream).done
        return first

    assert asyncio.run(consume()).choices[0].delta.role == "assistant"
    record = traced.one()
    assert (record["level"], record["status_message"]) == ("WARNING", INTERRUPTED)


def test_async_stream_exhausted_and_closed(traced: Traced, aclient: openai.AsyncOpenAI) -> None:
    async def consume() -> list[Any]:
        stream = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        chunks = [c async for c in stream]
        await stream.close()
        return chunks

    chunks = asyncio.run(consume())
    assert all(c.choices for c in chunks)
    record = traced.one()
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
    record = traced.one()
    assert record["level"] == "ERROR" and type(raised.value).__name__ in record["status_message"]


def test_abandoned_stream_ends_on_collection(traced: Traced, client: openai.OpenAI) -> None:
    def start() -> None:
        stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        next(iter(stream))

    start()
    gc.collect()
    assert len(traced.records()) == 1


def test_a_break_ends_the_observation_at_once_without_the_collector(traced: Traced, client: openai.OpenAI,
                                                                    fake: FakeOpenAI) -> None:
    """The SDK's stream is in a reference cycle with its own generator, so only the collector frees
    it; the iteration autotrace hands out is not, and ends the observation when the loop is left."""
    fake.script(reply="abcdefghij", chunks=10)
    gc.collect()
    gc.disable()
    try:
        stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        for chunk in stream:
            if chunk.choices[0].delta.content:
                break
        assert tracking(stream).done
        assert traced.one()["output"]["content"] == "a"
        rest = list(stream)  # going on after the observation ended: still no usage chunk, one record
        assert "".join(c.choices[0].delta.content or "" for c in rest) == "bcdefghij"
        assert len(traced.records()) == 1
    finally:
        gc.enable()


def test_next_until_the_end_records_the_stream_once(traced: Traced, client: openai.OpenAI,
                                                   aclient: openai.AsyncOpenAI) -> None:
    """Chunks pulled one by one (``next`` / ``anext``) are recorded as an iteration's are, and the
    observation ends when the stream does."""
    def pull() -> list[Any]:
        stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        chunks = []
        while True:
            try:
                chunks.append(next(stream))
            except StopIteration:
                assert tracking(stream).done
                return chunks

    async def apull() -> list[Any]:
        stream = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        chunks = []
        while True:
            try:
                chunks.append(await anext(stream))
            except StopAsyncIteration:
                assert tracking(stream).done
                return chunks

    for chunks in (pull(), asyncio.run(apull())):
        assert all(chunk.choices for chunk in chunks)
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: tell me"
    records = traced.records()
    assert [r["output"]["content"] for r in records] == ["echo: tell me"] * 2
    assert all(r["usage"]["total"] > 0 and r["completion_start_time"] for r in records)


def test_a_raw_stream_is_recorded_once_the_caller_parses_it(traced: Traced, client: openai.OpenAI,
                                                            fake: FakeOpenAI) -> None:
    """A raw-response stream goes as the caller made it (no usage is asked for, as the caller may
    read its raw lines, so no chunk of it could be hidden); the stream its ``parse()`` gives is the
    SDK's own, tracked, and the generation ends with it."""
    fake.script(reply="one two", chunks=4, usage=(9, 4))
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert raw.headers["content-type"].startswith("text/event-stream")
    stream = raw.parse()
    assert type(stream) is Stream and tracking(stream) is not None and raw.parse() is stream
    chunks = list(stream)
    assert "stream_options" not in fake.requests[-1]["body"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two"
    record = traced.one()
    assert record["type"] == "generation" and record["output"] == {"role": "assistant", "content": "one two"}
    assert record["metadata"]["finish_reason"] == "stop" and record["usage"] is None
    assert record["start_ns"] <= iso_ns(record["completion_start_time"]) <= record["end_ns"]


def test_a_streaming_response_is_recorded_when_parsed_or_else_when_freed(traced: Traced, client: openai.OpenAI,
                                                                         aclient: openai.AsyncOpenAI,
                                                                         fake: FakeOpenAI) -> None:
    """``with_streaming_response``: a stream parsed by the caller (sync and async), a response
    parsed by the caller, and one whose lines the caller reads itself (ended, without an output,
    when the response is freed)."""
    fake.script(reply="one two", chunks=3)
    with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES,
                                                                stream=True) as response:
        assert "".join(c.choices[0].delta.content or "" for c in response.parse()) == "one two"

    async def parse_async() -> str:
        fake.script(reply="three four", chunks=3)
        async with aclient.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES,
                                                                           stream=True) as response:
            return "".join([c.choices[0].delta.content or "" async for c in await response.parse()])

    assert asyncio.run(parse_async()) == "three four"
    fake.script(reply="five")
    with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES) as response:
        assert response.parse().choices[0].message.content == "five"
    fake.script(reply="six")
    with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES) as response:
        assert b"six" in b"".join(response.iter_bytes())
    del response
    gc.collect()
    outputs = [r["output"] for r in traced.records()]
    assert outputs == [{"role": "assistant", "content": "one two"}, {"role": "assistant", "content": "three four"},
                       {"role": "assistant", "content": "five"}, None]


def test_an_iteration_patched_by_another_library_runs_beneath_autotraces(
        tmp_path: Any, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Stream.__iter__`` is skipped only while it is the SDK's own pass-through; one another
    library patched first is called, and autotrace records what it hands on."""
    original = Stream.__iter__
    seen: list[Any] = []

    def other_library(self: Any) -> Any:
        for chunk in original(self):
            seen.append(chunk)
            yield chunk

    monkeypatch.setattr(Stream, "__iter__", other_library)
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("openai",))
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert chunks and seen == chunks
    record = Traced(tmp_path / "t.db").one()
    assert record["output"]["content"] == "echo: tell me" and record["usage"]["total"] > 0


def test_stream_classes_that_cannot_all_be_patched_leave_every_stream_as_the_sdk_makes_it(
        tmp_path: Any, client: openai.OpenAI, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed SDK (here ``AsyncStream.__anext__`` gone): no stream is tracked, so usage is not
    asked for either; each call still records its generation, ended when the call returns."""
    monkeypatch.delattr(AsyncStream, "__anext__")
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("openai",))
    assert autotrace.stats()["integration_patch_skipped.openai"] == 1
    fake.script(reply="one two", chunks=4, usage=(9, 4))
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert type(stream) is Stream and tracking(stream) is None
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "one two"
    assert "stream_options" not in fake.requests[-1]["body"]
    record = Traced(tmp_path / "t.db").one()
    assert record["name"] == "openai.chat" and record["output"] is None and record["end_ns"] >= record["start_ns"]
    assert autotrace.stats()["openai.stream_untracked"] == 1


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


@pytest.mark.parametrize("pieces", [600, 639, 640])
def test_a_long_stream_is_recorded_as_its_whole_text_cut_at_the_limit(tmp_path: Any, client: openai.OpenAI,
                                                                      fake: FakeOpenAI, pieces: int) -> None:
    """Whatever the number of pieces (639 and 640 end on a join of the held text), the record is
    the whole text cut and marked at the value limit: legacy completions record plain text."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("openai",),
                      max_value_bytes=1024)
    reply = " ".join(f"w{i}" for i in range(pieces))
    fake.script(reply=reply, chunks=pieces)
    text = "".join(c.choices[0].text for c in client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="p", stream=True) if c.choices)
    fake.script(reply=reply, chunks=pieces)
    list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert text == reply
    by_name = {r["name"]: r for r in Traced(tmp_path / "t.db").records()}
    assert by_name["openai.completions"]["output"] == bounds.truncate(reply, 1024)
    assert by_name["openai.chat"]["output"] == bounds.truncate(
        schema.serialize_io({"role": "assistant", "content": reply}), 1024)
    assert autotrace.stats()["attributes_truncated"] >= 2


def test_streamed_tool_calls_are_assembled(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """Each call's name comes first, then its arguments in pieces (seven here), as the API streams them."""
    fake.script(tool_calls=[{"name": "refund", "arguments": '{"order": 7, "reason": "late"}'},
                            {"name": "notify", "arguments": '{"channel": "email"}'}], chunks=7)
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.tool_calls) == 2 * (1 + 7)
    record = traced.one()
    assert record["output"]["tool_calls"] == [
        {"id": "call_0", "type": "function",
         "function": {"name": "refund", "arguments": '{"order": 7, "reason": "late"}'}},
        {"id": "call_1", "type": "function", "function": {"name": "notify", "arguments": '{"channel": "email"}'}},
    ]
    assert record["metadata"]["finish_reason"] == "tool_calls"


def test_long_tool_call_arguments_are_held_only_to_the_value_limit(tmp_path: Any, client: openai.OpenAI,
                                                                   fake: FakeOpenAI) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("openai",),
                      max_value_bytes=1024)
    arguments = json.dumps({"rows": [f"row {i}" for i in range(600)]})
    fake.script(tool_calls=[{"name": "export", "arguments": arguments}], chunks=600)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    received = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""
                       for c in stream if c.choices and c.choices[0].delta.tool_calls)
    assert received == arguments  # the caller gets every piece
    held = tracking(stream).state.tool_calls[0].arguments  # while it ran: cut to the limit, plus one batch
    assert len(held[0]) <= 1024 + bounds.REDACTION_MARGIN + 1 and len(held) < 64 and len("".join(held)) < len(arguments) / 2
    record = Traced(tmp_path / "t.db").one()
    assert isinstance(record["output"], str) and len(record["output"].encode()) <= 1024
    assert '"name": "export", "arguments": "{\\"rows\\": [\\"row 0\\"' in record["output"]
    assert autotrace.stats()["attributes_truncated"] >= 1


def test_tool_calls_past_the_limit_are_dropped_and_counted(traced: Traced, client: openai.OpenAI,
                                                          fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_stream_choices, "_MAX_TOOL_CALLS", 3)
    fake.script(tool_calls=[{"name": f"step{i}", "arguments": "{}"} for i in range(5)], chunks=2)
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.tool_calls) == 5 * 3  # the caller sees all
    record = traced.one()
    assert [call["function"]["name"] for call in record["output"]["tool_calls"]] == ["step0", "step1", "step2"]
    assert autotrace.stats()["openai.stream_tool_call_pieces_dropped"] == 2 * 3  # a name and two pieces each


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
    assert len(tracking(stream).state.chunks) == 0  # everything read, nothing held
    record = traced.one()
    assert record["output"] == {"role": "assistant", "content": LONG_REPLY}
    assert record["usage"]["output"] == 150 and record["metadata"]["finish_reason"] == "stop"
    assert record["start_ns"] <= iso_ns(record["completion_start_time"]) <= record["end_ns"]


def test_long_async_stream_is_recorded_whole(traced: Traced, aclient: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply=LONG_REPLY, chunks=150, usage=(9, 150))

    async def run() -> list[Any]:
        stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        return [chunk async for chunk in stream]

    chunks = asyncio.run(run())
    assert all(chunk.choices for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == LONG_REPLY
    record = traced.one()
    assert record["output"] == {"role": "assistant", "content": LONG_REPLY} and record["usage"]["output"] == 150


def test_a_failing_fold_costs_the_record_its_output_never_the_caller_its_chunks(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fold that fails (a chunk shape autotrace does not know) loses that batch's output in the
    record; the caller still gets every chunk and the observation still ends."""
    def broken(self: Any, chunks: list[Any]) -> None:
        raise RuntimeError("unexpected chunk shape")

    monkeypatch.setattr(StreamState, "_fold", broken)
    fake.script(reply=LONG_REPLY, chunks=150, usage=(9, 150))
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == LONG_REPLY
    record = traced.one()
    assert record["output"] == {"role": "assistant", "content": None}
    assert autotrace.stats()["internal_errors.openai.stream_fold"] >= 1


def test_an_output_longer_than_the_value_limit_is_cut_there_and_marked(tmp_path: Any, client: openai.OpenAI,
                                                                       fake: FakeOpenAI) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("openai",),
                      max_value_bytes=1024)
    reply = " ".join(f"w{i}" for i in range(1500))
    fake.script(reply=reply, chunks=600, usage=(9, 600))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == reply
    held = tracking(stream).state.text  # while it ran: the text cut to the limit, and at most one batch after it
    assert len(held[0]) <= 1024 + bounds.REDACTION_MARGIN + 1 and len(held) < 64 and len("".join(held)) < len(reply) / 2
    record = Traced(tmp_path / "t.db").one()
    assert isinstance(record["output"], str) and len(record["output"].encode()) <= 1024
    assert record["output"].startswith('{"role": "assistant", "content": "w0 w1 w2')
    assert record["usage"]["output"] == 600 and autotrace.stats()["attributes_truncated"] >= 1


def test_a_long_streamed_text_is_redacted_before_it_is_cut(tmp_path: Any, client: openai.OpenAI,
                                                           fake: FakeOpenAI) -> None:
    """A long stream is held past the value limit by the redaction margin, so a secret the cut at
    the limit splits is seen whole by redaction and none of it is exported."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("openai",),
                      max_value_bytes=1024)
    email = "jane.roe.private.person@example-mail.com"
    keep = 1024 - len("…[truncated]".encode())  # the bytes an exported value keeps
    reply = "w" * (keep - 5) + " " + email + " and the rest of the answer" * 20  # the cut falls 4 into it
    fake.script(reply=reply, chunks=600)
    stream = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="p", stream=True)
    assert "".join(c.choices[0].text for c in stream) == reply
    output = Traced(tmp_path / "t.db").one()["output"]
    assert output.endswith("…[truncated]") and len(output.encode()) <= 1024
    assert "jane" not in output and output.startswith("w" * 100)
