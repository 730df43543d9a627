"""LlamaIndex (llama-index-core): spans of its instrumentation dispatcher become typed observations.

A span handler and an event handler join the root dispatcher. Which LlamaIndex spans are
recorded (all others are skipped, and their children attach to the nearest recorded ancestor):

- ``BaseQueryEngine.query/aquery``, ``BaseChatEngine.chat/...``, synthesizers ``synthesize`` -> chain
- ``BaseRetriever.retrieve/aretrieve`` -> retriever (query, top_k, documents with scores, doc_count)
- node postprocessors ``postprocess_nodes`` (rerankers) -> retriever with ``operation="rerank"``; their
  async ``apostprocess_nodes`` too, which is no span of LlamaIndex's (``_rerank``)
- ``BaseLLM.chat/complete`` and their stream and async forms -> generation (with the LLM's model parameters)
- ``LLM.structured_predict``, ``predict_and_call`` and their async forms -> chain (input: the prompt's
  variables, or the user's message; output: the object, or the reply), so the model call and the
  tool calls it answers with share a trace; a function-calling LLM's ``predict_and_call`` too, which
  is no span of LlamaIndex's (``_predict``); inside an LLM's call (a ``StructuredLLM``'s) or another
  such chain (a structured prediction's program) it is that call, not recorded again; a streamed
  structured prediction (``stream_structured_predict``) stays open until its stream of partial objects
  ends, with the last as its output (``_predict``)
- ``BaseEmbedding.get_*embedding*`` public methods -> embedding
- ``BaseTool.__call__/call/acall`` -> tool, named after the tool (``tool_name``; its class and method:
  ``metadata.method``), with the arguments the model gave by name (``_fields._tool_arguments``)
- agents (classes named ``*Agent*``, ``run``/``chat``) -> agent (an agent's name: ``agent_name``)
- other workflows' ``run`` -> chain (input: its start event's fields), so the LLM calls of a workflow's
  steps share its trace; each step of those a chain under it, with the events it took and gave; in an
  agent workflow, each generation and tool carries the name of the agent that ran it (``agent_name``),
  and each tool the id of the call it answers; a tool call no tool ran is recorded too; in an
  ``AgentWorkflow``, each agent's turn is an agent observation named after it (``_agents``)
- a tool's call delegating to the same tool (``acall`` -> ``call``, an async adapter) is one tool
- ``IngestionPipeline.run/arun`` -> chain (input: document and node counts; output: node count)

While a recorded span runs its OTel span is current, so an OpenAI call made by the LLM nests
under it and is recorded once (see ``ownership``). A streamed LLM call stays open until its
stream ends (``_streams``) and records its first token. A streaming query or chat returns before
its LLM is called or its reply written: its chains end with the streamed text (``_responses``).
``Dispatcher.shutdown()`` ends every observation still open, as a WARNING; so does a workflow run
cancelled by its caller (``handler.cancel_run()``), with a tool call whose step it cancelled before
the tool ran, and a chat engine's reply whose writer was cancelled (with the text read). A call
that a step's ``ctx.wait_for_event`` suspends (human in the loop) is not failed: it ends DEFAULT,
saying what it waits for. A workflow whose steps run in another process carries the trace there
(``_propagation``). Uninstalling ends what is open as a shutdown does; the handlers stay, recording
nothing, until the spans still running exit and give their context back.
"""

from __future__ import annotations

import inspect
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from ... import recorder
from ..._internal import count, guarded_failure
from ...context import left_trace_of
from ...observation import Observation, ObservationType, make_current, release_if_current
from .. import ownership
from ..base import Integration
from . import _propagation
from ._agents import AgentSteps, ToolStep, multi_agent
from ._fields import (
    PREDICTIONS,
    STREAMED_PREDICTIONS,
    end_fields,
    llm_input,
    method_of,
    start_fields,
    step_fields,
    tool_name,
)
from ._predict import PredictPatches
from ._rerank import RerankPatches
from ._responses import Response, ResponseRelay
from ._streams import Stream, StreamFollower
from ._usage import usage

_MAX_OPEN = 10_000
_LLM_METHODS = frozenset({"chat", "complete", "stream_chat", "stream_complete", "achat", "acomplete",
                          "astream_chat", "astream_complete"})
