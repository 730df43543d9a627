"""A frozen Responses API call's reply (``responses.create``, streamed or not, ``responses.parse``,
``responses.stream``, raw): the recorded reply as the API's ``response`` JSON, or as the events the
API streams for it, for ``_replayed_http`` to hand to the SDK.

A Responses generation records its text (``output_text``) when no output item is a call for the
program, else the output items as the API gave them; its status as finish reason, its usage and
model. The text becomes one message item; a text that is JSON (a structured output) is stored
decoded and is given back as compact JSON. The response's ``id`` is the recorded one when the
recording names it (``metadata.response_id``), else ``resp_replayed``; the request's settings are
echoed as the API echoes them.

Given no reply (the call runs live): a call recorded by a framework's generation, a background
call or one in a ``conversation`` (its turn would be missing from the conversation the replay
runs in), a recording that is no completed reply (failed, but for one ``parse`` rejected, which it
rejects again; incomplete, no output), one cut at the
value size limit, a message item whose content is not the API's parts, a generated image (kept
as a note), and a recorded text when the request asks for what a text does not keep:
``include``, ``top_logprobs``, a reasoning summary, hosted tools (their call items and citations).
A stream is rebuilt from messages (text or refusal, no annotations or logprobs), function calls
and reasoning items without summary or content; any other item runs a stream live.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from ...bounds import was_cut
from . import _replayed

_ID = "resp_replayed"
_MESSAGE_ID = "msg_replayed"
#: The name of a Responses generation recorded by this integration (a compaction's, or a framework's, differ).
_NAME = "openai.responses"
#: The program's own tools: a call to one is recorded as output items, so a recorded text left nothing
#: out (a hosted tool's items and citations are left out of a text).
_PROGRAM_TOOLS = frozenset({"function", "custom"})
#: Request settings the API echoes in its response, with the value it gives when a request has none.
_ECHOED = {"instructions": None, "max_output_tokens": None, "metadata": {}, "parallel_tool_calls": True,
           "previous_response_id": None, "reasoning": None, "store": True, "temperature": None,
           "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": None, "truncation": "disabled",
           "user": None}


def payload(record: Mapping[str, Any], request: Mapping[str, Any], stream: bool) -> tuple[bytes, str] | None:
    """The HTTP body and content type of the recorded reply to ``request`` (the body sent), None
    when the recording cannot give it faithfully."""
    response = response_body(record, request)
    if response is None:
        return None
    if not stream:
        return json.dumps(response).encode(), "application/json"
    streamed = events(response)
    return None if streamed is None else (streamed, "text/event-stream")


def response_body(record: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any] | None:
    """The recorded reply as the API's ``response`` JSON, None if it cannot be given."""
    metadata = record.get("metadata") or {}
    failed = record.get("level") == "ERROR" and not _replayed.rejected_reply(record)  # (rejected again when served)
    if (record.get("name") != _NAME or failed or request.get("background")
            or request.get("conversation") or metadata.get("finish_reason") not in (None, "completed")):
        return None
    output = _output(record.get("output"), request)
    if output is None:
        return None
    recorded_id = metadata.get("response_id")
    body: dict[str, Any] = {
        "id": recorded_id if isinstance(recorded_id, str) and recorded_id else _ID, "object": "response",
        "created_at": int(time.time()), "status": "completed", "background": False, "error": None,
        "incomplete_details": None, "model": record.get("model") or request.get("model") or "replayed",
        "output": output, "usage": _usage(record.get("usage")),
    }
    for key, default in _ECHOED.items():
        body[key] = request.get(key, default)
    return body


