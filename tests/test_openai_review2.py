"""OpenAI replies off the common path, as the newest SDK gives them: a streamed spoken reply's
last update (its expiry only, after the finish reason), a streamed call of the deprecated
``functions``, embeddings the caller asked for as base64, chat's custom tools, and Responses
streams whose first output is a custom tool's input. The caller gets what the SDK alone would
give; the record says what happened."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx2
import openai
import pytest

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, sse_data
from tests.openai_payloads import CHUNK, USAGE, response

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "tell me"}]
_RESPONSE = response("gpt-5")


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return sse_data({**CHUNK, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def _event(name: str, **payload: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, 'sequence_number': 0, **payload})}\n\n".encode()


def _client(reply: Callable[[dict[str, Any]], Iterable[bytes]]) -> openai.OpenAI:
    """A client whose requests reach ``reply`` (the request body -> the response's events)."""
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=b"".join(reply(json.loads(request.content))),
                               headers={"content-type": "text/event-stream"})

    return openai.OpenAI(api_key="sk-test", base_url="http://llm.test/v1", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))



def test_a_streamed_spoken_reply_keeps_its_finish_reason_past_its_last_audio_update(traced: Traced) -> None:
    """The API ends a spoken reply with an update holding only the audio's expiry, after the
    finish reason: the reply finished, its expiry recorded as a parsed message holds it."""
    def reply(body: dict[str, Any]) -> list[bytes]:
        return [_chunk({"role": "assistant", "audio": {"id": "audio_1", "data": "UklG", "transcript": "it is"}}),
                _chunk({"audio": {"data": "RiQA", "transcript": " a cat"}}),
                _chunk({}, "stop"),
                _chunk({"audio": {"expires_at": 1700000000}}),
                sse_data({**CHUNK, "choices": [], "usage": USAGE}), b"data: [DONE]\n\n"]

    chunks = list(_client(reply).chat.completions.create(model="gpt-4o-audio-preview", messages=MESSAGES,
                                                         stream=True, modalities=["text", "audio"]))
    assert len(chunks) == 4 and chunks[-1].choices[0].delta.audio.expires_at == 1700000000
    record = traced.one()
    assert record["output"] == {"role": "assistant", "content": None,
                                "audio": {"id": "audio_1", "transcript": "it is a cat", "data": "<base64, 8 chars>",
                                          "expires_at": 1700000000}}
    assert record["metadata"]["finish_reason"] == "stop"
    assert record["level"] == "DEFAULT" and record["usage"] == {"input": 9, "output": 4, "total": 13}


def test_a_spoken_reply_left_after_its_finish_reason_is_not_interrupted(traced: Traced) -> None:
    def reply(body: dict[str, Any]) -> list[bytes]:
        return [_chunk({"role": "assistant", "audio": {"id": "audio_1", "data": "UklG", "transcript": "hi"}}),
                _chunk({}, "stop"), _chunk({"audio": {"expires_at": 1700000000}}), b"data: [DONE]\n\n"]

    with _client(reply).chat.completions.create(model="gpt-4o-audio-preview", messages=MESSAGES, stream=True,
                                                modalities=["text", "audio"]) as stream:
        for chunk in stream:
            if chunk.choices[0].finish_reason:
                break
    record = traced.one()
    assert (record["level"], record["status_message"]) == ("DEFAULT", None)
    assert record["metadata"]["finish_reason"] == "stop"


