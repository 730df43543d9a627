"""OpenAI replies the third review found recorded short: a reasoning model's stream (its first
token is its reasoning), a Responses stream left after its output items were done but before its
final response (the items are the output), and replies that name no model (priced as the model
asked for). Real SDK over HTTP, to the loopback fake or to a loopback server replaying canned events."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler
from typing import Any

import openai
import pytest

from autotrace.integrations.openai import pricing
from autotrace.observation import STREAM_CLOSED
from autotrace.testing._loopback import LoopbackServer
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, iso_ns, sse_data
from tests.openai_payloads import CHUNK, USAGE, response

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "tell me"}]
_RESPONSE = response("gpt-5")
_MESSAGE = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": "hi", "annotations": []}]}


class Canned(LoopbackServer):
    """A loopback server answering each request with the next queued reply: a JSON body, or a
    list of server-sent events, each sent (and flushed) as its own HTTP chunk."""

    def __init__(self) -> None:
        self.replies: deque[Any] = deque()
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        with self.lock:
            reply = self.replies.popleft()
        if isinstance(reply, dict):
            data = json.dumps(reply).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        try:
            for event in reply:
                handler.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True


@pytest.fixture
def canned() -> Any:
    with Canned() as server:
        yield server




def _chunk(delta: dict[str, Any], finish: str | None = None, **fields: Any) -> bytes:
    return sse_data({**CHUNK, **fields, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def _event(name: str, **payload: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, 'sequence_number': 0, **payload})}\n\n".encode()


def _read_slowly(chunks: Any) -> list[int]:
    """Read a stream, noting when each chunk reached the caller, a pause after each."""
    seen = []
    for _ in chunks:
        seen.append(time.time_ns())
        time.sleep(0.02)
    return seen


# -- 1. a reasoning model's first token is its reasoning ------------------------------------------------

@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_a_chat_streams_first_token_is_its_reasoning(traced: Traced, canned: Canned, field: str) -> None:
    """Compatible servers stream a reasoning model's reasoning before its reply (DeepSeek and vLLM
    as ``reasoning_content``, OpenRouter and Ollama as ``reasoning``): output tokens, generated
    first. The time to first token is when the reasoning began, not when the reply did; the
    reasoning is recorded as the parsed message holds it, under the server's name."""
    canned.replies.append([_chunk({"role": "assistant", field: "Let me"}), _chunk({field: " think."}),
                           _chunk({"content": "hi"}), _chunk({}, "stop"), sse_data({**CHUNK, "choices": [],
                                                                                     "usage": USAGE}),
                           b"data: [DONE]\n\n"])
    client = openai.OpenAI(base_url=canned.base_url, api_key="sk-test", max_retries=0)
    seen = _read_slowly(client.chat.completions.create(model="deepseek-reasoner", messages=MESSAGES, stream=True))
    assert len(seen) == 4  # the usage chunk autotrace asked for stays hidden
    record = traced.one()
    assert record["start_ns"] <= iso_ns(record["completion_start_time"]) <= seen[0]
    assert record["output"] == {"role": "assistant", "content": "hi", field: "Let me think."}
    assert record["usage"] == {"input": 9, "output": 4, "total": 13}


def test_an_async_chat_streams_first_token_is_its_reasoning(traced: Traced, canned: Canned) -> None:
    canned.replies.append([_chunk({"role": "assistant", "content": None, "reasoning_content": "Hmm"}),
                           _chunk({"content": "hi"}), _chunk({}, "stop"), b"data: [DONE]\n\n"])

    async def read() -> list[int]:
        client = openai.AsyncOpenAI(base_url=canned.base_url, api_key="sk-test", max_retries=0)
        seen = []
        async for _ in await client.chat.completions.create(model="deepseek-reasoner", messages=MESSAGES,
                                                                  stream=True):
            seen.append(time.time_ns())
            await asyncio.sleep(0.02)
        return seen

    seen = asyncio.run(read())
    record = traced.one()
    assert record["start_ns"] <= iso_ns(record["completion_start_time"]) <= seen[0]
    assert record["output"] == {"role": "assistant", "content": "hi", "reasoning_content": "Hmm"}


