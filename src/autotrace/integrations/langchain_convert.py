"""LangChain objects as recorded fields: messages (with their chat role), token usage, a model
run's model and parameters and its reply, bound tools by name, retrieved documents, a run's name,
an error's text, whether a chain run started on LangChain's streaming path, and what a stream its
caller closed had yielded; a chat model run its cache answered costs nothing (``cached_call``)."""

from __future__ import annotations

import dataclasses
import inspect
import sys
from contextvars import ContextVar
from functools import lru_cache
from numbers import Real
from typing import Any

from .._internal import guarded_failure
from .documents import CONTENT_CHARS, recorded
from .media import without_data_urls, without_media

#: Frames from a handler's method up to LangChain's streaming generator that reported the run
#: (the callback manager's, a wrapper another library may add): a bound on the walk.
_STREAM_FRAME_DEPTH = 12

#: ``usage_metadata``'s token details (tokens written to a provider's cache: Anthropic's
#: ``cache_creation``) as Langfuse usage keys; ChatOpenAI prefixes some with a ``flex`` or
#: ``priority`` service tier (``flex_cache_read``).
_INPUT_DETAILS = {"cache_read": "input_cached_tokens", "cache_creation": "input_cache_write_tokens",
                  "audio": "input_audio_tokens"}
_OUTPUT_DETAILS = {"reasoning": "output_reasoning_tokens", "audio": "output_audio_tokens"}
_TIERS = ("", "flex_", "priority_")

#: Where a reply's ``response_metadata`` gives its finish reason: OpenAI's and Gemini's key,
#: Anthropic's (ChatAnthropic keeps the API's name), Bedrock Converse's and Ollama's.
_FINISH_KEYS = ("finish_reason", "stop_reason", "stopReason", "done_reason")

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "function"}


def chat_role(message: Any) -> str:
    """The chat role of a message: a streamed chunk (type ``AIMessageChunk``) is the role of the
    message it is part of; a ``ChatMessage`` (type ``chat``) carries its role itself."""
    kind = getattr(message, "type", None)
    if not isinstance(kind, str):
        return "unknown"
    if kind.endswith("MessageChunk"):
        kind = {"AI": "ai", "Human": "human", "System": "system", "Tool": "tool", "Function": "function",
                "Chat": "chat"}.get(kind[: -len("MessageChunk")], kind)
    if kind == "chat" and isinstance(getattr(message, "role", None), str):
        return message.role
    return _ROLES.get(kind, kind)


def message_fields(message: Any) -> dict[str, Any]:
    """A LangChain message as a chat message: role, content, tool calls (those whose arguments are no
    JSON too), the call a tool result answers, and a refusal or spoken reply ChatOpenAI gives."""
    entry: dict[str, Any] = {"role": chat_role(message), "content": getattr(message, "content", message)}
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        entry["tool_calls"] = tool_calls
    invalid = getattr(message, "invalid_tool_calls", None)
    if invalid:  # calls whose arguments are no JSON (a reply cut off at its token limit), as the model gave them
        entry["invalid_tool_calls"] = invalid
    tool_call_id = getattr(message, "tool_call_id", None)
    if tool_call_id:  # which call a tool result answers
        entry["tool_call_id"] = tool_call_id
    additional = getattr(message, "additional_kwargs", None)
    if isinstance(additional, dict) and additional:  # what ChatOpenAI keeps beside an empty content
        if isinstance(refusal := additional.get("refusal"), str):  # the model refused: that is its reply
            entry["refusal"] = refusal
        if isinstance(audio := additional.get("audio"), dict):  # a spoken reply: its transcript is the reply
            entry["audio"] = audio  # its base64 ``data`` noted by ``without_media``
    return entry


def chain_value(value: Any) -> Any:
    """A chain's inputs or outputs as recorded: the messages in them (a graph state's ``messages``, a
    prompt's value, ``(role, parts)`` pairs, the state a ``Send`` or a tool call's context carries, a
    graph's Pydantic or dataclass state, down to ``_NESTED_DEPTH`` levels) with the inline payloads of
    their media parts (a base64 image) noted by kind and size, as a generation's input's are; ``value``
    itself when none has media parts (the common case: a look at each item, no copy); a base64 data
    URL anywhere in it (a prompt template's variable, a markdown image in a text) too."""
    try:
        return _noted(value, _NESTED_DEPTH)
    except Exception as exc:  # recorded as it is (cut at the size limit)
        guarded_failure("langchain.chain_value", exc)
        return value


