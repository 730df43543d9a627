"""The usage event autotrace asks for is cut from a stream's bytes before the SDK decodes it, however
the reads split the stream; what the cutter cannot take falls back to the SDK decoding it and the
stream tracking hiding it. The caller's chunks and the recorded generation are the same either way. A cut
event's text is parsed on the pipeline thread."""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import types
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx2
import openai
import pytest

import autotrace
from autotrace.integrations.openai._stream import tracking
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "tell me"}]
_BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
USAGE = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13,
         "prompt_tokens_details": {"cached_tokens": 2}}


def _event(payload: dict[str, Any], compact: bool) -> bytes:
    text = json.dumps(payload, separators=(",", ":")) if compact else json.dumps(payload)
    return b"data: " + text.encode() + b"\n\n"


def _content(text: str, finish: str | None = None) -> dict[str, Any]:
    return {**_BASE, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}], "usage": None}


def _body(compact: bool = True) -> tuple[bytes, bytes]:
    """(the content events, the usage-only event followed by [DONE])."""
    content = b"".join(_event(_content(word), compact) for word in ("one ", "two ", "three"))
    content += _event(_content("", "stop"), compact)
    return content, _event({**_BASE, "choices": [], "usage": USAGE}, compact) + b"data: [DONE]\n\n"


