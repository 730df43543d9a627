"""OpenAI calls off the common path: options in ``extra_body``, several choices, a finish reason
before trailing annotations, Responses streams that fail or stop early, the SDK's stream helpers,
responses read by the caller (``with_streaming_response``), structured outputs replayed, token-id
embeddings and older dated snapshots. The caller gets what the SDK alone would give; the record
says what happened."""

from __future__ import annotations

import gc
import json
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import openai
import pydantic
import pytest

from autotrace import interception
from autotrace.integrations.openai import pricing
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, sse_data
from tests.openai_payloads import CHUNK, USAGE, response

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "tell me"}]
_RESPONSE = response("gpt-4.1")


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **payload})}\n\n".encode()


def _choice(index: int, content: str | None = None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    return sse_data({**CHUNK, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]})


def _client(reply: Callable[[dict[str, Any]], Any], requests: list[dict[str, Any]] | None = None) -> openai.OpenAI:
    """A client whose requests reach ``reply`` (the request body -> an iterable of response bytes)."""
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        if requests is not None:
            requests.append(body)
        return httpx2.Response(200, content=reply(body), headers={"content-type": "text/event-stream"})

    return openai.OpenAI(api_key="sk-test", base_url="http://llm.test/v1", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


def _chat_stream(body: dict[str, Any]) -> Iterator[bytes]:
    """Two words, then the usage event when the request asked for it."""
    yield _choice(0, "hi ")
    yield _choice(0, "there", "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        yield sse_data({**CHUNK, "choices": [], "usage": USAGE})
    yield b"data: [DONE]\n\n"



def test_stream_options_in_extra_body_are_the_callers(traced: Traced) -> None:
    """Usage asked for in ``extra_body`` is the caller's: its chunk reaches the caller, and
    ``extra_body``'s parameters are recorded as sent."""
    requests: list[dict[str, Any]] = []
    client = _client(_chat_stream, requests)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                 extra_body={"stream_options": {"include_usage": True},
                                                             "temperature": 0.3}))
    assert requests[-1]["stream_options"] == {"include_usage": True}
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 13
    record = traced.one()
    assert record["usage"] == {"input": 9, "output": 4, "total": 13}
    assert record["model_parameters"] == {"stream": True, "temperature": 0.3}


@pytest.mark.parametrize(("given", "sent", "usage_recorded"), [
    ({"include_obfuscation": False}, {"include_obfuscation": False, "include_usage": True}, True),
    ({"include_usage": False}, {"include_usage": False}, False),
    (None, {"include_usage": True}, True),
    # vLLM puts usage on every chunk once usage is asked with this: the caller would see it
    ({"continuous_usage_stats": True}, {"continuous_usage_stats": True}, False),
])
def test_usage_is_added_to_the_callers_other_stream_options(traced: Traced, given: Any, sent: dict[str, Any],
                                                            usage_recorded: bool) -> None:
    """Usage is asked for unless the caller decided on it (``include_usage`` given either way);
    the chunk autotrace asked for never reaches the caller."""
    requests: list[dict[str, Any]] = []
    client = _client(_chat_stream, requests)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                 stream_options=given))
    assert requests[-1]["stream_options"] == sent
    assert [c.choices[0].delta.content for c in chunks] == ["hi ", "there"]
    record = traced.one()
    assert record["usage"] == ({"input": 9, "output": 4, "total": 13} if usage_recorded else None)
    assert (record["cost"] is not None) is usage_recorded


def test_a_stream_of_several_choices_records_each_by_its_index(traced: Traced) -> None:
    def reply(body: dict[str, Any]) -> list[bytes]:
        return [_choice(0, "Hello"), _choice(1, "Bonjour"), _choice(0, " world"), _choice(1, " monde"),
                _choice(0, None, "stop"), _choice(1, None, "length"),
                sse_data({**CHUNK, "choices": [], "usage": USAGE}), b"data: [DONE]\n\n"]

    chunks = list(_client(reply).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, n=2))
    assert len(chunks) == 6
    record = traced.one()
    assert record["output"] == [{"role": "assistant", "content": "Hello world"},
                                {"role": "assistant", "content": "Bonjour monde"}]
    assert record["metadata"]["finish_reason"] == "stop"  # the first choice's, as for a response of several
    assert record["usage"]["total"] == 13


