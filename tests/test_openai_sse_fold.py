"""Reading a stream's output from its SSE bytes (``_sse_fold``): the same fields however the
bytes are split and whatever the line endings; what is not JSON is skipped and counted."""

from __future__ import annotations

import json
from typing import Any

import pytest

import autotrace
from autotrace.integrations.openai._sse_fold import EventFold, stream_fields

_BASE = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {**_BASE, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


EVENTS = [
    {**_BASE, "model": "", "choices": [], "prompt_filter_results": []},  # Azure's first chunk: no model
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Refund "}),
    _chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                            "function": {"name": "refund", "arguments": '{"or'}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'der": 7}'}}]}),
    _chunk({"content": "started."}, finish="tool_calls"),
    {**_BASE, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}},
]
EXPECTED = {
    "response_model": "gpt-4o-mini", "finish_reason": "tool_calls",
    "usage": {"input": 9, "output": 4, "total": 13},
    "output": {"role": "assistant", "content": "Refund started.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "refund", "arguments": '{"order": 7}'}}]},
}
BODY = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in EVENTS) + b"data: [DONE]\n\n"


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_the_same_fields_at_every_split_and_line_ending(ending: bytes) -> None:
    body = BODY.replace(b"\n", ending)
    for at in range(len(body) + 1):
        fold = EventFold(text_budget=1000)
        fold.feed(body[:at])
        fields = stream_fields("chat", fold, body[at:], 1000)
        assert {k: fields[k] for k in EXPECTED} == EXPECTED, at
        assert fields["cost"]["total"] > 0


def test_multi_line_data_comments_and_event_names_are_read_as_sse_says() -> None:
    body = (b": a comment\n"
            b"event: message\n"
            b'data: {"model": "m", "choices": [{"index": 0,\n'
            b'data: "delta": {"content": "hi"}, "finish_reason": "stop"}]}\n\n'
            b"data:[DONE]\n\n")
    fields = stream_fields("chat", None, body, 1000)
    assert fields["output"] == {"role": "assistant", "content": "hi"} and fields["finish_reason"] == "stop"


def test_an_event_that_is_not_json_is_skipped_and_counted() -> None:
    body = b'data: {"choices": [{"delta": {"content": "a"}}]}\n\ndata: {not json\n\n' \
           b'data: {"choices": [{"delta": {"content": "b"}}]}\n\n'
    assert stream_fields("chat", None, body, 1000)["output"]["content"] == "ab"
    assert autotrace.stats()["openai.stream_event_unreadable"] == 1


def test_legacy_completions_and_responses_streams() -> None:
    completion = b'data: {"model": "gpt-3.5-turbo-instruct", "choices": [{"text": "echo", "index": 0}]}\n\n' \
                 b'data: {"model": "gpt-3.5-turbo-instruct", "choices": [{"text": ": p", "finish_reason": "stop"}]}\n\n'
    fields = stream_fields("text_completion", None, completion, 1000)
    assert fields["output"] == "echo: p" and fields["finish_reason"] == "stop"
    response = {"model": "gpt-4.1", "status": "completed", "usage": {"input_tokens": 5, "output_tokens": 2,
                                                                      "total_tokens": 7},
                "output": [{"type": "message", "content": [{"type": "output_text", "text": "streamed "},
                                                           {"type": "refusal", "refusal": "no"},
                                                           {"type": "output_text", "text": "answer"}]}]}
    events = [{"type": "response.output_text.delta", "delta": "streamed "},
              {"type": "response.completed", "response": response}]
    body = b"".join(b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e).encode() + b"\n\n" for e in events)
    fields = stream_fields("responses", None, body, 1000)
    assert fields["output"] == "streamed answer" and fields["finish_reason"] == "completed"
    assert fields["usage"] == {"input": 5, "output": 2, "total": 7} and fields["response_model"] == "gpt-4.1"


def test_the_text_kept_stops_at_its_budget() -> None:
    body = b"".join(b'data: {"choices": [{"delta": {"content": "0123456789"}}]}\n\n' for _ in range(10))
    assert stream_fields("chat", None, body, 25)["output"]["content"] == "0123456789" * 3