def _client(pieces: Sequence[bytes], requests: list[dict[str, Any]]) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(json.loads(request.content))
        return httpx2.Response(200, content=iter(pieces), headers={"content-type": "text/event-stream"})

    return openai.OpenAI(api_key="sk-test", base_url="http://llm.test/v1", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


def _cut_usage(stream: Any) -> Any:
    """The usage in the event cut from ``stream``'s bytes, if one was."""
    event = tracking(stream).state.cutter.event
    return None if event is None else json.loads(event)["usage"]


def _stream(client: openai.OpenAI) -> tuple[Any, list[Any]]:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    return stream, list(stream)


def _assert_recorded(traced: Traced, chunks: list[Any]) -> None:
    assert [c.choices[0].delta.content for c in chunks] == ["one ", "two ", "three", ""]
    (record,) = traced.records()
    assert record["output"] == {"role": "assistant", "content": "one two three"}
    assert record["usage"] == {"input": 9, "output": 4, "total": 13, "input_cached_tokens": 2}
    assert record["cost"]["total"] > 0 and record["metadata"]["finish_reason"] == "stop"


@pytest.mark.parametrize("compact", [True, False], ids=["compact-json", "spaced-json"])
def test_usage_event_in_one_read_is_cut_before_the_sdk_decodes_it(traced: Traced, compact: bool) -> None:
    content, usage_and_done = _body(compact)
    requests: list[dict[str, Any]] = []
    stream, chunks = _stream(_client([content + usage_and_done], requests))
    assert requests[0]["stream_options"] == {"include_usage": True}
    assert _cut_usage(stream) == USAGE  # taken from the bytes: the SDK never saw it
    _assert_recorded(traced, chunks)


def test_usage_event_in_a_read_of_its_own_is_cut(traced: Traced) -> None:
    content, usage_and_done = _body()
    usage_event, done = usage_and_done.split(b"data: [DONE]")
    stream, chunks = _stream(_client([content, usage_event, b"data: [DONE]" + done], []))
    assert _cut_usage(stream) == USAGE
    _assert_recorded(traced, chunks)


def test_a_cut_stream_leaves_no_reference_cycle(traced: Traced) -> None:
    """The byte reads are watched without a reference cycle, so a finished stream's response is
    freed at once, not left for the garbage collector."""
    content, usage_and_done = _body()
    client = _client([content + usage_and_done], [])
    gc.collect()
    gc.disable()
    try:
        stream, chunks = _stream(client)
        assert _cut_usage(stream) == USAGE
        response = weakref.ref(stream.response)
        del stream
        assert response() is None
    finally:
        gc.enable()
    _assert_recorded(traced, chunks)


@pytest.mark.parametrize("step", [1, 7, 64])
def test_the_usage_event_is_cut_however_the_reads_split_the_stream(traced: Traced, step: int) -> None:
    """Reads end anywhere on a live stream: the cutter hands the decoder whole events, so every
    split gives the same chunks, the same generation, and the event cut."""
    content, usage_and_done = _body()
    body = content + usage_and_done
    for at in range(1, len(body), step):
        stream, chunks = _stream(_client([body[:at], body[at:]], []))
        assert _cut_usage(stream) == USAGE, at
        assert [c.choices[0].delta.content for c in chunks] == ["one ", "two ", "three", ""], at
    stream, chunks = _stream(_client([body[i:i + step] for i in range(0, len(body), step)], []))
    assert _cut_usage(stream) == USAGE
    records = traced.records()
    assert len(records) == len(range(1, len(body), step)) + 1
    assert all(r["usage"] == {"input": 9, "output": 4, "total": 13, "input_cached_tokens": 2} for r in records)
    assert {json.dumps(r["output"]) for r in records} == {json.dumps({"role": "assistant", "content": "one two three"})}


@pytest.mark.parametrize("broken", [False, True], ids=["cutting", "failing-cutter"])
def test_the_cutter_hands_every_byte_on_once(monkeypatch: pytest.MonkeyPatch, broken: bool) -> None:
    """Whatever the split, the decoder gets the stream's bytes in order, each once: without the
    usage event when it is cut, all of them when the cutter fails (a held-back tail included)."""
    from autotrace.integrations.openai import _usage_event

    if broken:
        def failing(event: bytes) -> None:
            raise RuntimeError("cutter bug")

        monkeypatch.setattr(_usage_event, "_usage_only", failing)
    content, usage_and_done = _body()
    body = content + usage_and_done
    expected = body if broken else content + b"data: [DONE]\n\n"
    for at in range(1, len(body)):
        cutter = _usage_event.UsageEventCutter()
        handed = b"".join(_usage_event._cut_reads(iter([body[:at], body[at:]]), cutter))
        assert handed == expected, at


def test_crlf_events_are_left_to_the_sdk_and_the_usage_chunk_hidden(traced: Traced) -> None:
    content, usage_and_done = _body()
    stream, chunks = _stream(_client([(content + usage_and_done).replace(b"\n", b"\r\n")], []))
    assert _cut_usage(stream) is None
    assert all(chunk.choices for chunk in chunks)
    _assert_recorded(traced, chunks)


def test_an_unfinished_event_past_the_bound_is_left_to_the_sdk(traced: Traced) -> None:
    """An event whose end does not come within 64 KiB is not waited for: reads go on to the
    decoder as they come, and the stream tracking hides the usage chunk."""
    content, usage_and_done = _body()
    long_text = "x" * 70_000
    long_event = _event(_content(long_text), True)
    pieces = [content + long_event[:66_000], long_event[66_000:] + usage_and_done]
    stream, chunks = _stream(_client(pieces, []))
    assert _cut_usage(stream) is None
    assert [c.choices[0].delta.content for c in chunks] == ["one ", "two ", "three", "", long_text]
    assert all(chunk.choices for chunk in chunks)
    (record,) = traced.records()
    assert record["usage"] == {"input": 9, "output": 4, "total": 13, "input_cached_tokens": 2}


@pytest.mark.parametrize("usage_event", [
    b'data: {"id":"c","choices":[],"us\\u0061ge":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}\n\n',
    b'data: {"id":"c","choices":[],"usage" : {"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}\n\n',
    b'data: {"id":"c","choices":[],\ndata: "usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}\n\n',
], ids=["escaped-key", "space-before-colon", "two-data-lines"])
def test_a_usage_event_the_cutter_cannot_read_never_reaches_the_caller(traced: Traced, usage_event: bytes) -> None:
    """A usage-only event written in a form the byte rules do not take is decoded by the SDK, and
    the stream tracking hides the chunk."""
    content, _ = _body()
    stream, chunks = _stream(_client([content + usage_event + b"data: [DONE]\n\n"], []))
    assert _cut_usage(stream) is None
    assert [c.choices[0].delta.content for c in chunks] == ["one ", "two ", "three", ""]
    (record,) = traced.records()
    assert record["usage"] == {"input": 9, "output": 4, "total": 13}


def test_usage_on_a_chunk_with_choices_is_never_cut(traced: Traced) -> None:
    """Some compatible servers put usage on the last content chunk: it reaches the caller whole."""
    content = b"".join(_event(_content(word), True) for word in ("one ", "two ", "three"))
    last = {**_content("", "stop"), "usage": USAGE}
    stream, chunks = _stream(_client([content + _event(last, True) + b"data: [DONE]\n\n"], []))
    assert _cut_usage(stream) is None
    assert chunks[-1].usage.total_tokens == 13 and chunks[-1].choices[0].finish_reason == "stop"
    _assert_recorded(traced, chunks)


def test_usage_event_followed_by_another_event_is_left_to_the_sdk(traced: Traced) -> None:
    """Only a read's last event can be the usage event: with one after it, the SDK decodes it and
    the stream tracking hides it."""
    content, usage_and_done = _body()
    usage = usage_and_done.removesuffix(b"data: [DONE]\n\n")
    extra = _event({**_BASE, "choices": [{"index": 0, "delta": {"content": "!"}, "finish_reason": None}]}, True)
    stream, chunks = _stream(_client([content + usage + extra + b"data: [DONE]\n\n"], []))
    assert _cut_usage(stream) is None
    assert [c.choices[0].delta.content for c in chunks] == ["one ", "two ", "three", "", "!"]
    (record,) = traced.records()
    assert record["output"] == {"role": "assistant", "content": "one two three!"}
    assert record["usage"] == {"input": 9, "output": 4, "total": 13, "input_cached_tokens": 2}


def test_async_stream_cuts_the_usage_event(traced: Traced) -> None:
    content, usage_and_done = _body()

    def body() -> Callable[[], AsyncIterator[bytes]]:
        async def pieces() -> AsyncIterator[bytes]:
            yield content
            yield usage_and_done
        return pieces

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body()(), headers={"content-type": "text/event-stream"})

    client = openai.AsyncOpenAI(api_key="sk-test", base_url="http://llm.test/v1", max_retries=0,
                                http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)))

    async def run() -> tuple[Any, list[Any]]:
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        return stream, [chunk async for chunk in stream]

    stream, chunks = asyncio.run(run())
    assert _cut_usage(stream) == USAGE
    _assert_recorded(traced, chunks)


