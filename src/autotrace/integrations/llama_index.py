"""LlamaIndex (llama-index-core): spans of its instrumentation dispatcher become typed observations.

A span handler and an event handler join the root dispatcher. Which LlamaIndex spans are
recorded (all others are skipped, and their children attach to the nearest recorded ancestor):

- ``BaseQueryEngine.query/aquery``, ``BaseChatEngine.chat/...``, synthesizers ``synthesize`` -> chain
- ``BaseRetriever.retrieve/aretrieve`` -> retriever (query, documents with scores, doc_count)
- node postprocessors ``postprocess_nodes`` (rerankers) -> retriever with ``operation="rerank"``
- ``BaseLLM.chat/complete`` and their stream and async forms -> generation
- ``BaseEmbedding.get_*embedding*`` public methods -> embedding
- ``BaseTool.call/acall`` -> tool; agents (classes named ``*Agent*``, ``run``/``chat``) -> agent

While a recorded span runs its OTel span is current, so an OpenAI call made by the LLM nests
under it and is recorded once (see ``ownership``). A streamed LLM call stays open until
LlamaIndex reports the stream's end, and records its first token.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from typing import Any

from opentelemetry import trace

from .. import recorder, schema
from .._internal import count, guarded_failure
from ..observation import Observation, ObservationType, make_current, release_if_current
from ..runtime import state
from .base import Integration

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
    if "BaseQueryEngine" in kinds and method in ("query", "aquery"):
        return ObservationType.CHAIN, {}
    if "BaseChatEngine" in kinds and "chat" in method:
        return ObservationType.CHAIN, {}
    if "BaseSynthesizer" in kinds and method in ("synthesize", "asynthesize"):
        return ObservationType.CHAIN, {}
    return None


def _query(value: Any) -> Any:
    return getattr(value, "query_str", value)


def _documents(nodes: Any) -> list[dict[str, Any]]:
    documents = []
    for item in nodes or ():
        node = getattr(item, "node", item)
        text = getattr(node, "text", None) or (node.get_content() if hasattr(node, "get_content") else "")
        documents.append({"id": getattr(node, "node_id", None), "score": getattr(item, "score", None),
                          "content": str(text)[:200]})
    return documents


def _message(message: Any) -> dict[str, Any]:
    role = getattr(getattr(message, "role", None), "value", None) or str(getattr(message, "role", "user"))
    return {"role": _ROLES.get(role, role), "content": getattr(message, "content", str(message))}


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
        positional = arguments.get("args") or ()  # LLM callbacks wrap methods as (_self, *args, **kwargs)
        first = positional[0] if positional else None
        messages = arguments.get("messages") or (first if "chat" in method else None)
        prompt = arguments.get("prompt") or (first if "chat" not in method else None)
        return {"model": _model(instance), "provider": "llama_index",
                "input": [_message(m) for m in messages] if messages is not None else prompt,
                "operation": "chat" if "chat" in method else "text_completion"}
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
    value = arguments.get("str_or_query_bundle") or arguments.get("query") or arguments.get("message")
    return {"input": _query(value) if value is not None else None}


def _end_fields(obs_type: ObservationType, result: Any) -> dict[str, Any]:
    if obs_type is ObservationType.GENERATION:
        message = getattr(result, "message", None)
        output = _message(message) if message is not None else getattr(result, "text", None)
        raw = getattr(result, "raw", None)
        usage = getattr(raw, "usage", None) if raw is not None and not isinstance(raw, dict) else (raw or {}).get(
            "usage") if isinstance(raw, dict) else None
        fields: dict[str, Any] = {"output": output}
        if usage is not None:
            prompt = getattr(usage, "prompt_tokens", None) if not isinstance(usage, dict) else usage.get("prompt_tokens")
            completion = (getattr(usage, "completion_tokens", None) if not isinstance(usage, dict)
                          else usage.get("completion_tokens"))
            if isinstance(prompt, int) and isinstance(completion, int):
                fields["usage"] = {"input": prompt, "output": completion, "total": prompt + completion}
        return fields
    if obs_type is ObservationType.EMBEDDING:
        vectors = result if result and isinstance(result[0], list) else [result]
        return {"dimensions": len(vectors[0]) if vectors and vectors[0] else None,
                "output": {"count": len(vectors)}}
    if obs_type is ObservationType.RETRIEVER:
        documents = _documents(result)
        scores = [d["score"] for d in documents if d["score"] is not None]
        return {"documents": documents, "doc_count": len(documents), "scores": scores or None}
    if obs_type is ObservationType.TOOL:
        return {"result": getattr(result, "content", result)}
    return {"output": getattr(result, "response", result)}


class _Tracker:
    """The open observations by LlamaIndex span id (bounded), shared by both handlers."""

    def __init__(self) -> None:
        self.open: OrderedDict[str, tuple[Observation, Any]] = OrderedDict()
        self.skipped: OrderedDict[str, str | None] = OrderedDict()  # skipped span -> nearest recorded ancestor
        self.partial: OrderedDict[str, list[str]] = OrderedDict()  # streaming generation -> deltas so far

    def recorded_ancestor(self, parent_id: str | None) -> str | None:
        while parent_id is not None and parent_id not in self.open:
            if parent_id not in self.skipped:
                return None
            parent_id = self.skipped[parent_id]
        return parent_id

    def start(self, id_: str, instance: Any, parent_id: str | None, arguments: dict[str, Any]) -> None:
        method = id_.split("-", 1)[0].rsplit(".", 1)[-1]
        found = _classify(instance, method)
        ancestor = self.recorded_ancestor(parent_id)
        if found is None:
            self.skipped[id_] = ancestor
            self._bound(self.skipped)
            return
        obs_type, extra = found
        parent = self.open.get(ancestor) if ancestor is not None else None
        if parent is not None and parent[0].type is obs_type and obs_type in _ONE_PER_CALL:
            self.skipped[id_] = ancestor  # e.g. acomplete delegating to complete: one generation
            return
        parent_context = trace.set_span_in_context(parent[0].span) if parent is not None else None
        obs = recorder.start(obs_type, f"{type(instance).__name__}.{method.lstrip('_')}", parent=parent_context)
        obs.update(**_start_fields(obs_type, instance, method, arguments), **extra)
        token = make_current(obs)
        self.open[id_] = (obs, token)
        self._bound(self.open)

    @staticmethod
    def _bound(mapping: OrderedDict[str, Any]) -> None:
        if len(mapping) > _MAX_OPEN:
            evicted = mapping.popitem(last=False)[1]
            if isinstance(evicted, tuple) and isinstance(evicted[0], Observation):
                evicted[0].end()
            count("llama_index_spans_evicted")

    def exit(self, id_: str, result: Any = None, error: BaseException | None = None) -> None:
        self.skipped.pop(id_, None)
        entry = self.open.get(id_)
        if entry is None:
            return
        obs, token = entry
        release_if_current(obs, token)
        streaming = error is None and (inspect.isgenerator(result) or inspect.isasyncgen(result))
        if streaming and obs.type is ObservationType.GENERATION:
            return  # ends when LlamaIndex reports the end of the stream
        del self.open[id_]
        if error is not None:
            obs.record_error(error)
        elif result is not None:
            obs.update(**_end_fields(obs.type, result))
        obs.end()

    def event(self, event: Any) -> None:
        kind = type(event).__name__
        entry = self.open.get(getattr(event, "span_id", None) or "")
        if entry is None:
            return
        obs = entry[0]
        if kind in ("LLMChatInProgressEvent", "LLMCompletionInProgressEvent"):
            obs.mark_first_token()
            deltas = self.partial.setdefault(event.span_id, [])
            self._bound(self.partial)
            delta = getattr(event.response, "delta", None)
            if isinstance(delta, str):  # a long stream's text is held only to the value limit
                schema.keep_piece(deltas, delta, state.max_value_bytes)
        elif kind in ("LLMChatEndEvent", "LLMCompletionEndEvent"):
            deltas = self.partial.pop(event.span_id, None)
            if deltas is None:
                return  # not a stream: the span's exit records the result
            del self.open[event.span_id]
            text = "".join(deltas)  # what the caller received
            chat = kind == "LLMChatEndEvent"
            obs.update(output={"role": "assistant", "content": text} if chat else text)
            obs.end()


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
                tracker.exit(id_, result=result)
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
