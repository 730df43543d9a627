"""LlamaIndex (llama-index-core): spans of its instrumentation dispatcher become typed observations.

A span handler and an event handler join the root dispatcher. Which LlamaIndex spans are
recorded (all others are skipped, and their children attach to the nearest recorded ancestor):

- ``BaseQueryEngine.query/aquery``, ``BaseChatEngine.chat/...``, synthesizers ``synthesize`` -> chain
- ``BaseRetriever.retrieve/aretrieve`` -> retriever (query, documents with scores, doc_count)
- node postprocessors ``postprocess_nodes`` (rerankers) -> retriever with ``operation="rerank"``
- ``BaseLLM.chat/complete`` and their stream and async forms -> generation
- ``BaseEmbedding.get_*embedding*`` public methods -> embedding
- ``BaseTool.call/acall`` -> tool; agents (classes named ``*Agent*``, ``run``/``chat``) -> agent
- other workflows' ``run`` -> chain, so the LLM calls of a workflow's steps share its trace

While a recorded span runs its OTel span is current, so an OpenAI call made by the LLM nests
under it and is recorded once (see ``ownership``). A streamed LLM call stays open until its
stream ends, fails or is dropped unfinished (then with the text it gave), and records its first
token. A ``CustomLLM``'s ``astream_*`` iterates its ``stream_*`` lazily, outside its own span: that
``stream_*`` is recognised (same LLM, same input object) and not recorded a second time.

A streaming query returns before its LLM is called: reading ``response_gen`` calls it. That
generator is relayed (``_responses``) so each step runs under the synthesis, whose chains end with
the streamed text.
"""

from __future__ import annotations

import inspect
import weakref
from collections import OrderedDict
from typing import Any

from opentelemetry import trace

from ... import bounds, recorder
from ..._internal import count, guarded_failure
from ...observation import Observation, ObservationType, make_current, release_if_current
from ...runtime import state
from .. import ownership
from ..base import Integration
from ..documents import recorded
from ._responses import Response, ResponseRelay

_MAX_OPEN = 10_000
_LLM_METHODS = frozenset({"chat", "complete", "stream_chat", "stream_complete", "achat", "acomplete",
                          "astream_chat", "astream_complete"})
_ONE_PER_CALL = frozenset({ObservationType.GENERATION, ObservationType.EMBEDDING})
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "tool": "tool"}


def _classify(instance: Any, method: str) -> tuple[ObservationType, dict[str, Any]] | None:
    """The observation type for a dispatcher span, or None to skip it."""
    if instance is None:
        return None
    kinds = {cls.__name__ for cls in type(instance).__mro__}
    if "BaseNodePostprocessor" in kinds:  # only its abstract _postprocess_nodes is instrumented
        return (ObservationType.RETRIEVER, {"operation": "rerank"}) if "postprocess_nodes" in method else None
    if method.startswith("_"):
        return None
    if "BaseLLM" in kinds:
        return (ObservationType.GENERATION, {}) if method in _LLM_METHODS else None
    if "BaseEmbedding" in kinds:
        return (ObservationType.EMBEDDING, {}) if "embedding" in method else None
    if "BaseRetriever" in kinds:
        return (ObservationType.RETRIEVER, {}) if method in ("retrieve", "aretrieve") else None
    if "BaseTool" in kinds or "AsyncBaseTool" in kinds:
        return (ObservationType.TOOL, {}) if method in ("call", "acall", "__call__") else None
    if any("Agent" in kind for kind in kinds):
        return (ObservationType.AGENT, {}) if method in ("run", "chat", "achat", "query", "aquery") else None
    if "Workflow" in kinds and method == "run":  # its steps run in tasks of their own, under it
        return ObservationType.CHAIN, {}
    if "BaseQueryEngine" in kinds and method in ("query", "aquery"):
        return ObservationType.CHAIN, {}
    if "BaseChatEngine" in kinds and "chat" in method:
        return ObservationType.CHAIN, {}
    if "BaseSynthesizer" in kinds and method in ("synthesize", "asynthesize"):
        return ObservationType.CHAIN, {}
    return None