@pytest.mark.parametrize("split", [False, True], ids=["one-read", "held-back-tail"])
def test_a_failing_cutter_leaves_the_stream_to_the_sdk(traced: Traced, monkeypatch: pytest.MonkeyPatch,
                                                       split: bool) -> None:
    """A bug in the cutter hands everything read so far on (a held-back tail included), and the
    stream goes on as without the cutter; each byte once: ``test_the_cutter_hands_every_byte_on_once``."""
    from autotrace.integrations.openai import _usage_event

    def broken(event: bytes) -> None:
        raise RuntimeError("cutter bug")

    monkeypatch.setattr(_usage_event, "_usage_only", broken)
    content, usage_and_done = _body()
    body = content + usage_and_done
    at = body.index(b"data: [DONE]") + 3 if split else len(body)
    stream, chunks = _stream(_client([body[:at], body[at:]], []))
    assert _cut_usage(stream) is None
    assert all(chunk.choices for chunk in chunks)
    _assert_recorded(traced, chunks)


@pytest.mark.parametrize(("event", "taken"), [
    (b'data: {"choices":[],"usage":{"total_tokens":3}}', True),
    (b'data: {"id":"c","choices": [], "usage": {"total_tokens":3},"model":"m"}', True),
    (b'data: {"choices":[{"index":0}],"usage":{"total_tokens":3}}', False),  # not usage-only
    (b'data: {"choices":[],"usage":null}', False),
    (b'data: {"choices":[],"prompt_filter_results":[]}', False),  # Azure's first chunk: no usage
    (b'data: {"choices":[],"usage":{"total_tokens":3},"x":{"choices":[{"index":0}]}}', False),  # two "choices"
    (b'data: {"choices":[],"usage":null,"x":{"usage":{}}}', False),  # two "usage"
    (b'data: {"choices":[],"usage":{"total_tokens":3}} {"a":', False),  # not one object
    (b'data: ["choices":[],"usage":{}]', False),
    (b"data: ", False),
    (b"data: [DONE]", False),
    (b'data: {"choices":[],\n"usage":{}}', False),  # more than one line
    (b'event: x {"choices":[],"usage":{}}', False),
    (b'data: {"choices":[],"usage":{"total_tokens":3},"x":"' + b"y" * 16_384 + b'"}', False),  # over the bound
])
def test_only_a_whole_single_line_usage_only_event_is_taken(event: bytes, taken: bool) -> None:
    from autotrace.integrations.openai._usage_event import _usage_only

    assert _usage_only(event) == (event.removeprefix(b"data: ") if taken else None)