def test_a_streamed_call_of_the_deprecated_functions_is_the_output(traced: Traced) -> None:
    """``functions=`` (chat's tools before ``tools``) streams ``delta.function_call``: the call is
    the output, as a parsed message holds it, and its first piece the first token."""
    def reply(body: dict[str, Any]) -> list[bytes]:
        return [_chunk({"role": "assistant", "function_call": {"name": "lookup", "arguments": ""}}),
                _chunk({"function_call": {"arguments": '{"q":'}}),
                _chunk({"function_call": {"arguments": "1}"}}),
                _chunk({}, "function_call"),
                sse_data({**CHUNK, "choices": [], "usage": USAGE}), b"data: [DONE]\n\n"]

    chunks = list(_client(reply).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, function_call="auto",
        functions=[{"name": "lookup", "parameters": {"type": "object"}}]))
    assert [c.choices[0].delta.function_call.arguments for c in chunks[:3]] == ["", '{"q":', "1}"]
    record = traced.one()
    assert record["output"] == {"role": "assistant", "content": None,
                                "function_call": {"name": "lookup", "arguments": '{"q":1}'}}
    assert record["metadata"]["finish_reason"] == "function_call"
    assert record["completion_start_time"] is not None
    assert record["model_parameters"] == {"stream": True, "function_call": "auto", "tools": ["lookup"]}


def test_a_stream_of_several_choices_records_each_deprecated_function_call(traced: Traced) -> None:
    def choice(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse_data({**CHUNK, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]})

    def reply(body: dict[str, Any]) -> list[bytes]:
        return [choice(0, {"function_call": {"name": "a", "arguments": "{}"}}), choice(1, {"content": "no call"}),
                choice(0, {}, "function_call"), choice(1, {}, "stop"), b"data: [DONE]\n\n"]

    list(_client(reply).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, n=2,
                                                functions=[{"name": "a", "parameters": {}}]))
    assert traced.one()["output"] == [
        {"role": "assistant", "content": None, "function_call": {"name": "a", "arguments": "{}"}},
        {"role": "assistant", "content": "no call"}]


@pytest.mark.parametrize("dimensions", [8, 3, 1])
def test_embeddings_asked_for_as_base64_record_their_dimensions(traced: Traced, client: openai.OpenAI,
                                                                dimensions: int) -> None:
    """The caller gets base64 strings (four bytes per float): their dimensions are recorded as a
    list's are."""
    reply = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], encoding_format="base64",
                                     dimensions=dimensions)
    assert isinstance(reply.data[0].embedding, str)
    record = traced.one()
    assert {k: v for k, v in record["metadata"].items() if k != "base_url"} == {
        "provider": "127.0.0.1", "operation": "embeddings", "input_count": 2, "dimensions": dimensions}
    assert record["model_parameters"] == {"dimensions": dimensions, "encoding_format": "base64"}


def test_a_chat_custom_tool_is_named_as_a_function_is(traced: Traced, fake: FakeOpenAI,
                                                      client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-5", messages=MESSAGES, tools=[
        {"type": "custom", "custom": {"name": "run_sql", "format": {"type": "text"}}},
        {"type": "function", "function": {"name": "lookup", "parameters": {}}}])
    assert traced.one()["model_parameters"] == {"tools": ["run_sql", "lookup"]}


def test_a_responses_custom_tool_call_stream_has_a_first_token_time(traced: Traced) -> None:
    """A custom tool's input streams as ``response.custom_tool_call_input.delta``: the model's
    first output, as a function call's arguments are."""
    call = {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_1", "name": "run_sql",
            "input": "select 1", "status": "completed"}
    final = {**_RESPONSE, "status": "completed", "output": [call],
             "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
                       "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}}

    def reply(body: dict[str, Any]) -> list[bytes]:
        return [_event("response.created", response=_RESPONSE),
                _event("response.output_item.added", output_index=0, item={**call, "input": "", "status": "in_progress"}),
                _event("response.custom_tool_call_input.delta", item_id="ctc_1", output_index=0, delta="select "),
                _event("response.custom_tool_call_input.delta", item_id="ctc_1", output_index=0, delta="1"),
                _event("response.output_item.done", output_index=0, item=call),
                _event("response.completed", response=final)]

    events = list(_client(reply).responses.create(model="gpt-5", input="x", stream=True,
                                                  tools=[{"type": "custom", "name": "run_sql"}]))
    assert [e.type for e in events][-1] == "response.completed"
    record = traced.one()
    assert record["completion_start_time"] is not None
    assert record["output"] == [call]
    assert record["model_parameters"] == {"stream": True, "tools": ["run_sql"]}