def test_a_streamed_reasoning_is_recorded_as_the_same_reply_parsed(traced: Traced, canned: Canned) -> None:
    """The same reply, parsed and streamed (two choices), records the same messages."""
    messages = [{"role": "assistant", "content": "hi", "reasoning_content": "Let me think."},
                {"role": "assistant", "content": "yo", "reasoning_content": "Quick."}]
    canned.replies.append({"id": "c", "object": "chat.completion", "created": 1, "model": "deepseek-reasoner",
                           "choices": [{"index": i, "message": m, "finish_reason": "stop"}
                                       for i, m in enumerate(messages)]})

    def piece(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse_data({**CHUNK, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]})

    canned.replies.append([piece(0, {"role": "assistant", "reasoning_content": "Let me"}),
                           piece(1, {"role": "assistant", "reasoning_content": "Quick."}),
                           piece(0, {"reasoning_content": " think."}), piece(1, {"content": "yo"}),
                           piece(0, {"content": "hi"}), piece(0, {}, "stop"), piece(1, {}, "stop"),
                           b"data: [DONE]\n\n"])
    client = openai.OpenAI(base_url=canned.base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="deepseek-reasoner", messages=MESSAGES, n=2)
    list(client.chat.completions.create(model="deepseek-reasoner", messages=MESSAGES, n=2, stream=True))
    parsed, streamed = traced.records()
    assert parsed["output"] == streamed["output"] == messages


@pytest.mark.parametrize("kind", ["response.reasoning_summary_text.delta", "response.reasoning_text.delta"])
def test_a_responses_streams_first_token_is_its_reasoning(traced: Traced, canned: Canned, kind: str) -> None:
    """A reasoning model's Responses stream gives its reasoning (a summary of it, or its text)
    before the reply's first text: the first token."""
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    final = {**_RESPONSE, "status": "completed", "output": [reasoning, _MESSAGE],
             "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}}
    piece = ({"summary_index": 0} if "summary" in kind else {"content_index": 0})
    canned.replies.append([
        _event("response.created", response=_RESPONSE),
        _event("response.output_item.added", output_index=0, item=reasoning),
        _event(kind, item_id="rs_1", output_index=0, delta="Weighing it.", **piece),
        _event("response.output_item.done", output_index=0, item=reasoning),
        _event("response.output_item.added", output_index=1, item={**_MESSAGE, "status": "in_progress",
                                                                    "content": []}),
        _event("response.output_text.delta", item_id="msg_1", output_index=1, content_index=0, delta="hi",
               logprobs=[]),
        _event("response.output_item.done", output_index=1, item=_MESSAGE),
        _event("response.completed", response=final)])
    client = openai.OpenAI(base_url=canned.base_url, api_key="sk-test", max_retries=0)
    seen = _read_slowly(client.responses.create(model="gpt-5", input="x", stream=True))
    assert len(seen) == 8
    record = traced.one()
    assert record["start_ns"] <= iso_ns(record["completion_start_time"]) <= seen[2]  # the reasoning's event
    assert record["output"] == "hi" and record["level"] == "DEFAULT"


# -- 2. a Responses stream left after its items were done ------------------------------------------------

_CALLS = [{"name": "lookup", "arguments": '{"q": 1}'}, {"name": "notify", "arguments": "{}"}]


def _call(index: int) -> dict[str, Any]:
    return {"arguments": _CALLS[index]["arguments"], "call_id": f"call_{index}", "name": _CALLS[index]["name"],
            "type": "function_call", "id": f"fc_{index}", "status": "completed"}


def _until_done(events: Any, done: int) -> None:
    """Read events until ``done`` output items are done, then leave the loop."""
    for event in events:
        if event.type == "response.output_item.done":
            done -= 1
            if done == 0:
                break


def _assert_left_with(traced: Traced, output: Any) -> None:
    record = traced.one()
    assert record["output"] == output
    assert (record["level"], record["status_message"]) == ("WARNING", STREAM_CLOSED)
    assert record["model"] == "gpt-5" and record["completion_start_time"] is not None


@pytest.mark.parametrize("how", ["break", "close", "with"])
def test_a_responses_stream_left_before_its_final_response_keeps_its_done_calls(
        traced: Traced, fake: FakeOpenAI, client: openai.OpenAI, how: str) -> None:
    """The reader has every function call once their items are done, and may stop there (before
    ``response.completed``): the calls are the output, as a final response's would be."""
    fake.script(tool_calls=_CALLS)
    if how == "with":
        with client.responses.create(model="gpt-5", input="x", stream=True) as stream:
            _until_done(stream, 2)
    else:
        stream = client.responses.create(model="gpt-5", input="x", stream=True)
        _until_done(stream, 2)
        if how == "close":
            stream.close()
    _assert_left_with(traced, [_call(0), _call(1)])


def test_a_responses_stream_helper_left_early_keeps_the_message_and_the_call_done(
        traced: Traced, fake: FakeOpenAI, client: openai.OpenAI) -> None:
    """Output items done before the reader stops are kept as items, a message as the API gives it."""
    fake.script(reply="Looking it up.", tool_calls=_CALLS[:1] + _CALLS[1:])
    with client.responses.stream(model="gpt-5", input="x") as stream:
        _until_done(stream, 2)
    message = {"type": "message", "id": "msg_fake", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "Looking it up.", "annotations": []}]}
    _assert_left_with(traced, [message, _call(0)])