#: Dicts and states looked into below a chain's value (a ``ToolNode``'s input:
#: ``{"state": {"messages": [...]}}``), each of at most ``_NESTED_KEYS`` keys.
_NESTED_DEPTH = 3
_NESTED_KEYS = 64
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _noted(item: Any, depth: int) -> Any:
    """``item`` as ``chain_value`` records it, dicts looked into ``depth`` levels down."""
    kind = type(item)
    if kind is str:  # a data URL (a prompt template's variable) is a payload wherever it is
        return without_data_urls(item)
    if kind in _PLAIN:
        return item
    if kind is list:
        found: Any = None
        for index, entry in enumerate(item):
            if _may_hold_media(entry) and (kept := _noted(entry, depth)) is not entry:
                found = found if found is not None else list(item)
                found[index] = kept
        return item if found is None else found
    if _has_parts(item):
        return _noted_message(item)
    if kind is dict:
        return _noted_fields(item, depth)
    if kind is tuple and len(item) == 2 and type(item[1]) is list:  # a ``(role, parts)`` message
        parts = without_media([{"content": item[1]}])[0]["content"]
        return item if parts is item[1] else [item[0], parts]
    if kind.__name__ == "Send" and depth > 0 and hasattr(item, "arg"):  # LangGraph's: a node's input a router sends
        arg = _noted(item.arg, depth - 1)
        return item if arg is item.arg else {"node": item.node, "arg": arg}
    messages = getattr(item, "messages", None) if hasattr(kind, "to_messages") else None
    if type(messages) is list:  # a ChatPromptValue: its messages are all it holds
        kept = _noted(messages, depth)
        return item if kept is messages else {"messages": kept}
    fields = _state_fields(item) if depth > 0 else None
    if fields is not None:  # a graph's Pydantic or dataclass state: recorded as its fields
        kept = _noted_fields(fields, depth)
        return item if kept is fields else kept
    return item


def _noted_fields(fields: dict[Any, Any], depth: int) -> dict[Any, Any]:
    """A dict (or a state's fields) with what its values hold noted, looked into while ``depth`` lasts
    and, below the chain's value itself, if it has at most ``_NESTED_KEYS`` keys; ``fields`` if none."""
    if depth <= 0 or (depth < _NESTED_DEPTH and len(fields) > _NESTED_KEYS):
        return fields
    found = None
    for key, entry in fields.items():
        if (kept := _noted(entry, depth - 1)) is not entry:
            found = found if found is not None else dict(fields)
            found[key] = kept
    return fields if found is None else found


def _state_fields(item: Any) -> dict[str, Any] | None:
    """The fields of a Pydantic model (its ``None`` ones left out, as its record's dump does) or a
    dataclass that is no message, None for anything else."""
    if getattr(item, "content", None) is not None:  # a message (its parts were looked at) or a document
        return None
    kind = type(item)
    names = getattr(kind, "__pydantic_fields__", None)
    if isinstance(names, dict) and callable(getattr(item, "model_dump", None)):
        return {name: value for name in names if (value := getattr(item, name, None)) is not None}
    if dataclasses.is_dataclass(kind):
        return {field.name: getattr(item, field.name, None) for field in dataclasses.fields(kind)}
    return None


def _may_hold_media(entry: Any) -> bool:
    """Whether an item of a list may hold a message's media: a message with parts, a ``(role, parts)``
    pair, a ``Send``, a prompt's value, a data URL (records as dicts, states, are not looked into)."""
    kind = type(entry)
    if kind is str:
        return ";base64," in entry
    if kind in _PLAIN or kind is tuple:
        return kind is tuple
    content = entry.get("content") if kind is dict else getattr(entry, "content", None)
    if content is not None:  # a message: no ``Send`` or prompt value
        return _has_parts(entry)
    return _routed(kind)


@lru_cache(maxsize=256)
def _routed(kind: type) -> bool:
    """Whether a list's items of this type may be a ``Send`` or a prompt's value (asked once a type: a
    Pydantic class answers a missing attribute by raising, a microsecond an item of a long list)."""
    return kind.__name__ == "Send" or hasattr(kind, "to_messages")


