"""What LlamaIndex calls were given and returned, as the fields of their observations."""

from __future__ import annotations

import functools
from itertools import islice
from typing import Any

from ... import bounds
from ..._heads import json_head
from ..._serialize import as_text
from ...observation import ObservationType
from ...runtime import state
from ..documents import CONTENT_CHARS, document, recorded
from ..media import media_note
from ._usage import usage

_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "tool": "tool"}
#: An LLM's calls that ask its model, then run the tool calls it answers with (a structured
#: prediction's tool parses the reply into its object): chains over that model call and those tools
STREAMED_PREDICTIONS = frozenset({"stream_structured_predict", "astream_structured_predict"})
PREDICTIONS = frozenset({"structured_predict", "astructured_predict", "predict_and_call", "apredict_and_call",
                         *STREAMED_PREDICTIONS})


def method_of(id_: str) -> str:
    """The method name in a LlamaIndex span id (``Class.method-uuid``)."""
    return id_.split("-", 1)[0].rsplit(".", 1)[-1]


def _query(value: Any) -> Any:
    return getattr(value, "query_str", value)


#: Keys of a node's metadata recorded per document
_METADATA_KEYS = 20


def _document(item: Any) -> dict[str, Any]:
    """A retrieved node as a document: its id, score, text and metadata (where it came from: a file's
    name, a page), bounded as its text is: the first keys, each value cut short (a sentence window's
    ``window`` holds kilobytes)."""
    node = getattr(item, "node", item)
    text = getattr(node, "text", None) or (node.get_content() if hasattr(node, "get_content") else "")
    found = getattr(node, "metadata", None)
    metadata = {str(key): value if isinstance(value, int | float | bool) or value is None  # a list: its head's text
                else as_text(value, CONTENT_CHARS)[:CONTENT_CHARS] for key, value in islice(found.items(), _METADATA_KEYS)
                } if isinstance(found, dict) else None
    return document(getattr(node, "node_id", None), getattr(item, "score", None), text, metadata)


#: media blocks' types -> (the field holding their inline bytes, the field naming their MIME type)
_MEDIA = {"image": ("image", "image_mimetype"), "audio": ("audio", "format"), "video": ("video", "video_mimetype"),
          "document": ("data", "document_mimetype")}


def content(value: Any) -> Any:
    """A message's content: its text, or, with media blocks (images, audio, video, documents), its
    text and media blocks as parts, each medium noted by its kind and where it is (``_media_part``)."""
    text = getattr(value, "content", str(value))
    blocks = getattr(value, "blocks", None)
    if not isinstance(blocks, list) or not any(getattr(b, "block_type", None) in _MEDIA for b in blocks):
        return text
    parts: list[dict[str, Any]] = []
    for block in blocks:
        kind = getattr(block, "block_type", None)
        if kind == "text":
            parts.append({"type": "text", "text": getattr(block, "text", "")})
        elif kind in _MEDIA:
            parts.append(_media_part(block, kind))
    return parts


def _media_part(block: Any, kind: str) -> dict[str, Any]:
    """A media block as a part: a note of its inline bytes' type and size (never the bytes), its web
    address (a data URL noted as bytes are), or its file's path."""
    field, mime_field = _MEDIA[kind]
    mime = getattr(block, mime_field, None)
    mime = mime if not isinstance(mime, str) or "/" in mime else f"{kind}/{mime}"  # an audio block's format
    part: dict[str, Any] = {"type": kind}
    data, url, path = getattr(block, field, None), getattr(block, "url", None), getattr(block, "path", None)
    if isinstance(data, bytes | bytearray) and data:
        part[field] = f"<{mime or kind} inline, {len(data)} bytes>"
    elif data is not None:  # a file object: not read
        part[field] = f"<{mime or kind} inline>"
    if url is not None:
        part["url"] = media_note(str(url)) or str(url)
    if path is not None:
        part["path"] = str(path)
    if isinstance(title := getattr(block, "title", None), str):
        part["title"] = title
    return part