def test_an_async_responses_stream_left_early_keeps_its_done_calls(traced: Traced, fake: FakeOpenAI,
                                                                    aclient: openai.AsyncOpenAI) -> None:
    fake.script(tool_calls=_CALLS)

    async def read() -> None:
        async with await aclient.responses.create(model="gpt-5", input="x", stream=True) as stream:
            async for event in stream:
                if event.type == "response.output_item.done" and event.output_index == 1:
                    break

    asyncio.run(read())
    _assert_left_with(traced, [_call(0), _call(1)])


def test_a_responses_stream_left_mid_reply_after_a_done_call_keeps_both(traced: Traced, canned: Canned) -> None:
    """A call done, then a message still streaming when the reader stops: the call, and the
    message as far as it came (``in_progress``)."""
    canned.replies.append([
        _event("response.created", response=_RESPONSE),
        _event("response.output_item.added", output_index=0, item={**_call(0), "status": "in_progress"}),
        _event("response.output_item.done", output_index=0, item=_call(0)),
        _event("response.output_item.added", output_index=1, item={**_MESSAGE, "status": "in_progress",
                                                                    "content": []}),
        _event("response.output_text.delta", item_id="msg_1", output_index=1, content_index=0, delta="Calling",
               logprobs=[]),
        _event("response.output_text.delta", item_id="msg_1", output_index=1, content_index=0, delta=" now",
               logprobs=[])])
    client = openai.OpenAI(base_url=canned.base_url, api_key="sk-test", max_retries=0)
    with client.responses.create(model="gpt-5", input="x", stream=True) as stream:
        for event in stream:
            if event.type == "response.output_text.delta" and event.delta == " now":
                break
    _assert_left_with(traced, [_call(0), {"type": "message", "role": "assistant", "status": "in_progress",
                                          "content": [{"type": "output_text", "text": "Calling now"}]}])


# -- 3. a reply that names no model is priced as the model asked for --------------------------------------

_NO_MODEL_CHUNK = {key: value for key, value in CHUNK.items() if key != "model"}
_RESPONSES_USAGE = {"input_tokens": 9, "output_tokens": 4, "total_tokens": 13}


def _replies_without_model(operation: str, stream: bool) -> Any:
    if operation == "chat" and not stream:
        return {"id": "c", "object": "chat.completion", "created": 1, "usage": USAGE,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
    if operation == "chat":
        chunk = {**_NO_MODEL_CHUNK, "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
        return [sse_data(chunk), sse_data({**_NO_MODEL_CHUNK, "choices": [], "usage": USAGE}), b"data: [DONE]\n\n"]
    response = {key: value for key, value in _RESPONSE.items() if key != "model"}
    final = {**response, "status": "completed", "output": [_MESSAGE], "usage": _RESPONSES_USAGE}
    if not stream:
        return final
    return [_event("response.created", response=response),
            _event("response.output_text.delta", item_id="msg_1", output_index=0, content_index=0, delta="hi",
                   logprobs=[]),
            _event("response.completed", response=final)]


@pytest.mark.parametrize("stream", [False, True], ids=["parsed", "streamed"])
@pytest.mark.parametrize("operation", ["chat", "responses"])
def test_a_reply_naming_no_model_is_priced_as_the_model_asked_for(traced: Traced, canned: Canned, operation: str,
                                                                  stream: bool) -> None:
    """A compatible server's reply may name no model: the model the caller asked for is the one
    that answered, and prices it."""
    canned.replies.append(_replies_without_model(operation, stream))
    client = openai.OpenAI(base_url=canned.base_url, api_key="sk-test", max_retries=0)
    if operation == "chat":
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=stream)
    else:
        reply = client.responses.create(model="gpt-4o-mini", input="x", stream=stream)
    if stream:
        list(reply)
    record = traced.one()
    assert record["model"] == "gpt-4o-mini"
    assert record["usage"] == {"input": 9, "output": 4, "total": 13}
    expected = pricing.cost("gpt-4o-mini", {"input": 9, "output": 4})
    assert expected is not None and record["cost"] == expected


@pytest.mark.parametrize("stream", [False, True], ids=["parsed", "streamed"])
def test_a_reply_naming_a_model_without_a_price_gets_no_cost(traced: Traced, fake: FakeOpenAI,
                                                              client: openai.OpenAI, stream: bool) -> None:
    """A reply that names its model is priced as that model only: one without a price (a
    fine-tune, a compatible server's own) gets no cost, whatever the caller asked for."""
    fake.script(model="ft:gpt-4o-mini:acme::abc", usage=(9, 4))
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=stream)
    if stream:
        list(reply)
    record = traced.one()
    assert record["model"] == "ft:gpt-4o-mini:acme::abc" and record["usage"]["total"] == 13
    assert record["cost"] is None