def _has_parts(message: Any) -> bool:
    """A message (LangChain's, or one as a dict) whose content is a list of parts."""
    if type(message) is dict:
        return type(message.get("content")) is list
    return type(getattr(message, "content", None)) is list and hasattr(message, "model_dump")


def _noted_message(message: Any) -> Any:
    """A message with parts as recorded: dumped, its media noted, only if it has media (a look at its
    parts: the dump of each message of a long graph state costs more than the rest of the walk)."""
    if type(message) is dict:
        return without_media([message])[0]
    parts = without_media([{"content": message.content}])[0]["content"]
    if parts is message.content:
        return message
    return {**message.model_dump(mode="json", exclude_none=True, warnings=False), "content": parts}


def token_usage(response: Any, message: Any) -> dict[str, int] | None:
    metadata = getattr(message, "usage_metadata", None)
    if metadata:
        usage = {"input": metadata.get("input_tokens"), "output": metadata.get("output_tokens"),
                 "total": metadata.get("total_tokens")}
        _details(metadata.get("input_token_details"), _INPUT_DETAILS, usage)
        _details(metadata.get("output_token_details"), _OUTPUT_DETAILS, usage)
        return {k: v for k, v in usage.items() if isinstance(v, int)}
    reported = (getattr(response, "llm_output", None) or {}).get("token_usage") or {}
    if reported:
        usage = {"input": reported.get("prompt_tokens"), "output": reported.get("completion_tokens"),
                 "total": reported.get("total_tokens")}
        return {k: v for k, v in usage.items() if isinstance(v, int)} or None
    return None


def model_reply(response: Any, streamed_only: bool = False) -> dict[str, Any]:
    """Output, usage, finish reason and model of a model run's first generation.
    ``streamed_only``: only a streamed reply (LangChain gives a failed or closed stream's merged
    chunks to ``on_llm_error``; any other generation there holds the error's HTTP response, no reply)."""
    generations = getattr(response, "generations", None) or [[]]
    choices = generations[0] if generations and generations[0] else []
    first = choices[0] if choices else None
    message = getattr(first, "message", None)
    if streamed_only and not (message is not None and str(getattr(message, "type", "")).endswith("Chunk")):
        return {}
    # ``n`` > 1: every choice, as the OpenAI integration records them
    output = [_choice_output(choice) for choice in choices] if len(choices) > 1 else _choice_output(first)
    info = getattr(first, "generation_info", None) or {}
    response_metadata = getattr(message, "response_metadata", None) or {}
    return {"output": output, "usage": token_usage(response, message),
            "finish_reason": _finish_reason(info) or _finish_reason(response_metadata),
            "response_model": response_metadata.get("model_name")}


#: Set while a chat model's ``_generate_with_cache`` runs here: noted when LangChain's cache answers.
_ANSWERED: ContextVar[list[bool] | None] = ContextVar("autotrace_langchain_cache_answered", default=None)