def test_the_finish_reason_survives_annotation_chunks_after_it(traced: Traced) -> None:
    """Azure's content filter can send chunks with a choice but no text and no finish reason after
    the finish chunk."""
    annotation = sse_data({**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": None,
                                               "content_filter_results": {"hate": {"filtered": False}}}]})

    def reply(body: dict[str, Any]) -> list[bytes]:
        return [_choice(0, "Hello"), _choice(0, " there"), _choice(0, None, "stop"), annotation,
                b"data: [DONE]\n\n"]

    chunks = list(_client(reply).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, "stop", None]
    record = traced.one()
    assert record["metadata"]["finish_reason"] == "stop"
    assert record["output"] == {"role": "assistant", "content": "Hello there"}


def _responses_stream(*last: bytes) -> Callable[[dict[str, Any]], list[bytes]]:
    def reply(body: dict[str, Any]) -> list[bytes]:
        return [_event("response.created", {"sequence_number": 0, "response": _RESPONSE}),
                _event("response.output_text.delta", {"sequence_number": 1, "item_id": "m", "output_index": 0,
                                                      "content_index": 0, "delta": "partial ", "logprobs": []}),
                _event("response.output_text.delta", {"sequence_number": 2, "item_id": "m", "output_index": 0,
                                                      "content_index": 0, "delta": "text", "logprobs": []}),
                *last]
    return reply


@pytest.mark.parametrize(("last", "message"), [
    (_event("response.failed", {"sequence_number": 3, "response": {
        **_RESPONSE, "status": "failed", "error": {"code": "server_error", "message": "The model crashed"}}}),
     "The model crashed"),
    (_event("error", {"sequence_number": 3, "code": "server_error", "message": "boom", "param": None}), "boom"),
])
def test_a_responses_stream_that_fails_is_recorded_as_an_error(traced: Traced, last: bytes, message: str) -> None:
    """The SDK hands a failed response, or an error event, to the caller as an event; the
    generation is an error with what was streamed before it."""
    client = _client(_responses_stream(last))
    events = [event.type for event in client.responses.create(model="gpt-4.1", input="q", stream=True)]
    assert events[-1] in ("response.failed", "error") and len(events) == 4
    record = traced.one()
    assert (record["level"], record["status_message"]) == ("ERROR", message)
    assert record["output"] == "partial text" and record["model"] == "gpt-4.1"


def test_a_responses_stream_left_early_records_its_text_so_far(traced: Traced) -> None:
    completed = _event("response.completed", {"sequence_number": 3, "response": {**_RESPONSE, "status": "completed"}})
    stream = _client(_responses_stream(completed)).responses.create(model="gpt-4.1", input="q", stream=True)
    for event in stream:
        if event.type == "response.output_text.delta" and event.delta == "text":
            break
    stream.close()
    record = traced.one()
    assert record["output"] == "partial text" and record["model"] == "gpt-4.1"
    assert record["level"] == "WARNING" and record["completion_start_time"]  # cut before the response completed


def test_a_responses_function_call_stream_has_a_first_token_time(traced: Traced) -> None:
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "lookup", "arguments": '{"id": 7}',
            "status": "completed"}

    def reply(body: dict[str, Any]) -> list[bytes]:
        return [_event("response.created", {"sequence_number": 0, "response": _RESPONSE}),
                _event("response.function_call_arguments.delta", {"sequence_number": 1, "item_id": "fc_1",
                                                                  "output_index": 0, "delta": '{"id": 7}'}),
                _event("response.completed", {"sequence_number": 2, "response": {
                    **_RESPONSE, "status": "completed", "output": [call]}})]

    list(_client(reply).responses.create(model="gpt-4.1", input="q", stream=True))
    record = traced.one()
    assert record["completion_start_time"] and record["output"][0]["name"] == "lookup"