_ONE_PER_CALL = frozenset({ObservationType.GENERATION, ObservationType.EMBEDDING})
_BY_AGENT = frozenset({ObservationType.GENERATION, ObservationType.TOOL})  # tagged with the agent that ran them
_AGENT_STEPS = frozenset({"run_agent_step", "call_tool"})  # ``_agents``
_SHUTDOWN = "LlamaIndex dispatcher shut down before the span ended"
_UNINSTALLED = "autotrace was uninstalled before the span ended"


def _classify(instance: Any, method: str) -> tuple[ObservationType, dict[str, Any]] | None:
    """The observation type for a dispatcher span, or None to skip it."""
    if instance is None:
        return None
    kinds = {cls.__name__ for cls in type(instance).__mro__}
    if "BaseNodePostprocessor" in kinds:  # only its abstract _postprocess_nodes is instrumented
        return (ObservationType.RETRIEVER, {"operation": "rerank"}) if "postprocess_nodes" in method else None
    if "BaseTool" in kinds or "AsyncBaseTool" in kinds:  # a BaseTool implements only ``__call__``
        return (ObservationType.TOOL, {}) if method in ("call", "acall", "__call__") else None
    if method.startswith("_"):
        return None
    if "BaseLLM" in kinds:
        if method in _LLM_METHODS:
            return ObservationType.GENERATION, {}
        return (ObservationType.CHAIN, {}) if method in PREDICTIONS else None
    if "BaseEmbedding" in kinds:
        return (ObservationType.EMBEDDING, {}) if "embedding" in method else None
    if "BaseRetriever" in kinds:
        return (ObservationType.RETRIEVER, {}) if method in ("retrieve", "aretrieve") else None
    if "IngestionPipeline" in kinds:  # its transformations and embedding batches run under it
        return (ObservationType.CHAIN, {}) if method in ("run", "arun") else None
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


