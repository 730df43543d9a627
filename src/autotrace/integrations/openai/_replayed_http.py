"""A frozen chat completion (or Responses API call, ``_replayed_responses``) served by the SDK
itself: the recorded reply as the HTTP response the API would have sent (JSON, or server-sent
events for a stream) is handed to the client's own ``_process_response``, so the caller gets what
the SDK gives for that reply, without a request: the ``ChatCompletion`` or ``Response``
(``parse()``'s type), a ``Stream``/``AsyncStream``, or the raw response of
``with_raw_response``/``with_streaming_response``. The SDK's stream helpers
(``chat.completions.stream``, ``responses.stream``) and autotrace's stream tracking read it as a
live reply.

The recording is an OpenAI chat generation's (``output`` the reply message) or a framework's that
owned the call: LangChain's ``ChatOpenAI`` records its message with LangChain's tool calls
(``name``, parsed ``args``), given back as OpenAI's (``arguments`` as JSON text). A stream's usage
event is sent when the request asks for it (the caller, or autotrace's ``include_usage``), with
the recorded usage. A recording that cannot give the reply faithfully (several choices, spoken
audio kept as a note, content parts, an unknown field or a field of another type than the API's, a
stream's annotations, a reply cut at the value size limit, a stream that failed part way) gives no
reply, and so does a request asking for log probabilities or a spoken reply (neither recorded: a
framework's recording keeps the reply's text alone): the call runs live. A whole reply a parse
helper rejected (``_replayed.rejected_reply``) is given, and the SDK raises the recorded error again.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..._internal import count, guarded_failure
from ...bounds import was_cut
from ...interception import active
from . import _extract, _replayed, _replayed_responses

_ID = "chatcmpl-replayed"
#: Message keys a reply can be rebuilt from (``parsed``: ``parse()``'s, rebuilt by the SDK's post-parser).
_MESSAGE_KEYS = frozenset({"role", "content", "refusal", "annotations", "function_call", "tool_calls", "parsed"})


class Reply:
    """The SDK's arguments for processing a frozen call's synthesized HTTP response."""

    __slots__ = ("cast_to", "options", "response", "stream", "stream_cls")

    def __init__(self, cast_to: Any, options: Any, response: Any, stream: bool, stream_cls: Any) -> None:
        self.cast_to = cast_to
        self.options = options
        self.response = response
        self.stream = stream
        self.stream_cls = stream_cls

    def arguments(self) -> dict[str, Any]:
        return {"cast_to": self.cast_to, "options": self.options, "response": self.response,
                "stream": self.stream, "stream_cls": self.stream_cls}


def reply(client: Any, cast_to: Any, options: Any, stream: bool, stream_cls: Any,
          record: Mapping[str, Any], operation: str = "chat") -> Reply | None:
    """The recorded reply of a chat (or Responses, ``_replayed_responses``) call as the HTTP
    response for ``options`` (prepared as the SDK's ``request`` does: its own copy, the
    ``with_raw_response`` type override taken out); None when the recording cannot give it
    (counted ``openai.replay_live``). Raises on an SDK it cannot use."""
    if operation == "responses":
        found = _replayed_responses.payload(record, _sent(options), stream)
    else:
        found = _chat_payload(record, options, stream)
    if found is None:
        count("openai.replay_live")
        return None
    from openai._compat import model_copy

    options = model_copy(options)
    cast_to = client._maybe_override_cast_to(cast_to, options)
    request = client._build_request(options)
    http = sys.modules[type(request).__module__]  # the SDK's HTTP library, whichever it is
    body, content_type = found
    response = http.Response(200, headers={"content-type": content_type, "x-request-id": "req_replayed"},
                             content=body, request=request)
    return Reply(cast_to, options, response, stream, stream_cls)


def rematched(record: Mapping[str, Any], options: Any, operation: str) -> Mapping[str, Any]:
    """The recording to reply (or raise) from, once per call: the replay's pick among the recorded
    calls alike for the input this request sends (``ReplayController.rematched``), ``record`` when it
    picks none."""
    rematched = getattr(active(), "rematched", None)
    if not callable(rematched) or not str(record.get("name", "")).startswith("openai."):
        return record  # a framework's recording holds its own form of the input
    return rematched(record, _extract.request_fields(operation, dict(_sent(options))).get("input"))


def serve(found: Reply, client: Any, rejected: Callable[[Exception], bool]) -> Any | None:
    """What the SDK makes of the reply (None if it fails: the call then runs live), or what it
    raises when the call's parse helper rejects the reply (``rejected`` says so, having recorded it):
    the program's outcome, as the recorded call's, never a reason to send the request."""
    try:
        return client._process_response(**found.arguments())
    except Exception as exc:
        if rejected(exc):
            raise
        guarded_failure("openai.replay", exc)
        return None


async def aserve(found: Reply, client: Any, rejected: Callable[[Exception], bool]) -> Any | None:
    """``serve`` for an async client (whose ``_process_response`` is a coroutine function)."""
    try:
        result = client._process_response(**found.arguments())
        return await result if inspect.isawaitable(result) else result
    except Exception as exc:
        if rejected(exc):
            raise
        guarded_failure("openai.replay", exc)
        return None


def _chat_payload(record: Mapping[str, Any], options: Any, stream: bool) -> tuple[bytes, str] | None:
    """A chat call's HTTP body and content type, None if the recording cannot give it."""
    sent = _sent(options)
    if sent.get("logprobs") or _asks_audio(sent):  # the recording keeps neither log probabilities nor audio
        return None
    completion = completion_body(record)
    if completion is None or (stream and completion["choices"][0]["message"].get("annotations")):
        return None
    if stream:
        return events(completion, _asks_usage(options)), "text/event-stream"
    return json.dumps(completion).encode(), "application/json"