def test_a_cut_event_that_does_not_parse_costs_the_usage_and_nothing_else(traced: Traced) -> None:
    """The cut event is parsed on the pipeline thread: if it is not JSON after all, the generation
    has no usage (counted), and the caller gets the same chunks."""
    content, _ = _body()
    broken = b'data: {"choices":[],"usage":{"prompt_tokens":9,}\n\ndata: [DONE]\n\n'
    stream, chunks = _stream(_client([content + broken], []))
    assert tracking(stream).state.cutter.event is not None
    assert [c.choices[0].delta.content for c in chunks] == ["one ", "two ", "three", ""]
    (record,) = traced.records()
    assert record["output"] == {"role": "assistant", "content": "one two three"}
    assert record["usage"] is None and record["cost"] is None
    assert autotrace.stats()["openai.usage_event_unreadable"] == 1


def test_usage_event_fields_reads_usage_and_prices_the_events_model() -> None:
    from autotrace.integrations.openai._usage_event import usage_event_fields

    fields = usage_event_fields(b'{"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":1000000,'
                                b'"completion_tokens":0,"total_tokens":1000000}}')
    assert fields["usage"] == {"input": 1_000_000, "output": 0, "total": 1_000_000}
    assert fields["cost"]["total"] == pytest.approx(0.15)
    assert usage_event_fields(b'{"choices":[],"usage":{"total_tokens":3}}') == {"usage": {"total": 3}, "cost": None}
    assert usage_event_fields(b'[1]') == {} and usage_event_fields(b'{"usage":') == {}