def from_cache(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``BaseChatModel._convert_cached_generations``: LangChain's cache answered (``cached_call``)."""
    answered = _ANSWERED.get()
    if answered is not None:
        answered.append(True)
    return wrapped(*args, **kwargs)


def cached_call(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``BaseChatModel._generate_with_cache``: a run its cache answers costs nothing (its tokens,
    still told, are not priced again), set as the cache answers. Its reply's ``total_cost``, which
    LangChain zeroes for that, is not read at the run's end: LangChain zeroes it on the cached
    generation itself, still held by the run that paid for it (a ``generate`` of one prompt twice)."""
    answered: list[bool] = []
    token = _ANSWERED.set(answered)
    try:
        result = wrapped(*args, **kwargs)
    finally:
        _ANSWERED.reset(token)
    if answered:
        _free(integration, args, kwargs)
    return result


async def acached_call(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``BaseChatModel._agenerate_with_cache``, as ``cached_call``."""
    answered: list[bool] = []
    token = _ANSWERED.set(answered)
    try:
        result = await wrapped(*args, **kwargs)
    finally:
        _ANSWERED.reset(token)
    if answered:
        _free(integration, args, kwargs)
    return result


def _free(integration: Any, args: Any, kwargs: Any) -> None:
    """The run of a ``_generate_with_cache`` its cache answered costs nothing (never raises)."""
    try:
        handler = integration.handler
        run_manager = kwargs.get("run_manager", args[2] if len(args) > 2 else None)
        run = handler.runs.get(getattr(run_manager, "run_id", None)) if handler is not None else None
        if run is not None:
            run.obs.update(cost={"total": 0.0})
    except Exception as exc:
        guarded_failure("langchain.cache_hit", exc)


def _details(details: Any, names: dict[str, str], usage: dict[str, Any]) -> None:
    """Add ``usage_metadata``'s token details to ``usage`` in Langfuse's keys (``names``), each
    under its plain name or, for a reply of an OpenAI ``flex``/``priority`` tier, its tier's."""
    if not isinstance(details, dict):
        return
    for detail, key in names.items():
        for tier in _TIERS:
            if (value := details.get(tier + detail)) is not None:
                usage[key] = value
                break


def _choice_output(generation: Any) -> Any:
    """One choice's reply, the payloads of its media (spoken audio, images) noted as an input's."""
    message = getattr(generation, "message", None)
    return without_media([message_fields(message)])[0] if message is not None else getattr(generation, "text", None)


def _finish_reason(response_metadata: dict[str, Any]) -> Any:
    """A reply's finish reason, under whichever provider's key it has (``_FINISH_KEYS``); for a
    Responses API reply (``object`` "response"), its status."""
    for key in _FINISH_KEYS:
        if (reason := response_metadata.get(key)) is not None:
            return reason
    return response_metadata.get("status") if response_metadata.get("object") == "response" else None


def model_fields(kwargs: dict[str, Any], metadata: dict[str, Any] | None) -> dict[str, Any]:
    """A model run's model, parameters and provider from its start's ``invocation_params`` and
    ``metadata``. Stop sequences are a parameter when given: ChatOpenAI's invocation parameters
    lose those given to the call, which LangChain's ``ls_stop`` metadata keeps."""
    params = dict(kwargs.get("invocation_params") or {})
    given = metadata or {}
    # both popped: ChatOpenAI gives the same name under each, and neither is a parameter
    model, model_name = params.pop("model", None), params.pop("model_name", None)
    model = model or model_name or given.get("ls_model_name")
    for noise in ("_type", "stream"):
        params.pop(noise, None)
    stop = params.pop("stop", None) or given.get("ls_stop")
    if stop:
        params["stop"] = stop
    for key in ("tools", "functions"):  # bound tools by name: their schemas fill the parameters
        if isinstance(params.get(key), list):
            params[key] = [bound_tool_name(tool) for tool in params[key]]
    return {"model": model, "model_parameters": params or None, "provider": given.get("ls_provider")}


def bound_tool_name(tool: Any) -> Any:
    """A bound tool's name, in the provider formats LangChain passes (OpenAI's ``function``,
    Anthropic's flat ``name``, a built-in tool's ``type``) or as a ``BaseTool``."""
    if isinstance(tool, dict):
        function = tool.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        return name or tool.get("name") or tool.get("type")
    return getattr(tool, "name", None) or type(tool).__name__


def found_fields(item: Any) -> dict[str, Any]:
    """One item a retriever or a store search found, as recorded: a document; a ``(document, score)``
    pair (a ``*_with_score`` search's) with its score; anything else (a retriever may return text)
    by its text."""
    score = None
    if type(item) is tuple and len(item) == 2 and isinstance(item[1], Real) and not isinstance(item[1], bool):
        item, score = item  # a score may be numpy's (FAISS's ``float32``)
    entry = document_fields(item) if hasattr(item, "page_content") else {"id": None, "content": _text(item)}
    if score is not None:
        entry["score"] = float(score)
    return entry


def _text(item: Any) -> str:
    try:
        return str(item)[:CONTENT_CHARS]
    except Exception:  # an object that cannot say what it is
        return type(item).__name__


def document_fields(doc: Any) -> dict[str, Any]:
    metadata = dict(getattr(doc, "metadata", None) or {})
    score = metadata.pop("score", None)
    if score is None:
        score = metadata.pop("relevance_score", None)
    # langchain-qdrant keeps the point's id in metadata["_id"], not in Document.id
    entry: dict[str, Any] = {"id": getattr(doc, "id", None) or metadata.get("id") or metadata.get("_id"),
                             "content": str(getattr(doc, "page_content", ""))[:CONTENT_CHARS]}
    if score is not None:
        entry["score"] = score
    if metadata:
        entry["metadata"] = metadata
    return entry


def retrieval_fields(found: list[Any]) -> dict[str, Any]:
    """A retrieval's end fields from the documents it returned: the first ones recorded (the rest
    counted, ``documents.recorded``), how many there were, and their scores."""
    docs, metadata = recorded((found_fields(d) for d in found), len(found))
    scores = [d["score"] for d in docs if "score" in d]
    return {"documents": docs, "doc_count": len(found), "scores": scores or None, "metadata": metadata or None}


def run_name(serialized: Any, kwargs: dict[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if name:
        return str(name)
    if isinstance(serialized, dict):
        if serialized.get("name"):
            return str(serialized["name"])
        ident = serialized.get("id")
        if isinstance(ident, list) and ident:
            return str(ident[-1])
    return default


def _streaming_code() -> Any:
    """The code of LangChain's sync streaming path (``Runnable._transform_stream_with_config``), or
    None if this langchain-core has none."""
    from langchain_core.runnables import Runnable

    return getattr(getattr(Runnable, "_transform_stream_with_config", None), "__code__", None)


def stream_codes() -> frozenset[Any]:
    """The code of LangChain's sync streaming generator, which reports its run's end from its own
    frame (``closed_stream``). The async twin reports a close itself, from a shielded task (no
    frame of the stream to read)."""
    code = _streaming_code()
    return frozenset(() if code is None else (code,))


def _stream_locals(codes: frozenset[Any]) -> dict[str, Any] | None:
    frame = sys._getframe(2)
    for _ in range(_STREAM_FRAME_DEPTH):
        if frame is None:
            return None
        if frame.f_code in codes:
            return frame.f_locals
        frame = frame.f_back
    return None


def _plus(so_far: Any, chunk: Any) -> Any:
    """``so_far`` and one more chunk, as LangChain adds a stream's chunks (one it cannot add replaces it)."""
    if so_far is None:
        return chunk
    try:
        return so_far + chunk
    except TypeError:
        return chunk


def closed_stream(codes: frozenset[Any], outputs: Any) -> tuple[Any] | None:
    """For a sync streamed run LangChain reports done: ``(all it yielded,)`` if its caller closed the
    stream (``close()``, ``break`` then drop), else None. LangChain swallows the GeneratorExit at the
    yield and reports ``outputs`` without that last chunk; told apart from a stream that ran out by
    its steps' generator, exhausted then, still suspended here. Call from the handler's method; never
    raises (None: the run ends as LangChain reports it)."""
    try:
        found = _stream_locals(codes) or {}
        steps = found.get("iterator")
        if not (inspect.isgenerator(steps) and steps.gi_frame is not None and "chunk" in found):
            return None
        chunk = found["chunk"]
    except Exception as exc:
        guarded_failure("langchain.closed_stream", exc)
        return None
    try:
        return (_plus(outputs, chunk),)
    except Exception:  # chunks that fail to merge (LangChain's own error): what LangChain reported
        return (outputs,)


def streamed_start(inputs: Any, kwargs: dict[str, Any], marked: bool) -> bool:
    """Whether a chain run was started by LangChain's streaming path, which holds ``{"input": ""}``
    until its input has been read (``_transform_stream_with_config``). Where that path also passes
    ``defers_inputs`` (``marked``), a run invoked with that very input is told apart by its absence."""
    placeholder = type(inputs) is dict and len(inputs) == 1 and type(inputs.get("input")) is str and not inputs["input"]
    return placeholder and (not marked or "defers_inputs" in kwargs)


def marks_streams() -> bool:
    """Whether this langchain-core's streaming path passes ``defers_inputs`` to ``on_chain_start``."""
    code = _streaming_code()
    return code is not None and "defers_inputs" in code.co_consts  # else: the placeholder alone tells


def error_text(error: BaseException) -> str:
    """An exception's message (its type if it has none); never raises."""
    try:
        return str(error) or type(error).__name__
    except Exception:
        return type(error).__name__