def _asks_audio(sent: Mapping[str, Any]) -> bool:
    """Whether a chat request asks for a spoken reply (``audio``, or ``"audio"`` in ``modalities``),
    whose audio no recording keeps (a note of it, or a framework's text alone)."""
    modalities = sent.get("modalities")
    return bool(sent.get("audio")) or (isinstance(modalities, list | tuple) and "audio" in modalities)


def _sent(options: Any) -> Mapping[str, Any]:
    """The request body as sent (``extra_body`` merged over it)."""
    body = options.json_data if isinstance(options.json_data, Mapping) else {}
    extra = getattr(options, "extra_json", None)
    return {**body, **extra} if isinstance(extra, Mapping) and extra else body


def completion_body(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The recorded reply as the API's ``chat.completion`` JSON, None if it cannot be given."""
    output = record.get("output")
    # what a stream gave before it failed is no whole reply; one a parse helper rejected is (it rejects it again)
    failed = record.get("level") == "ERROR" and not _replayed.rejected_reply(record)
    message = None if failed or was_cut(output) else _message(output)
    if message is None:
        return None
    metadata = record.get("metadata") or {}
    finish_reason = metadata.get("finish_reason") or ("tool_calls" if message.get("tool_calls") else "stop")
    body: dict[str, Any] = {
        "id": _ID, "object": "chat.completion", "created": int(time.time()), "model": record.get("model") or "replayed",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
    }
    usage = _usage(record.get("usage"))
    if usage is not None:
        body["usage"] = usage
    return body


def _message(output: Any) -> dict[str, Any] | None:
    """A recorded reply message as the API's (OpenAI's or LangChain's tool calls alike)."""
    if isinstance(output, str):
        return {"role": "assistant", "content": output}
    if not isinstance(output, Mapping) or not output.keys() <= _MESSAGE_KEYS:
        return None
    if (output.get("role", "assistant") != "assistant" or not isinstance(output.get("content"), str | None)
            or not isinstance(output.get("refusal"), str | None) or not isinstance(output.get("annotations"), list | None)
            or not _function_call(output.get("function_call"))):
        return None
    message = {"role": "assistant", **{key: value for key, value in output.items() if key != "parsed"}}
    calls = output.get("tool_calls")
    if calls:
        if not isinstance(calls, list):
            return None
        converted = [_tool_call(call) for call in calls]
        if None in converted:
            return None
        message["tool_calls"] = converted
    else:
        message.pop("tool_calls", None)
    return message


def _function_call(call: Any) -> bool:
    """Whether a recorded (legacy) ``function_call`` is none or the API's: a name and JSON text."""
    return call is None or (isinstance(call, Mapping) and isinstance(call.get("name"), str)
                            and isinstance(call.get("arguments"), str))


def _tool_call(call: Any) -> dict[str, Any] | None:
    """One tool call as the API's: kept when it is OpenAI's, else from LangChain's (``args``)."""
    if not isinstance(call, Mapping) or not isinstance(call.get("id"), str):
        return None
    function = call.get("function")
    if isinstance(function, Mapping):
        if _function_call(function) and call.get("type") in ("function", None):
            return {"id": call["id"], "type": "function",
                    "function": {"name": function["name"], "arguments": function["arguments"]}}
        return None
    if isinstance(call.get("name"), str) and isinstance(call.get("args"), Mapping):
        return {"id": call.get("id"), "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call["args"], ensure_ascii=False)}}
    return None


def _usage(recorded: Any) -> dict[str, Any] | None:
    """Recorded usage (Langfuse's keys) as the API's, None when none was recorded."""
    if not isinstance(recorded, Mapping) or not recorded:
        return None
    prompt, completion = recorded.get("input") or 0, recorded.get("output") or 0
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": recorded.get("total") or prompt + completion}
    details = {key: recorded[name] for key, name in (("cached_tokens", "input_cached_tokens"),
                                                     ("cache_write_tokens", "input_cache_write_tokens"))
               if name in recorded}
    if details:
        usage["prompt_tokens_details"] = details
    if "output_reasoning_tokens" in recorded:
        usage["completion_tokens_details"] = {"reasoning_tokens": recorded["output_reasoning_tokens"]}
    return usage


def _asks_usage(options: Any) -> bool:
    """Whether the request asks for a stream's usage event (``extra_body`` merged over the body)."""
    stream_options = _sent(options).get("stream_options")
    return isinstance(stream_options, Mapping) and bool(stream_options.get("include_usage"))


def events(completion: dict[str, Any], include_usage: bool) -> bytes:
    """A completion as the API streams it: the role, the content (or refusal), each tool call,
    the finish reason, then the usage event if asked for, and ``[DONE]``."""
    choice = completion["choices"][0]
    message = choice["message"]
    base = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
            "model": completion["model"]}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    if message.get("refusal") is not None:
        chunks.append(chunk({"refusal": message["refusal"]}))
    if message.get("content"):
        chunks.append(chunk({"content": message["content"]}))
    if message.get("function_call") is not None:
        chunks.append(chunk({"function_call": message["function_call"]}))
    for index, call in enumerate(message.get("tool_calls") or []):
        chunks.append(chunk({"tool_calls": [{"index": index, **call}]}))
    chunks.append(chunk({}, choice["finish_reason"]))
    if include_usage and "usage" in completion:
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