def message(value: Any) -> dict[str, Any]:
    """A chat message as recorded: role, content, the tool calls it asks for, the call it answers."""
    role = getattr(getattr(value, "role", None), "value", None) or str(getattr(value, "role", "user"))
    entry = {"role": _ROLES.get(role, role), "content": content(value)}
    extra = getattr(value, "additional_kwargs", None)
    extra = extra if isinstance(extra, dict) else {}
    # the calls a function-calling LLM asked for: blocks (core's own form) or OpenAI-style kwargs
    calls = [{"id": b.tool_call_id, "name": b.tool_name, "arguments": b.tool_kwargs}
             for b in getattr(value, "blocks", None) or () if type(b).__name__ == "ToolCallBlock"]
    calls = calls or extra.get("tool_calls")
    if calls:
        entry["tool_calls"] = calls
    if extra.get("tool_call_id"):  # which call a tool result answers
        entry["tool_call_id"] = extra["tool_call_id"]
    return entry


def llm_input(method: str, arguments: dict[str, Any]) -> Any:
    """The messages (chat) or prompt (completion) an LLM call was given."""
    positional = arguments.get("args") or ()  # LLM callbacks wrap methods as (_self, *args, **kwargs)
    keywords = arguments.get("kwargs")
    keywords = keywords if isinstance(keywords, dict) else {}
    name = "messages" if "chat" in method else "prompt"
    return arguments.get(name) or (positional[0] if positional else keywords.get(name))


def _run_input(event: Any) -> Any:
    """A workflow run's input: an agent's user message, or the conversation it was given (as it
    was then: the agent's memory appends to that list), else its start event's fields."""
    value = getattr(event, "user_msg", None)
    if value is not None:
        return content(value) if hasattr(value, "content") else value
    history = getattr(event, "chat_history", None)
    if isinstance(history, list) and history:
        return [message(m) for m in history]
    return event_fields(event) if _event_kind(type(event)) else None


def _run_output(result: Any) -> Any:
    """A workflow run's (or step's) output: its stop event's result (an agent's reply text), or the
    fields of a typed stop event (which has no ``result``) or of another event a step returned."""
    kind = _event_kind(type(result))
    value = getattr(result, "result", None) if kind == "stop" else None
    if kind and value is None:
        return event_fields(result)
    value = result if value is None else value
    reply = getattr(value, "response", None)  # an agent's AgentOutput
    return getattr(reply, "content", reply) if reply is not None else value


@functools.lru_cache(maxsize=256)
def _event_kind(cls: type) -> str | None:
    """``stop`` for a workflow's ``StopEvent`` (and its subclasses), ``event`` for other workflow
    events, else None; read once per class."""
    names = {base.__name__ for base in cls.__mro__}
    return ("stop" if "StopEvent" in names else "event") if "Event" in names and "DictLikeModel" in names else None


def event_fields(event: Any) -> dict[str, Any]:
    """A workflow event's fields: those its class declares (a typed ``StartEvent``'s) and those it
    was given as keywords (``StartEvent(topic=...)``, which an event holds apart: ``to_dict``), a
    list of models among them as ``_models_head`` has it."""
    fields = {name: getattr(event, name, None) for name in getattr(type(event), "model_fields", None) or ()}
    given = getattr(event, "to_dict", None)
    if callable(given):
        fields.update(given())
    return {name: _models_head(value) for name, value in fields.items()}


def _models_head(value: Any) -> Any:
    """A list or tuple of models (an event's nodes, messages ...) as it is now (a step may change
    them in place), as the dumps of its first items, as many as the value size limit may show
    (``json_head``: dumping them all, a node's embedding with it, would cost far more than the text
    cut at that limit keeps). Any other value as it is, and this one too if it cannot be walked."""
    if type(value) not in (list, tuple) or not value or not callable(getattr(value[0], "model_dump", None)):
        return value
    try:
        return json_head(value, state.max_value_bytes + bounds.REDACTION_MARGIN + 1)[0]
    except Exception:  # (a recursion limit reached) serialised whole when the step ends
        return value


def step_fields(arguments: dict[str, Any]) -> dict[str, Any]:
    """A workflow step's input: the event it was given (its fields, and its type as metadata)."""
    event = next((value for value in arguments.values() if _event_kind(type(value))), None)
    if event is None:
        return {}
    return {"input": event_fields(event), "metadata": {"input_event": type(event).__name__}}