def _query(value: Any) -> Any:
    return getattr(value, "query_str", value)


def _document(item: Any) -> dict[str, Any]:
    node = getattr(item, "node", item)
    text = getattr(node, "text", None) or (node.get_content() if hasattr(node, "get_content") else "")
    return {"id": getattr(node, "node_id", None), "score": getattr(item, "score", None), "content": str(text)[:200]}


def _message(message: Any) -> dict[str, Any]:
    role = getattr(getattr(message, "role", None), "value", None) or str(getattr(message, "role", "user"))
    entry = {"role": _ROLES.get(role, role), "content": getattr(message, "content", str(message))}
    extra = getattr(message, "additional_kwargs", None)
    extra = extra if isinstance(extra, dict) else {}
    # the calls a function-calling LLM asked for: blocks (core's own form) or OpenAI-style kwargs
    calls = [{"id": b.tool_call_id, "name": b.tool_name, "arguments": b.tool_kwargs}
             for b in getattr(message, "blocks", None) or () if type(b).__name__ == "ToolCallBlock"]
    calls = calls or extra.get("tool_calls")
    if calls:
        entry["tool_calls"] = calls
    if extra.get("tool_call_id"):  # which call a tool result answers
        entry["tool_call_id"] = extra["tool_call_id"]
    return entry


def _method(id_: str) -> str:
    """The method name in a LlamaIndex span id (``Class.method-uuid``)."""
    return id_.split("-", 1)[0].rsplit(".", 1)[-1]


def _llm_input(method: str, arguments: dict[str, Any]) -> Any:
    """The messages (chat) or prompt (completion) an LLM call was given."""
    positional = arguments.get("args") or ()  # LLM callbacks wrap methods as (_self, *args, **kwargs)
    keywords = arguments.get("kwargs")
    keywords = keywords if isinstance(keywords, dict) else {}
    name = "messages" if "chat" in method else "prompt"
    return arguments.get(name) or (positional[0] if positional else keywords.get(name))


def _run_input(event: Any) -> Any:
    """A workflow run's input: an agent's user message, else its start event's fields."""
    message = getattr(event, "user_msg", None)
    if message is not None:
        return getattr(message, "content", message)
    fields = getattr(event, "to_dict", None)
    return fields() if callable(fields) else None


def _run_output(result: Any) -> Any:
    """A workflow run's output: its stop event's result (an agent's reply text)."""
    value = getattr(result, "result", result) if type(result).__name__.endswith("StopEvent") else result
    reply = getattr(value, "response", None)  # an agent's AgentOutput
    return getattr(reply, "content", reply) if reply is not None else value


def _usage(result: Any) -> dict[str, int] | None:
    """Token usage from a response's ``raw`` (an object or dict), if it has it: OpenAI chat names
    (``prompt_tokens``) or Anthropic and OpenAI Responses names (``input_tokens``)."""
    raw = getattr(result, "raw", None)
    usage = raw.get("usage") if isinstance(raw, dict) else getattr(raw, "usage", None)
    if usage is None:
        return None

    def read(key: str) -> Any:
        return usage.get(key) if isinstance(usage, dict) else getattr(usage, key, None)

    for names in (("prompt_tokens", "completion_tokens"), ("input_tokens", "output_tokens")):
        counts = [read(k) for k in names]
        if all(type(n) is int for n in counts):
            total = read("total_tokens")
            return {"input": counts[0], "output": counts[1],
                    "total": total if type(total) is int else counts[0] + counts[1]}
    return None


def _model(instance: Any) -> str | None:
    for attribute in ("model", "model_name"):
        value = getattr(instance, attribute, None)
        if isinstance(value, str):
            return value
    metadata = getattr(instance, "metadata", None)
    name = getattr(metadata, "model_name", None)
    return name if isinstance(name, str) else type(instance).__name__