def test_the_cut_usage_event_wins_over_running_usage_on_every_chunk(traced: Traced) -> None:
    """Servers that put running totals on every chunk: the final usage event, cut from the bytes,
    is what the generation records, not a chunk's partial count."""
    running = {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
    content = b"".join(_event({**_content(word), "usage": running}, True) for word in ("one ", "two ", "three"))
    content += _event({**_content("", "stop"), "usage": running}, True)
    _, usage_and_done = _body()
    stream, chunks = _stream(_client([content + usage_and_done], []))
    assert _cut_usage(stream) == USAGE
    _assert_recorded(traced, chunks)


def test_a_leading_chunk_without_choices_or_model_is_passed_on_and_not_taken_as_the_model(traced: Traced) -> None:
    """Azure opens a stream with a content-filter chunk: no choices, an empty model. The caller gets
    it; the recorded model (and so the cost) comes from the first chunk that names one."""
    content, usage_and_done = _body()
    filter_chunk = _event({"id": "", "object": "", "created": 0, "model": "", "choices": [],
                           "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}, True)
    _, chunks = _stream(_client([filter_chunk + content + usage_and_done], []))
    assert chunks[0].choices == [] and chunks[0].model == ""
    _assert_recorded(traced, chunks[1:])  # with a cost, which needs the model priced


@pytest.mark.parametrize("status", [200, 500])
def test_the_callers_request_options_keep_their_own_body(traced: Traced, status: int) -> None:
    """The usage request is swapped into the options the SDK is given and put back when the call
    returns or raises: options built and passed by the caller end as they were."""
    from openai._models import FinalRequestOptions
    from openai.types.chat import ChatCompletionChunk

    content, usage_and_done = _body()
    requests: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(json.loads(request.content))
        return httpx2.Response(status, content=content + usage_and_done, headers={"content-type": "text/event-stream"})

    client = openai.OpenAI(api_key="sk-test", base_url="http://llm.test/v1", max_retries=0,
                           http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    options = FinalRequestOptions.construct(method="post", url="/chat/completions", json_data=body)
    if status == 200:
        chunks = list(client.request(ChatCompletionChunk, options, stream=True,
                                     stream_cls=openai.Stream[ChatCompletionChunk]))
        _assert_recorded(traced, chunks)
    else:
        with pytest.raises(openai.InternalServerError):
            client.request(ChatCompletionChunk, options, stream=True, stream_cls=openai.Stream[ChatCompletionChunk])
        (record,) = traced.records()
        assert record["level"] == "ERROR"
    assert requests[0]["stream_options"] == {"include_usage": True}
    assert options.json_data == {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}


def test_the_sdk_decoder_reads_through_the_cutter_once() -> None:
    """``watch`` wraps the stream's SSE decoder (nothing else of the stream or its response
    changes), once, and the wrapper passes anything else through to the decoder."""
    from openai._streaming import SSEDecoder

    from autotrace.integrations.openai._usage_event import UsageEventCutter, watch

    content, usage_and_done = _body()
    stream = types.SimpleNamespace(_decoder=SSEDecoder())
    cutter = UsageEventCutter()
    watch(stream, cutter)
    wrapped = stream._decoder
    watch(stream, UsageEventCutter())
    assert stream._decoder is wrapped  # not wrapped twice
    events = [event.data for event in stream._decoder.iter_bytes(iter([content + usage_and_done]))]
    assert len(events) == 5 and events[-1] == "[DONE]" and all('"choices":[]' not in data for data in events)
    assert json.loads(cutter.event)["usage"] == USAGE
    assert stream._decoder.decode == wrapped._decoder.decode  # the decoder's own API, passed through
    assert copy.copy(wrapped).iter_bytes  # a copy is made without asking the missing decoder


def test_a_stream_whose_decoder_cannot_be_wrapped_is_left_to_the_sdk(traced: Traced,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder without the two byte-reading methods (an SDK that changed) is left as it is:
    nothing is cut, the SDK decodes the usage event and the stream tracking hides it."""
    from openai._streaming import SSEDecoder

    class SyncOnlyDecoder:
        def __init__(self) -> None:
            self.decoder = SSEDecoder()

        def iter_bytes(self, reads: Any) -> Any:
            return self.decoder.iter_bytes(reads)

    monkeypatch.setattr(openai.OpenAI, "_make_sse_decoder", lambda self: SyncOnlyDecoder())
    content, usage_and_done = _body()
    stream, chunks = _stream(_client([content + usage_and_done], []))
    assert type(stream._decoder) is SyncOnlyDecoder and _cut_usage(stream) is None
    assert all(chunk.choices for chunk in chunks)
    _assert_recorded(traced, chunks)


def test_the_cut_usage_event_is_parsed_off_the_callers_thread(traced: Traced,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's thread only keeps the event's bytes: usage and cost are read from them on the
    pipeline thread, when the generation's attributes are built."""
    import threading

    from autotrace.integrations.openai import _stream as stream_module
    from autotrace.integrations.openai import _usage_event

    threads: list[int] = []

    def recording(event: bytes, *rest: Any) -> dict[str, Any]:
        threads.append(threading.get_ident())
        return _usage_event.usage_event_fields(event, *rest)

    monkeypatch.setattr(stream_module, "usage_event_fields", recording)
    content, usage_and_done = _body()
    _, chunks = _stream(_client([content + usage_and_done], []))
    _assert_recorded(traced, chunks)
    assert len(threads) == 1 and threads[0] != threading.get_ident()