def _model(instance: Any) -> str | None:
    for attribute in ("model", "model_name"):
        value = getattr(instance, attribute, None)
        if isinstance(value, str):
            return value
    metadata = getattr(instance, "metadata", None)
    name = getattr(metadata, "model_name", None)
    return name if isinstance(name, str) else type(instance).__name__


#: An LLM's settings recorded as its generation's model parameters, when set
_PARAMETERS = frozenset({"temperature", "max_tokens", "max_new_tokens", "top_p", "top_k", "frequency_penalty",
                         "presence_penalty", "seed", "stop", "reasoning_effort", "tool_choice"})


@functools.lru_cache(maxsize=256)
def _settings_of(cls: type) -> tuple[str, ...]:
    """The settings an LLM class declares as fields (``_PARAMETERS``, and ``additional_kwargs``),
    read once per class: only those are read from its LLMs (a pydantic model takes microseconds to
    refuse a name it lacks, and a property is the LLM's own code, which may be slow or raise)."""
    fields = getattr(cls, "model_fields", None)
    return tuple(sorted(name for name in (*_PARAMETERS, "additional_kwargs") if name in (fields or ())))


def _parameters(instance: Any, arguments: dict[str, Any]) -> dict[str, Any] | None:
    """An LLM call's model parameters: the LLM's settings, then the ``additional_kwargs`` it sends
    with every request, then those the call was given (``llm.chat(messages, temperature=0)``); each
    a number, text or flag (a list of stop words too)."""
    found: dict[str, Any] = {}
    instance = _configured(instance)
    for name in _settings_of(type(instance)):
        try:
            found[name] = getattr(instance, name)
        except Exception:  # a setting that cannot be read: the others still are
            continue
    for given in (found.pop("additional_kwargs", None), arguments.get("kwargs")):
        if isinstance(given, dict):
            found.update((name, value) for name, value in given.items() if name in _PARAMETERS)
    params = {name: value for name, value in found.items() if _setting(value)}
    return dict(sorted(params.items())) or None


def _configured(instance: Any) -> Any:
    """The LLM whose settings a call is made with: a wrapper's with none of its own (a
    ``StructuredLLM``'s, made by ``as_structured_llm``) calls its ``llm``, the model's."""
    if _settings_of(type(instance)):
        return instance
    inner = getattr(instance, "__dict__", {}).get("llm")  # a field, not a property: no code of the LLM's runs
    return inner if inner is not None and _settings_of(type(inner)) else instance