class _Tracker(StreamFollower, ResponseRelay, AgentSteps):
    """The open observations by LlamaIndex span id (bounded), shared by both handlers."""

    #: once uninstalled (``retire``): called when no span it recorded is still running
    drained: Callable[[], None] | None = None

    def __init__(self) -> None:
        self.open: OrderedDict[str, tuple[Observation, Any]] = OrderedDict()
        self.skipped: OrderedDict[str, str | None] = OrderedDict()  # skipped span -> nearest recorded ancestor
        self.streams: OrderedDict[str, Stream] = OrderedDict()  # ``_streams``
        self.delegates: OrderedDict[tuple[int, str, int], str] = OrderedDict()
        self.bases: OrderedDict[str, str] = OrderedDict()  # ``_responses.relay_overridden``
        self.responses: weakref.WeakKeyDictionary[Any, Response] = weakref.WeakKeyDictionary()  # ``_responses``
        self.chats: OrderedDict[int, Response] = OrderedDict()
        self.agents: OrderedDict[str, str] = OrderedDict()  # ``_agents``
        self.tool_steps: OrderedDict[str, ToolStep] = OrderedDict()
        self.turns: OrderedDict[str, str | None] = OrderedDict()
        self.workflow_runs: OrderedDict[str, int] = OrderedDict()  # a workflow's run -> id of the workflow

    def recorded_ancestor(self, parent_id: str | None) -> str | None:
        while parent_id is not None and parent_id not in self.open:
            if parent_id not in self.skipped:
                return None
            parent_id = self.skipped[parent_id]
        return parent_id

    def start(self, id_: str, instance: Any, parent_id: str | None, arguments: dict[str, Any]) -> None:
        if self.drained is not None:  # uninstalled: nothing more is recorded
            return
        method = method_of(id_)
        found = _classify(instance, method)
        ancestor = self.relayed_parent(parent_id)  # started by a relayed response's step
        if ancestor is None:
            ancestor = self.recorded_ancestor(parent_id)
        if found is not None and found[0] is ObservationType.GENERATION and self.delegates:
            outer = self.delegates.pop((id(instance), method, id(llm_input(method, arguments))), None)
            if outer is not None:  # CustomLLM.astream_* iterating its stream_*: the same call
                found, ancestor = None, outer
        if found is not None and self.streams and (found[0] is ObservationType.GENERATION or method in PREDICTIONS):
            outer = self._running_stream()  # a StructuredLLM's stream reading its LLM's
            if outer is not None:
                found, ancestor = None, outer
        step = found is None and bool(self.workflow_runs) and self._is_step(parent_id, instance)
        if step:
            found = ObservationType.CHAIN, {}
        if found is None:
            if ancestor is not None and method in _AGENT_STEPS:
                self._agent_step(id_, method, ancestor, arguments)
            self.skipped[id_] = ancestor
            self._bound(self.skipped)
            return
        obs_type, extra = found
        run = ancestor
        if self.turns and ancestor in self.turns:  # a multi-agent run: under the agent whose turn it is
            ancestor = self.turns[ancestor] or ancestor
        parent = self.open.get(ancestor) if ancestor is not None else None
        if parent is not None and left_trace_of(parent[0].span):  # in a tenant() block: b's own trace
            parent = None
        if parent is not None and _same_call(parent[0], obs_type, instance, method):
            self.skipped[id_] = ancestor  # e.g. acomplete delegating to complete: one generation
            self._bound(self.skipped)
            if method in STREAMED_PREDICTIONS and ancestor is not None:  # an LLM's override calling its base's
                self.bases[id_] = ancestor
                self._bound(self.bases)
            return
        fields = step_fields(arguments) if step else start_fields(obs_type, instance, method, arguments)
        name = (fields["tool_name"] if obs_type is ObservationType.TOOL  # a tool is named after itself
                else ".".join(id_.split("-", 1)[0].rsplit(".", 2)[-2:]) if step  # its workflow's class, and its own
                else f"{type(instance).__name__}.{method.lstrip('_')}")
        parent_context = trace.set_span_in_context(parent[0].span) if parent is not None else None
        obs = recorder.start_with(obs_type, name, "llama_index.new_span", parent=parent_context, **fields, **extra)
        self.open[id_] = (obs, make_current(obs))  # listed first: whatever fails below, its exit ends it
        self._bound(self.open)
        if self.tool_steps and obs_type is ObservationType.TOOL:  # first: the step's call is then not recorded again
            self._tool_started(parent_id, obs)
        if obs_type is ObservationType.AGENT and multi_agent(instance):
            self._turns_start(id_)
        elif obs_type is ObservationType.CHAIN and "start_event" in arguments:  # its steps are recorded under it
            self.workflow_runs[id_] = id(instance)
            self._bound(self.workflow_runs)
        if self.agents and obs_type in _BY_AGENT and run in self.agents:
            obs.update(metadata={"agent_name": self.agents[run]})

    def _is_step(self, parent_id: str | None, instance: Any) -> bool:
        """Whether a span LlamaIndex started right under a workflow's run is one of its steps (run
        as a function, or a method of that workflow's: llama-index-core 0.12's)."""
        run = self.workflow_runs.get(parent_id) if parent_id is not None else None
        return run is not None and (instance is None or id(instance) == run)

    def event(self, event: Any) -> None:
        if self.drained is not None:
            return
        if type(event).__name__ == "SpanCancelledEvent":
            self._cancelled(event)
        else:
            super().event(event)

    def _cancelled(self, event: Any) -> None:
        """A workflow run cancelled by its caller (``handler.cancel_run()``), or a step cancelled
        with its run, exits its span with no error, as if it had returned None: interrupted, not
        failed, nor done."""
        id_ = getattr(event, "span_id", None) or ""
        reason = getattr(event, "reason", None) or "cancelled"
        entry = self.open.get(id_)
        if entry is not None:
            entry[0].set_level("WARNING", reason)
        elif self.tool_steps and id_ in self.tool_steps:
            self.tool_steps[id_].cancelled = reason

    def _bound(self, mapping: OrderedDict[Any, Any]) -> None:
        if len(mapping) > _MAX_OPEN:
            evicted = mapping.popitem(last=False)[1]
            if isinstance(evicted, tuple) and isinstance(evicted[0], Observation):
                evicted[0].end()
            elif isinstance(evicted, Response):
                self._response_ended(evicted, None)
            count("llama_index_spans_evicted")

    def exit(self, id_: str, result: Any = None, error: BaseException | None = None, instance: Any = None,
             arguments: dict[str, Any] | None = None) -> None:
        ancestor = self.skipped.pop(id_, None)
        entry = self.open.get(id_)
        if entry is None:
            if ancestor is not None and result is not None and method_of(id_) in _LLM_METHODS:
                self._delegated_usage(ancestor, result)
            if self.bases:
                self.relay_overridden(id_, result, error)
            if self.tool_steps:
                self._tool_step_done(id_, result, error)
            if self.chats and method_of(id_).endswith("write_response_to_history"):
                self._chat_written(id(instance), instance, error)  # a chat engine's streaming reply, written
            return
        if self.agents:
            self.agents.pop(id_, None)
        if self.workflow_runs:
            self.workflow_runs.pop(id_, None)
        obs, token = entry
        try:
            if self.tool_steps:  # a run cancelled while a tool step runs ends before that step
                self._steps_outlived(id_, error)
            if self.turns and id_ in self.turns:  # the turn of the agent that ran last ends with the run
                self._turns_end(id_, result, error)
        except Exception as exc:  # the run still ends, and gives its context back
            guarded_failure("llama_index.exit_span", exc)
        release_if_current(obs, token)
        if obs.ended:  # ended by a shutdown while it ran: only its context was left to give back
            self.open.pop(id_, None)
            if self.drained is not None and not self.open:
                self.drained()
            return
        try:
            if self._ends_later(id_, obs, result, error, instance, arguments):
                return
        except Exception as exc:  # it ends now, with what it has: the stream or response is the caller's to read
            guarded_failure("llama_index.exit_span", exc)
            result = None
        self.open.pop(id_, None)
        self._ended(obs, result, error, instance)

    def _delegated_usage(self, ancestor: str, result: Any) -> None:
        """A model call not recorded apart from the generation it serves (a ``StructuredLLM``'s
        call of its LLM, whose reply holds the object, not the usage): its usage is that
        generation's, unless it has one (an OpenAI request it owns gave it)."""
        entry = self.open.get(ancestor)
        try:
            if entry is not None and entry[0].type is ObservationType.GENERATION and not entry[0].ended:
                ownership.enrich(entry[0], usage=usage(result))
        except Exception as exc:  # a reply whose usage cannot be read: the exit goes on
            guarded_failure("llama_index.exit_span", exc)

    def _ends_later(self, id_: str, obs: Observation, result: Any, error: BaseException | None, instance: Any,
                    arguments: dict[str, Any] | None) -> bool:
        """Whether ``obs`` ends later: a streamed generation with its stream, a streaming chain with
        its response's token stream or when its chat reply is written."""
        if error is not None:
            return False
        if obs.type is ObservationType.GENERATION and (inspect.isgenerator(result) or inspect.isasyncgen(result)):
            self._follow(id_, result, instance, arguments or {})
            return True
        if obs.type is ObservationType.CHAIN and method_of(id_) in STREAMED_PREDICTIONS:
            return self._relay_prediction(id_, result)
        return obs.type is ObservationType.CHAIN and (self._relay(id_, result) or self._follow_chat(id_, result))

    @staticmethod
    def _ended(obs: Observation, result: Any, error: BaseException | None, instance: Any) -> None:
        """Record how a call ended (its result or error) and end its observation."""
        try:
            if error is not None and type(error).__name__ == "WaitingForEvent":
                obs.set_level("DEFAULT", _waiting(error))  # not failed: run again once the event arrives
            elif error is not None:
                obs.record_error(error)
            elif result is not None:
                fields = end_fields(obs.type, result, instance)
                ownership.enrich(obs, usage=fields.pop("usage", None))  # a model call it owns gave exact usage
                obs.update(**fields)
        finally:  # a result whose fields cannot be read still ends its observation
            obs.end()

    def close(self, reason: str = _SHUTDOWN) -> None:
        """LlamaIndex's dispatcher shuts down: end every open observation once, as a WARNING, with
        what it has (a stream's text so far). One still running stays listed until its span exits,
        which gives its context back."""
        for obs, _ in list(self.open.values()):
            if "level" not in obs.fields:
                obs.set_level("WARNING", reason)
        for id_ in list(self.streams):
            self._end_stream(id_)
        for key in list(self.chats):
            self._chat_written(key, None)
        for tracked in list(self.responses.values()):
            self._response_ended(tracked, None)
        self.agents.clear()
        self.tool_steps.clear()
        self.workflow_runs.clear()
        for obs, _ in list(self.open.values()):
            obs.end()
        for key in self.turns.values():  # no span exits for an agent's turn: given back here
            self.open.pop(key or "", None)
        self.turns.clear()

    def retire(self, drained: Callable[[], None]) -> None:
        """autotrace is uninstalled: end what is open as ``close`` does and record nothing more. The
        spans still running keep their observation current where they run until they exit: their
        exits are awaited to give it back (else that thread or task would keep it, and a later
        install's spans there would join that ended trace); ``drained`` is called after the last."""
        self.drained = drained
        self.close(_UNINSTALLED)
        self.skipped.clear()
        self.bases.clear()
        if not self.open:
            drained()