def _output(recorded: Any, request: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The output items: recorded ones as they are, or a recorded text as one message."""
    if recorded is None or was_cut(recorded):
        return None
    if isinstance(recorded, list) and recorded and all(
            isinstance(item, Mapping) and isinstance(item.get("type"), str) for item in recorded):
        if any(item["type"] == "image_generation_call" or (item["type"] == "message" and not _parts(item))
               for item in recorded):  # a generated image is kept as a note
            return None
        return [dict(item) for item in recorded]
    if not _text_is_whole(request):
        return None
    text = recorded if isinstance(recorded, str) else json.dumps(recorded, ensure_ascii=False, separators=(",", ":"))
    return [{"type": "message", "id": _MESSAGE_ID, "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}]


def _parts(message: Mapping[str, Any]) -> bool:
    """Whether a recorded message item's content is the API's: a list of text or refusal parts."""
    parts = message.get("content")
    return isinstance(parts, list) and all(isinstance(part, Mapping) and isinstance(
        part.get({"output_text": "text", "refusal": "refusal"}.get(part.get("type"), "")), str) for part in parts)


def _text_is_whole(request: Mapping[str, Any]) -> bool:
    """Whether a recorded text is all the reply to ``request`` holds: nothing asked for that a text
    leaves out (included data, log probabilities, a reasoning summary, hosted tools' items)."""
    reasoning = request.get("reasoning")
    tools = request.get("tools") or ()
    return (not request.get("include") and not request.get("top_logprobs")
            and not (isinstance(reasoning, Mapping) and reasoning.get("summary"))
            and all(isinstance(tool, Mapping) and tool.get("type") in _PROGRAM_TOOLS for tool in tools))


def _usage(recorded: Any) -> dict[str, Any] | None:
    """Recorded usage (Langfuse's keys) as the API's, None when none was recorded."""
    if not isinstance(recorded, Mapping) or not recorded:
        return None
    prompt, completion = recorded.get("input") or 0, recorded.get("output") or 0
    input_details = {"cached_tokens": recorded.get("input_cached_tokens") or 0}
    if "input_cache_write_tokens" in recorded:  # reported by newer models only
        input_details["cache_write_tokens"] = recorded["input_cache_write_tokens"]
    return {"input_tokens": prompt, "output_tokens": completion,
            "total_tokens": recorded.get("total") or prompt + completion, "input_tokens_details": input_details,
            "output_tokens_details": {"reasoning_tokens": recorded.get("output_reasoning_tokens") or 0}}


def events(response: dict[str, Any]) -> bytes | None:
    """A response as the API streams it: created, in progress, each output item added, its content
    (text or refusal, a function call's arguments) and done, then completed with the whole
    response. None if an item is one this cannot stream as the API does."""
    sent: list[dict[str, Any]] = []

    def event(kind: str, **fields: Any) -> None:
        sent.append({"type": kind, "sequence_number": len(sent), **fields})

    started = {**response, "status": "in_progress", "output": [], "usage": None}
    event("response.created", response=started)
    event("response.in_progress", response=started)
    for index, item in enumerate(response["output"]):
        if item["type"] == "message":
            if not _message_events(event, index, item):
                return None
        elif item["type"] == "function_call" and isinstance(arguments := item.get("arguments"), str):
            event("response.output_item.added", output_index=index,
                  item={**item, "status": "in_progress", "arguments": ""})
            where = {"item_id": item.get("id"), "output_index": index}
            if arguments:
                event("response.function_call_arguments.delta", delta=arguments, **where)
            event("response.function_call_arguments.done", arguments=arguments, **where)
        elif item["type"] == "reasoning" and not item.get("summary") and not item.get("content"):
            event("response.output_item.added", output_index=index, item=item)
        else:
            return None
        event("response.output_item.done", output_index=index, item=item)
    event("response.completed", response=response)
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in sent)


def _message_events(event: Any, index: int, item: Mapping[str, Any]) -> bool:
    """A message's events up to its ``output_item.done``; False if a part cannot be streamed."""
    parts = item.get("content")
    if not isinstance(parts, list):
        return False
    event("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []})
    for content_index, part in enumerate(parts):
        where = {"item_id": item.get("id"), "output_index": index, "content_index": content_index}
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "output_text" and isinstance(text := part.get("text"), str) and not part.get(
                "annotations") and not part.get("logprobs"):
            event("response.content_part.added", part={**part, "text": ""}, **where)
            if text:
                event("response.output_text.delta", delta=text, logprobs=[], **where)
            event("response.output_text.done", text=text, logprobs=[], **where)
        elif kind == "refusal" and isinstance(refusal := part.get("refusal"), str):
            event("response.content_part.added", part={**part, "refusal": ""}, **where)
            if refusal:
                event("response.refusal.delta", delta=refusal, **where)
            event("response.refusal.done", refusal=refusal, **where)
        else:
            return False
        event("response.content_part.done", part=part, **where)
    return True