def _start_fields(obs_type: ObservationType, instance: Any, method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    if obs_type is ObservationType.GENERATION:
        value = _llm_input(method, arguments)
        chat = "chat" in method
        return {"model": _model(instance), "provider": "llama_index",
                "input": [_message(m) for m in value] if chat and value is not None else value,
                "operation": "chat" if chat else "text_completion"}
    if obs_type is ObservationType.EMBEDDING:
        value = arguments.get("query") or arguments.get("text") or arguments.get("texts")
        return {"model": _model(instance), "input": value,
                "input_count": len(value) if isinstance(value, list) else 1}
    if obs_type is ObservationType.RETRIEVER:
        query = arguments.get("str_or_query_bundle") or arguments.get("query_bundle") or arguments.get("query_str")
        if query is None and "nodes" in arguments:  # a reranker
            return {"store": type(instance).__name__, "metadata": {"input_count": len(arguments["nodes"] or ())}}
        return {"query": _query(query), "store": type(instance).__name__}
    if obs_type is ObservationType.TOOL:
        name = getattr(getattr(instance, "metadata", None), "name", None) or type(instance).__name__
        return {"tool_name": name, "arguments": {k: v for k, v in arguments.items() if k != "self"}}
    if "start_event" in arguments:  # a workflow's (or agent's) run
        return {"input": _run_input(arguments["start_event"])}
    value = arguments.get("str_or_query_bundle") or arguments.get("query") or arguments.get("message")
    return {"input": _query(value) if value is not None else None}


def _end_fields(obs_type: ObservationType, result: Any) -> dict[str, Any]:
    if obs_type is ObservationType.GENERATION:
        message = getattr(result, "message", None)
        output = _message(message) if message is not None else getattr(result, "text", None)
        return {"output": output, "usage": _usage(result)}
    if obs_type is ObservationType.EMBEDDING:
        batch = len(result) == 0 or hasattr(result[0], "__len__")  # a batch (lists or arrays), or one vector
        vectors = result if batch else [result]
        return {"dimensions": (len(vectors[0]) or None) if len(vectors) else None,
                "output": {"count": len(vectors)}}
    if obs_type is ObservationType.RETRIEVER:
        nodes = list(result or ())
        documents, metadata = recorded((_document(item) for item in nodes), len(nodes))
        scores = [d["score"] for d in documents if d["score"] is not None]
        return {"documents": documents, "doc_count": len(nodes), "scores": scores or None, "metadata": metadata or None}
    if obs_type is ObservationType.TOOL:
        content = getattr(result, "content", result)
        if getattr(result, "is_error", False) is True:  # a ToolOutput reporting the tool's failure to the agent
            return {"result": content, "level": "ERROR", "status_message": str(content)}
        return {"result": content}
    if obs_type is ObservationType.AGENT or type(result).__name__.endswith("StopEvent"):
        return {"output": _run_output(result)}
    return {"output": getattr(result, "response", result)}


class _Stream:
    """A streamed generation whose call has returned, until its stream ends, fails or is dropped."""

    __slots__ = ("delegate", "deltas", "owning", "ref")

    def __init__(self, delegate: tuple[int, str, int] | None) -> None:
        self.deltas: list[str] = []  # the text so far, held only to the value limit
        self.delegate = delegate  # the key in ``_Tracker.delegates`` while that is unclaimed
        self.ref: weakref.ref[Any] | None = None  # the stream; freed unfinished, it ends the generation
        self.owning: Any = None  # while the stream runs, its model call is this generation's


class _Tracker(ResponseRelay):
    """The open observations by LlamaIndex span id (bounded), shared by both handlers."""

    def __init__(self) -> None:
        self.open: OrderedDict[str, tuple[Observation, Any]] = OrderedDict()
        self.skipped: OrderedDict[str, str | None] = OrderedDict()  # skipped span -> nearest recorded ancestor
        self.streams: OrderedDict[str, _Stream] = OrderedDict()  # streamed generation (also in open) -> its state
        #: (LLM id, ``stream_*`` method, input id) -> the ``astream_*`` generation it would duplicate
        self.delegates: OrderedDict[tuple[int, str, int], str] = OrderedDict()
        self.responses: weakref.WeakKeyDictionary[Any, Response] = weakref.WeakKeyDictionary()  # ``_responses``

    def recorded_ancestor(self, parent_id: str | None) -> str | None:
        while parent_id is not None and parent_id not in self.open:
            if parent_id not in self.skipped:
                return None
            parent_id = self.skipped[parent_id]
        return parent_id

    def start(self, id_: str, instance: Any, parent_id: str | None, arguments: dict[str, Any]) -> None:
        method = _method(id_)
        found = _classify(instance, method)
        ancestor = self.relayed_parent(parent_id)  # started by a relayed response's step
        if ancestor is None:
            ancestor = self.recorded_ancestor(parent_id)
        if found is not None and found[0] is ObservationType.GENERATION and self.delegates:
            outer = self.delegates.pop((id(instance), method, id(_llm_input(method, arguments))), None)
            if outer is not None:  # CustomLLM.astream_* iterating its stream_*: the same call
                found, ancestor = None, outer
        if found is None:
            self.skipped[id_] = ancestor
            self._bound(self.skipped)
            return
        obs_type, extra = found
        parent = self.open.get(ancestor) if ancestor is not None else None
        if parent is not None and parent[0].type is obs_type and obs_type in _ONE_PER_CALL:
            self.skipped[id_] = ancestor  # e.g. acomplete delegating to complete: one generation
            self._bound(self.skipped)
            return
        parent_context = trace.set_span_in_context(parent[0].span) if parent is not None else None
        obs = recorder.start(obs_type, f"{type(instance).__name__}.{method.lstrip('_')}", parent=parent_context)
        obs.update(**_start_fields(obs_type, instance, method, arguments), **extra)
        token = make_current(obs)
        self.open[id_] = (obs, token)
        self._bound(self.open)

    @staticmethod
    def _bound(mapping: OrderedDict[Any, Any]) -> None:
        if len(mapping) > _MAX_OPEN:
            evicted = mapping.popitem(last=False)[1]
            if isinstance(evicted, tuple) and isinstance(evicted[0], Observation):
                evicted[0].end()
            count("llama_index_spans_evicted")

    def exit(self, id_: str, result: Any = None, error: BaseException | None = None, instance: Any = None,
             arguments: dict[str, Any] | None = None) -> None:
        self.skipped.pop(id_, None)
        entry = self.open.get(id_)
        if entry is None:
            return
        obs, token = entry
        release_if_current(obs, token)
        streaming = error is None and (inspect.isgenerator(result) or inspect.isasyncgen(result))
        if streaming and obs.type is ObservationType.GENERATION:
            self._follow(id_, result, instance, arguments or {})
            return  # ends with the stream
        if error is None and obs.type is ObservationType.CHAIN and self._relay(id_, result):
            return  # ends with the response's token stream
        del self.open[id_]
        try:
            if error is not None:
                obs.record_error(error)
            elif result is not None:
                obs.update(**_end_fields(obs.type, result))
        finally:  # a result whose fields cannot be read still ends its observation
            obs.end()

    def _follow(self, id_: str, stream: Any, instance: Any, arguments: dict[str, Any]) -> None:
        """Keep the generation open until ``stream`` ends, fails or is freed unfinished."""
        method = _method(id_)
        delegate = None
        if inspect.isasyncgen(stream) and method.startswith("astream_"):
            delegate = (id(instance), method[1:], id(_llm_input(method, arguments)))
            self.delegates[delegate] = id_
            self._bound(self.delegates)
        tracked = self.streams[id_] = _Stream(delegate)
        self._bound(self.streams)
        tracked.ref = weakref.ref(stream, lambda _: self._dropped(id_))
        entry = self.open.get(id_)
        if entry is not None:  # an LLM that starts its model call inside the stream (OpenAI's)
            tracked.owning = ownership.own_while_running(stream, entry[0])

    def _dropped(self, id_: str) -> None:
        try:
            self._end_stream(id_)
        except Exception as exc:
            guarded_failure("llama_index.stream_dropped", exc)

    def _end_stream(self, id_: str, response: Any = None, error: BaseException | None = None) -> None:
        """End a streamed generation with the text it gave; an error other than the caller closing
        the stream (GeneratorExit) is recorded as the generation's."""
        tracked = self.streams.pop(id_, None)
        entry = self.open.pop(id_, None)
        if tracked is not None:
            ownership.released(tracked.owning)
        if tracked is None or entry is None:
            return
        if tracked.delegate is not None and self.delegates.get(tracked.delegate) == id_:
            del self.delegates[tracked.delegate]
        obs = entry[0]
        text = "".join(tracked.deltas)  # what the caller received
        if error is None or text:
            obs.update(output={"role": "assistant", "content": text} if "chat" in _method(id_) else text)
        if error is not None and not isinstance(error, GeneratorExit):
            obs.record_error(error)
        obs.update(usage=_usage(response))
        obs.end()

    def event(self, event: Any) -> None:
        id_ = getattr(event, "span_id", None) or ""
        tracked = self.streams.get(id_)
        if tracked is None:
            return  # not a stream: the span's exit records the result
        kind = type(event).__name__
        if kind in ("LLMChatInProgressEvent", "LLMCompletionInProgressEvent"):
            entry = self.open.get(id_)
            if entry is not None:
                entry[0].mark_first_token()
            delta = getattr(event.response, "delta", None)
            if isinstance(delta, str):  # a long stream's text is held only to the value limit
                bounds.keep_piece(tracked.deltas, delta, state.max_value_bytes)
        elif kind in ("LLMChatEndEvent", "LLMCompletionEndEvent"):
            self._end_stream(id_, response=event.response)
        elif kind == "ExceptionEvent":  # the stream failed, or the caller closed it (GeneratorExit)
            self._end_stream(id_, error=event.exception)


def _handlers(tracker: _Tracker) -> tuple[Any, Any]:
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.span_handlers import BaseSpanHandler

    class SpanHandler(BaseSpanHandler[Any]):
        @classmethod
        def class_name(cls) -> str:
            return "AutotraceSpanHandler"

        def new_span(self, id_: str, bound_args: Any, instance: Any = None, parent_span_id: str | None = None,
                     tags: Any = None, **kwargs: Any) -> None:
            try:
                tracker.start(id_, instance, parent_span_id, dict(bound_args.arguments))
            except Exception as exc:
                guarded_failure("llama_index.new_span", exc)

        def prepare_to_exit_span(self, id_: str, bound_args: Any, instance: Any = None, result: Any = None,
                                 **kwargs: Any) -> None:
            try:
                tracker.exit(id_, result=result, instance=instance, arguments=bound_args.arguments)
            except Exception as exc:
                guarded_failure("llama_index.exit_span", exc)

        def prepare_to_drop_span(self, id_: str, bound_args: Any, instance: Any = None,
                                 err: BaseException | None = None, **kwargs: Any) -> None:
            try:
                tracker.exit(id_, error=err)
            except Exception as exc:
                guarded_failure("llama_index.drop_span", exc)

    class EventHandler(BaseEventHandler):
        @classmethod
        def class_name(cls) -> str:
            return "AutotraceEventHandler"

        def handle(self, event: Any, **kwargs: Any) -> None:
            try:
                tracker.event(event)
            except Exception as exc:
                guarded_failure("llama_index.event", exc)

    return SpanHandler(), EventHandler()


class LlamaIndexIntegration(Integration):
    name = "llama_index"
    distribution = "llama-index-core"
    module = "llama_index.core"
    supported = ">=0.12,<0.15"

    def __init__(self) -> None:
        super().__init__()
        self.tracker: _Tracker | None = None
        self._handlers: tuple[Any, Any] | None = None

    def _instrument(self) -> None:
        from llama_index.core.instrumentation import get_dispatcher

        self.tracker = _Tracker()
        span_handler, event_handler = _handlers(self.tracker)
        root = get_dispatcher()
        root.add_span_handler(span_handler)
        root.add_event_handler(event_handler)
        self._handlers = (span_handler, event_handler)

    def _uninstrument(self) -> None:
        from llama_index.core.instrumentation import get_dispatcher

        if self._handlers is not None:
            root = get_dispatcher()
            span_handler, event_handler = self._handlers
            root.span_handlers = [h for h in root.span_handlers if h is not span_handler]
            root.event_handlers = [h for h in root.event_handlers if h is not event_handler]
        self._handlers = None
        self.tracker = None


INTEGRATION = LlamaIndexIntegration()