def _same_call(parent: Observation, obs_type: ObservationType, instance: Any, method: str) -> bool:
    """Whether a call starting under ``parent`` is the same call: a generation or embedding under
    one; a prediction (``PREDICTIONS``) under a generation (a ``StructuredLLM``'s) or under another
    (its program's ``predict_and_call``, or an LLM's delegating to another's); a tool's ``acall``
    delegating to its ``call`` (or an async adapter to the tool it wraps), which has its name; a
    postprocessor's ``apostprocess_nodes`` running its ``_postprocess_nodes`` (``_rerank``)."""
    if obs_type is ObservationType.CHAIN and method in PREDICTIONS:
        return parent.type is ObservationType.GENERATION or (
            parent.type is ObservationType.CHAIN and parent.name.rsplit(".", 1)[-1] in PREDICTIONS)
    if parent.type is not obs_type:
        return False
    if obs_type in _ONE_PER_CALL:
        return True
    if obs_type is ObservationType.TOOL:
        return parent.fields.get("tool_name") == tool_name(instance)
    return parent.fields.get("operation") == "rerank" and parent.fields.get("store") == type(instance).__name__


def _waiting(error: BaseException) -> str:
    """The status of a step suspended by ``ctx.wait_for_event`` (human in the loop): the workflow
    runs it again, from its start, when the awaited event arrives."""
    event_type = getattr(getattr(error, "add", None), "event_type", None)
    name = getattr(event_type, "__name__", None) or "an event"
    return f"suspended: waiting for {name}, run again when it arrives"


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
                tracker.exit(id_, error=err, instance=instance)
            except Exception as exc:
                guarded_failure("llama_index.drop_span", exc)

        def capture_propagation_context(self) -> dict[str, Any]:  # llama-index-instrumentation >= 0.6
            try:
                return _propagation.capture()
            except Exception as exc:
                guarded_failure("llama_index.capture_context", exc)
                return {}

        def restore_propagation_context(self, context: dict[str, Any]) -> None:
            try:
                _propagation.restore(context)
            except Exception as exc:
                guarded_failure("llama_index.restore_context", exc)

        def close(self) -> None:  # Dispatcher.shutdown(): it drops only the spans in our (empty) open_spans
            try:
                tracker.close()
            except Exception as exc:
                guarded_failure("llama_index.close", exc)

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
        self._reranks = RerankPatches(self.patcher, lambda: self.tracker)
        self._predictions = PredictPatches(self.patcher, lambda: self.tracker)

    def _instrument(self) -> None:
        from llama_index.core.instrumentation import get_dispatcher

        self.tracker = _Tracker()
        span_handler, event_handler = _handlers(self.tracker)
        root = get_dispatcher()
        root.add_span_handler(span_handler)
        root.add_event_handler(event_handler)
        self._handlers = (span_handler, event_handler)
        self._reranks.apply()
        self._predictions.apply()

    def _uninstrument(self) -> None:
        self._reranks.remove()
        self._predictions.remove()
        tracker, handlers = self.tracker, self._handlers
        self._handlers = None
        self.tracker = None
        if handlers is not None and tracker is not None:
            tracker.retire(lambda: _remove(handlers))  # the handlers stay until its running spans exit
        elif handlers is not None:
            _remove(handlers)


def _remove(handlers: tuple[Any, Any]) -> None:
    """Take the span and event handlers out of LlamaIndex's root dispatcher."""
    from llama_index.core.instrumentation import get_dispatcher

    root = get_dispatcher()
    span_handler, event_handler = handlers
    root.span_handlers = [h for h in root.span_handlers if h is not span_handler]
    root.event_handlers = [h for h in root.event_handlers if h is not event_handler]


INTEGRATION = LlamaIndexIntegration()