def test_leaving_the_sdks_stream_helper_early_ends_the_generation_at_once(traced: Traced, client: openai.OpenAI,
                                                                          fake: FakeOpenAI) -> None:
    """``client.chat.completions.stream(...)`` closes the response, not the stream it reads."""
    fake.script(reply="a b c d e f", chunks=6)
    gc.disable()  # the generation must end with the block, not when the collector frees the helper
    try:
        with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
            for event in stream:
                if event.type == "content.delta" and event.delta:
                    break
        left = time.time_ns()
        record = traced.one()
    finally:
        gc.enable()
    assert record["end_ns"] <= left and record["output"] == {"role": "assistant", "content": "a"}


def test_with_streaming_response_leaves_the_body_to_the_caller(traced: Traced) -> None:
    """A response the caller reads itself is not read ahead of it (the body arrives in two parts
    here, the second after the caller has started reading)."""
    caller_reading = threading.Event()

    def reply(body: dict[str, Any]) -> Iterator[bytes]:
        yield b'{"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini", '
        assert caller_reading.wait(5)
        yield (b'"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, '
               b'"finish_reason": "stop"}]}')

    with _client(reply).chat.completions.with_streaming_response.create(model="gpt-4o-mini",
                                                                        messages=MESSAGES) as response:
        caller_reading.set()
        assert response.parse().choices[0].message.content == "hi"
    record = traced.one()  # recorded when the caller parsed it
    assert record["type"] == "generation" and record["output"] == {"role": "assistant", "content": "hi"}


class _City(pydantic.BaseModel):
    city: str


class _Frozen:
    def intercept(self, obs: Any) -> interception.Intercept:
        return interception.Intercept(frozen=True, record={
            "output": {"role": "assistant", "content": '{"city": "Paris"}'}, "model": "gpt-4o-mini",
            "usage": {"input": 1, "output": 1, "total": 2}})


def test_a_frozen_replay_of_a_structured_output_call_is_parsed_for_the_caller(traced: Traced,
                                                                                client: openai.OpenAI) -> None:
    token = interception.activate(_Frozen())
    try:
        frozen = client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=_City)
    finally:
        interception.deactivate(token)
    assert frozen.choices[0].message.parsed == _City(city="Paris")
    assert traced.one()["metadata"]["replay"] == "frozen"


def test_structured_output_is_recorded_without_serializer_warnings(traced: Traced, client: openai.OpenAI,
                                                                   fake: FakeOpenAI) -> None:
    """The parsed message's ``parsed`` field is typed generically: dumping it must not warn (the
    warning would reach the application's stderr, or, as an error, cost the record its output)."""
    fake.script(reply='{"city": "Paris"}')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=_City)
    assert traced.one()["output"]["parsed"] == {"city": "Paris"}


def test_an_embedding_of_token_ids_is_one_input(traced: Traced, client: openai.OpenAI) -> None:
    client.embeddings.create(model="text-embedding-3-small", input=[1234, 567, 89])
    client.embeddings.create(model="text-embedding-3-small", input=[[1234, 567], [89]])
    first, second = traced.records()
    assert first["metadata"]["input_count"] == 1 and second["metadata"]["input_count"] == 2


@pytest.mark.parametrize(("model", "expected"), [
    ("gpt-4o-2024-05-13", (5.0, 15.0)),
    ("gpt-4o-2024-08-06", (2.5, 10.0)),
    ("gpt-3.5-turbo-1106", (1.0, 2.0)),
    ("gpt-3.5-turbo-0613", (1.5, 2.0)),
    ("gpt-3.5-turbo-0125", (0.5, 1.5)),
])
def test_older_snapshots_priced_apart_from_their_base_model(model: str, expected: tuple[float, float]) -> None:
    cost = pricing.cost(model, {"input": 1_000_000, "output": 1_000_000})
    assert cost is not None and (cost["input"], cost["output"]) == pytest.approx(expected)