def _setting(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return bool(value) and all(isinstance(item, str) for item in value)
    return isinstance(value, bool | int | float | str)


def tool_name(instance: Any) -> str:
    """A tool's name (its metadata's), else its class name."""
    return getattr(getattr(instance, "metadata", None), "name", None) or type(instance).__name__


def _tool_arguments(instance: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tool call's arguments by name, as the model gave them: keyword arguments (``**kwargs``) at
    the top level, without ``self`` nor the workflow ``Context`` a FunctionTool is handed
    (``ctx_param_name``: plumbing, whose repr can be large). A lone positional argument is the
    tool's one parameter (``call_tool``/``acall_tool`` pass the model's only argument so: a
    QueryEngineTool's ``input``), named after it; other positional ones stay a list, ``args``."""
    keywords, positional = arguments.get("kwargs"), arguments.get("args")
    recorded = {k: v for k, v in arguments.items() if k not in _PLUMBING}
    if isinstance(keywords, dict):
        ctx_name = getattr(instance, "ctx_param_name", None)
        recorded.update((k, v) for k, v in keywords.items() if k != ctx_name)
    elif keywords is not None:  # a parameter named ``kwargs``
        recorded["kwargs"] = keywords
    if isinstance(positional, tuple) and positional:
        sole = _sole_parameter(instance) if len(positional) == 1 and not recorded else None
        recorded[sole or ("*args" if "args" in recorded else "args")] = (
            positional[0] if sole else list(positional))
    elif positional is not None and not isinstance(positional, tuple):  # a parameter named ``args``
        recorded["args"] = positional
    return recorded


_PLUMBING = frozenset({"self", "args", "kwargs"})


def _sole_parameter(instance: Any) -> str | None:
    """The name of a tool's only parameter (its schema's one field; ``input`` without a schema)."""
    metadata = getattr(instance, "metadata", None)
    schema = getattr(metadata, "fn_schema", None)
    if metadata is not None and schema is None:
        return "input"  # ToolMetadata's default schema
    fields = getattr(schema, "model_fields", None)
    if not isinstance(fields, dict) or len(fields) != 1:
        return None
    name, field = next(iter(fields.items()))
    alias = getattr(field, "alias", None)  # the schema the model was shown names it so
    return alias if isinstance(alias, str) else name


def _top_k(instance: Any, attribute: str = "similarity_top_k") -> int | None:
    """How many documents a retriever asks for (``similarity_top_k``: vector, fusion, list ... retrievers;
    a reranker's ``top_n``)."""
    top_k = getattr(instance, attribute, None)
    return top_k if type(top_k) is int else None


def _ingestion(instance: Any) -> bool:
    return _is_ingestion(type(instance))


@functools.lru_cache(maxsize=256)
def _is_ingestion(cls: type) -> bool:
    """Whether ``cls`` is an ``IngestionPipeline``: asked at every chain's start and end, so its
    class hierarchy is read once per class."""
    return any(base.__name__ == "IngestionPipeline" for base in cls.__mro__)


def _size(value: Any) -> int:
    return len(value) if hasattr(value, "__len__") else 0


def _ingestion_start(instance: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    """An ingestion run's input: how many documents (given, and the pipeline's own) and nodes it
    was handed (a reader's are read only later: not counted), and its transformations' names."""
    documents = _size(arguments.get("documents")) + _size(getattr(instance, "documents", None))
    steps = getattr(instance, "transformations", None) or ()
    return {"input": {"documents": documents, "nodes": _size(arguments.get("nodes"))},
            "metadata": {"transformations": [type(step).__name__ for step in steps]}}


def _prediction_start(arguments: dict[str, Any]) -> dict[str, Any]:
    """A prediction's input: a structured prediction's prompt variables (and the class it fills), or
    the message (else the conversation) a ``predict_and_call`` answers (and the tools it may call)."""
    if "output_cls" not in arguments and "kwargs" in arguments:  # an override's ``*args, **kwargs``
        arguments = _by_name(arguments)
    if "output_cls" in arguments:
        name = getattr(arguments["output_cls"], "__name__", None)
        return {"input": arguments.get("prompt_args") or None,
                "metadata": {"output_cls": name} if isinstance(name, str) else None}
    value, history = arguments.get("user_msg"), arguments.get("chat_history")
    if value is None and isinstance(history, list) and history:
        value = [message(m) for m in history]
    elif hasattr(value, "content"):
        value = content(value)
    tools = [tool_name(tool) for tool in arguments.get("tools") or ()]
    return {"input": value, "metadata": {"tools": tools} if tools else None}


def _by_name(arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a structured prediction an LLM's override takes as ``*args, **kwargs`` (LlamaIndex's
    OpenAI LLM's), named as its base's are; else ``arguments``."""
    given, positional = arguments.get("kwargs"), arguments.get("args")
    named = dict(given) if isinstance(given, dict) else {}
    named.update(zip(("output_cls", "prompt"), positional if isinstance(positional, tuple) else (), strict=False))
    if not isinstance(named.get("output_cls"), type):
        return arguments
    return {"output_cls": named.pop("output_cls"), "prompt_args": {k: v for k, v in named.items() if k != "prompt"}}


def start_fields(obs_type: ObservationType, instance: Any, method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The fields of a call's observation known when it starts."""
    if obs_type is ObservationType.GENERATION:
        value = llm_input(method, arguments)
        chat = "chat" in method
        return {"model": _model(instance), "provider": "llama_index", "model_parameters": _parameters(instance, arguments),
                "input": [message(m) for m in value] if chat and value is not None else value,
                "operation": "chat" if chat else "text_completion"}
    if obs_type is ObservationType.EMBEDDING:
        value = arguments.get("query") or arguments.get("text") or arguments.get("texts")
        return {"model": _model(instance), "input": value,
                "input_count": len(value) if isinstance(value, list) else 1}
    if obs_type is ObservationType.RETRIEVER:
        query = arguments.get("str_or_query_bundle") or arguments.get("query_bundle") or arguments.get("query_str")
        if "nodes" in arguments:  # a reranker: the candidates it was given, and how many it keeps (``top_n``)
            return {"query": _query(query), "store": type(instance).__name__, "top_k": _top_k(instance, "top_n"),
                    "metadata": {"input_count": len(arguments["nodes"] or ())}}
        return {"query": _query(query), "store": type(instance).__name__, "top_k": _top_k(instance)}
    if obs_type is ObservationType.TOOL:
        return {"tool_name": tool_name(instance), "arguments": _tool_arguments(instance, arguments),
                "metadata": {"method": f"{type(instance).__name__}.{method}"}}
    if _ingestion(instance):
        return _ingestion_start(instance, arguments)
    if method in PREDICTIONS:
        return _prediction_start(arguments)
    if "start_event" in arguments:  # a workflow's (or agent's) run
        name = getattr(instance, "name", None) if obs_type is ObservationType.AGENT else None
        return {"input": _run_input(arguments["start_event"]),
                "metadata": {"agent_name": name} if isinstance(name, str) else None}
    value = arguments.get("str_or_query_bundle") or arguments.get("query") or arguments.get("message")
    return {"input": _query(value) if value is not None else None}


def end_fields(obs_type: ObservationType, result: Any, instance: Any = None) -> dict[str, Any]:
    """The fields of a call's observation read from what it returned (by ``instance``)."""
    if obs_type is ObservationType.GENERATION:
        reply = getattr(result, "message", None)
        output = message(reply) if reply is not None else getattr(result, "text", None)
        return {"output": output, "usage": usage(result)}
    if obs_type is ObservationType.EMBEDDING:
        batch = len(result) == 0 or hasattr(result[0], "__len__")  # a batch (lists or arrays), or one vector
        vectors = result if batch else [result]
        return {"dimensions": (len(vectors[0]) or None) if len(vectors) else None,
                "output": {"count": len(vectors)}}
    if obs_type is ObservationType.RETRIEVER:
        nodes = list(result or ())
        documents, metadata = recorded((_document(item) for item in nodes), len(nodes))
        scores = [d["score"] for d in documents if "score" in d]
        return {"documents": documents, "doc_count": len(nodes), "scores": scores or None, "metadata": metadata or None}
    if obs_type is ObservationType.TOOL:
        content = getattr(result, "content", result)
        if getattr(result, "is_error", False) is True:  # a ToolOutput reporting the tool's failure to the agent
            return {"result": content, "error": str(content) or "the tool reported an error"}
        return {"result": content}
    if instance is not None and _ingestion(instance):  # the nodes themselves are the vector store's
        return {"output": {"nodes": _size(result)}}
    if obs_type is ObservationType.AGENT or _event_kind(type(result)) == "stop":
        return {"output": _run_output(result)}
    if _event_kind(type(result)):  # the event a workflow step returned: what runs next
        return {"output": event_fields(result), "metadata": {"output_event": type(result).__name__}}
    if callable(getattr(result, "model_dump", None)):  # a structured prediction's object, whole
        return {"output": result}
    return {"output": getattr(result, "response", result)}


def streamed_output(method: str, text: str, last: Any) -> Any:
    """A streamed generation's output: the text the caller received, as the reply message of a chat
    (with the tool calls of its last chunk, ``last``: a reply may ask for calls and have no text).
    A stream whose chunks had no ``delta`` (a ``StructuredLLM``'s: each holds the answer so far)
    answered with its last chunk's text."""
    if "chat" not in method:
        return text or getattr(last, "text", None) or ""
    reply = getattr(last, "message", None)
    entry = message(reply) if reply is not None else {"role": "assistant"}
    if text or "tool_calls" not in entry:
        entry["content"] = text or entry.get("content") or ""
    return entry
