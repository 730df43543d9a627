"""LangChain (langchain-core): every run becomes a typed observation.

A callback handler is registered through langchain-core's configure hooks, so it joins every
callback manager LangChain creates (invoke, ainvoke, stream, batch, thread pools) with no user
code. Chat models and LLMs become generations, retrievers retrievals, tools tool calls, agent
runs agents, everything else chains. Runs nest by ``parent_run_id``; a root run nests under the
OpenTelemetry span current when it starts. While a run is active its span is current, so an
OpenAI call made by the model nests under it and is recorded once (see ``ownership``); but code
that consumes a stream runs between chunks in its own context: a streamed root chain is current
only in the context LangChain makes for its steps (patched ``_set_config_context``), a generation
stops being current at its first token (its request is made by then). Once a run ends no context
shows its span, even one LangChain's callbacks cannot reach (``langchain_runs.Run``).

What no callback tells: a tool error LangChain turns into the tool's result (``handle_tool_error``/
``handle_validation_error``, patched) marks the tool failed; runs an interruption left without an
end are ended as interrupted (``langchain_interrupts``; the awaited starts, async model calls and
retrievals are patched); a sync stream its caller closed, which LangChain reports done, ends
interrupted with all it yielded (``langchain_convert.closed_stream``), as its async twin is reported
(LangChain gives that no output).

A custom event (``dispatch_custom_event``) is an event observation under the run that dispatched
it, its data the input. What a run's metadata and tags become, and a tool's artifact: see
``langchain_fields``. LangGraph graphs: see ``langchain_graph``.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

from .. import recorder
from .._internal import count, guarded_failure
from ..context import left_trace_of
from ..observation import STREAM_CLOSED, Observation, ObservationType, make_current, release_if_current
from . import langchain_convert as lcv
from . import langchain_fields as lf
from . import langchain_graph as lg
from . import langchain_graph_writes as lgw
from . import langchain_interrupts as lci
from .base import Integration
from .langchain_convert import message_fields, model_reply, run_name, streamed_start
from .langchain_embeddings import embedding_patches
from .langchain_interrupts import CancellablePatches, InterruptedRuns, note_started
from .langchain_runs import LLM_GENERATE, Run, inside_steps, patch_chat_runs, show_in_place
from .langchain_stores import store_patches
from .media import without_media

_MAX_RUNS = 10_000
_ABSENT: Any = object()  # no ``inputs`` given to a chain's end: not LangChain's streaming path


class AutotraceCallbackHandler(lg.GraphRuns, InterruptedRuns):
    """Maps LangChain run callbacks to observations. Every method is guarded."""

    raise_error = False
    run_inline = True
    ignore_llm = ignore_chain = ignore_agent = ignore_retriever = ignore_chat_model = ignore_retry = False
    ignore_custom_event = False

    def __init__(self, marks_streams: bool = False, codes: frozenset[Any] = frozenset(),
                 late: CancellablePatches | None = None) -> None:
        self.late = late  # patches waiting for their module's import to end (``patch_waiting``)
        self.marks_streams = marks_streams  # see ``streamed_start``
        self.stream_codes = codes  # LangChain's streaming generators (``closed_stream``)
        self.runs: OrderedDict[UUID, Run] = OrderedDict()
        self._by_span: dict[int, Context] = {}  # span id of a root run not yet running its steps -> its start context
        self.streaming: dict[UUID, Run] = {}  # streamed roots not yet current for their steps
        self._sweeps: dict[asyncio.Task[Any], dict[int, str]] = {}  # see ``_sweep_at_task_end``
        self.hidden: dict[UUID, UUID | None] = {}  # a hidden LangGraph run -> its nearest recorded ancestor
        self.steps_config: ContextVar[Any] | None = None  # LangChain's config of its steps' context

    # -- bookkeeping --------------------------------------------------------------------------------
    def _start(self, obs_type: ObservationType, name: str, run_id: UUID, parent_run_id: UUID | None,
               metadata: dict[str, Any] | None, streamed: bool = False, tags: list[str] | None = None,
               node: bool = False, serialized: Any = None, **fields: Any) -> Observation | None:
        if parent_run_id is not None and self.steps_config is not None:
            told, parent_run_id = parent_run_id, inside_steps(self.runs, self.steps_config.get(), parent_run_id, name)
            steps = self.runs.get(parent_run_id) if parent_run_id != told else None
            if steps is not None and steps.obs.name == name:  # told the renamed fallbacks run's name: its own
                name = run_name(serialized, {}, name)
        if self.hidden and parent_run_id in self.hidden:  # what a hidden run starts nests above it
            parent_run_id = self.hidden[parent_run_id]
        parent = self.runs.get(parent_run_id) if parent_run_id is not None else None
        if parent is not None and left_trace_of(parent.obs.span):  # in a tenant() block: b's own trace
            parent = None
        if parent is not None:
            outer = trace.set_span_in_context(parent.obs.span)
        else:
            # A root run. If the current span is another root LangChain started in this context and
            # has not run its steps yet (``batch`` starts every input's root before running any),
            # start beside it instead (``steps_started``; a chat model's: ``generating``).
            current = trace.get_current_span().get_span_context().span_id
            found = self._by_span.get(current)
            outer = found if found is not None else trace.set_span_in_context(trace.get_current_span())
        obs = recorder.start(obs_type, name, parent=outer)
        extra, langfuse_tags = lf.run_metadata(obs, metadata, node)
        own = lf.own_tags(tags, parent.tags if parent is not None else None)
        if own:
            extra.setdefault("tags", own)
        obs.update(metadata=extra or None, **fields)
        run = Run(obs, parent_run_id if parent is not None else None, outer, tags, lg.in_graph(metadata))
        if node:  # what it writes to its custom stream is noted on it (``langchain_graph_writes``)
            run.writes, run.task = lgw.Writes(), lg.task_namespace(metadata)
        if obs_type is ObservationType.GENERATION or (metadata and lf.PROMPT_OBJECT in metadata):
            lf.link_prompt(self.runs, run, parent, metadata)
        run.session = self._inherit_session(obs, parent, metadata)
        # a root run's own tags are the trace's (as Langfuse's handler takes them), on every span of its tree
        run.trace_tags = lf.trace_tags(obs, parent.trace_tags if parent is not None else (), langfuse_tags,
                                       own if parent is None else [])
        if not (streamed and parent is None):
            self._attach(run)
        else:  # started in its consumer's context: made current in its steps' context (``steps_started``)
            self.streaming[run_id] = run
        self.runs[run_id] = run
        if parent is None and obs_type is not ObservationType.RETRIEVER:  # no batch starts retrievers in one context
            self._by_span[obs.span.get_span_context().span_id] = outer
        if len(self.runs) > _MAX_RUNS:
            stale_id, stale = self.runs.popitem(last=False)
            self.streaming.pop(stale_id, None)
            self._by_span.pop(stale.obs.span.get_span_context().span_id, None)
            self._release(stale)
            stale.obs.end()
            count("langchain_runs_evicted")
        return obs

    @staticmethod
    def _attach(run: Run) -> None:
        run.token = make_current(run.obs)
        if run.token is not None:
            run.attached = otel_context.get_current()

    def _release(self, run: Run) -> None:
        """Stop showing ``run``'s span: undo its attach where that is in effect, and make every
        other context still showing it show the run's ``outer`` context instead."""
        stale = list(run.fallen.values()) if run.fallen else []
        if run.attached is not None and not release_if_current(run.obs, run.token):
            stale.append(run.attached)
        run.token = run.attached = run.fallen = None
        for context in stale:
            show_in_place(context, run.outer)
        parent = self.runs.get(run.parent_run_id) if run.parent_run_id is not None else None
        if parent is not None and stale:
            if parent.fallen is None:
                parent.fallen = weakref.WeakValueDictionary()
            parent.fallen.update((id(context), context) for context in stale)

    def _end(self, run_id: UUID, error: BaseException | str | None = None, **fields: Any) -> None:
        run = self.runs.pop(run_id, None)
        if run is None:
            if self.hidden:
                self.hidden.pop(run_id, None)
            return
        obs = run.obs
        if error is None and run.handled is not None:  # see ``tool_handled``, ``event_raised``
            error = run.handled
        self._by_span.pop(obs.span.get_span_context().span_id, None)
        if self.streaming:
            self.streaming.pop(run_id, None)
        written = run.writes.recorded() if run.writes is not None else None
        if written is not None:  # a node's, recorded with its output
            fields["metadata"] = {lgw.WRITES_KEY: written}
        if fields:
            obs.update(**fields)
        if isinstance(error, GeneratorExit):  # a stream its reader closed: interrupted, as any stream
            obs.set_level("WARNING", STREAM_CLOSED)
        elif error is not None:
            obs.record_error(error)
        if error is not None and not isinstance(error, (Exception, str)):  # interrupted: runs may be left open
            self._sweep_at_task_end(obs.span.get_span_context().trace_id, error)
        self._release(run)
        obs.end()

    # -- what LangChain does not report ---------------------------------------------------------------
    def tool_handled(self, error: BaseException) -> None:
        """Mark the current tool run failed with ``error``, which LangChain turns into the tool's
        result (``handle_tool_error``, ``handle_validation_error``) and reports to no callback."""
        span = trace.get_current_span()
        for run in reversed(list(self.runs.values())):  # a copy: other threads start and end runs
            if run.obs.span is span:
                if run.obs.type is ObservationType.TOOL:
                    run.handled = lcv.error_text(error)
                return

    def steps_started(self, config: Any) -> None:
        """LangChain has just made the context for a run's steps (the current one). A root run that
        starts in it with no parent told (a call given callbacks of its own, a thread pool LangChain's
        config does not reach) is inside that run, not beside it as a batch's roots are (``_start``).
        A streamed root run is made current in it, as LangChain does for its own tracer: what its
        function calls nests under it. ``_release`` makes that context show the run's parent again
        when it ends."""
        parent_run_id = getattr(config.get("callbacks"), "parent_run_id", None)
        run = self.runs.get(parent_run_id) if parent_run_id is not None else None
        if run is None:
            return
        self._by_span.pop(run.obs.span.get_span_context().span_id, None)
        if self.streaming.pop(parent_run_id, None) is not None:
            self._attach(run)

    def _guard(self, where: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as exc:
            guarded_failure(f"langchain.{where}", exc)

    # -- chains and agents --------------------------------------------------------------------------
    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                       tags: list[str] | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if self.late is not None and self.late.waiting:  # before a graph runs its nodes
            self._guard("late_patches", self.late.patch_waiting)

        def start() -> None:
            graph = lg.in_graph(metadata)
            name = run_name(serialized, kwargs, lg.UNNAMED if graph else "chain")  # see ``lg.inner_name``
            if graph and lg.is_hidden(tags):
                self._hide(run_id, parent_run_id)
                return
            node = graph and lg.is_node(tags)
            root = not graph and lg.is_graph(metadata)  # the outermost graph, known as one from its start
            if node:  # a graph's node task: a step, whatever its name
                self._graph_started(parent_run_id, metadata)
                obs_type = ObservationType.CHAIN
            else:
                agent = root or self._named_agent(name, tags, parent_run_id)  # by its own name, not its node's
                name = lg.inner_name(name, metadata or {}) if graph else name
                obs_type = ObservationType.AGENT if agent else ObservationType.CHAIN
            streamed = streamed_start(inputs, kwargs, self.marks_streams)
            # LangChain's placeholder is no input: the input read is told at the end, if it is read
            self._start(obs_type, name, run_id, parent_run_id, metadata, streamed, tags, node, serialized,
                        input=None if streamed and self.marks_streams else lcv.chain_value(inputs))
            if root:
                self._graph_started(run_id, metadata)

        self._guard("chain_start", start)

    def _named_agent(self, name: str, tags: list[str] | None, parent_run_id: UUID | None) -> bool:
        # only a tag of its own: every step inside a run tagged "agent" inherits the tag
        parent = self.runs.get(parent_run_id) if parent_run_id is not None else None
        inherited = (parent.tags if parent is not None else None) or ()
        return "agent" in name.lower() or any("agent" in tag.lower() and tag not in inherited for tag in tags or ())

    def on_chain_end(self, outputs: Any, *, run_id: UUID, inputs: Any = _ABSENT, **kwargs: Any) -> None:
        if inputs is _ABSENT:
            self._guard("chain_end", self._end, run_id, output=lcv.chain_value(outputs))
        else:  # LangChain's streaming path: the input is known only now (it started with ``{"input": ""}``)
            self._guard("chain_end", self._end_streamed, run_id, outputs, inputs)

    def _end_streamed(self, run_id: UUID, outputs: Any, inputs: Any) -> None:
        closed = lcv.closed_stream(self.stream_codes, outputs) if run_id in self.runs else None
        if closed is None:
            self._end(run_id, output=lcv.chain_value(outputs), input=lcv.chain_value(inputs))
        else:  # interrupted, as its async twin reports it (``on_chain_error`` with the GeneratorExit)
            self._end(run_id, output=closed[0], input=lcv.chain_value(inputs), level="WARNING",
                      status_message=STREAM_CLOSED)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, inputs: Any = None, **kwargs: Any) -> None:
        # a streamed run that fails also gets the input it had read by then (see ``on_chain_end``)
        fields = {} if inputs is None else {"input": lcv.chain_value(inputs)}
        self._guard("chain_error", self._fail, run_id, error, **fields)

    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:
        def mark() -> None:
            run = self.runs.get(run_id)
            if run is not None:
                run.obs.type = ObservationType.AGENT

        self._guard("agent_action", mark)

    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> None:
        return None

    # -- models -------------------------------------------------------------------------------------
    def on_chat_model_start(self, serialized: Any, messages: list[list[Any]], *, run_id: UUID,
                            parent_run_id: UUID | None = None, metadata: dict[str, Any] | None = None,
                            **kwargs: Any) -> None:
        def start() -> None:
            batch = [without_media([message_fields(m) for m in group]) for group in messages]  # inline images noted
            self._start(ObservationType.GENERATION, run_name(serialized, kwargs, "chat_model"), run_id, parent_run_id,
                        metadata, tags=kwargs.get("tags"), serialized=serialized,
                        input=batch[0] if len(batch) == 1 else batch,
                        **lcv.model_fields(kwargs, metadata))
            note_started(run_id)

        self._guard("chat_model_start", start)

    def on_llm_start(self, serialized: Any, prompts: list[str], *, run_id: UUID, parent_run_id: UUID | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        def start() -> None:
            self._start(ObservationType.GENERATION, run_name(serialized, kwargs, "llm"), run_id, parent_run_id, metadata,
                        tags=kwargs.get("tags"), serialized=serialized, input=prompts[0] if len(prompts) == 1 else prompts,
                        operation="text_completion",
                        **lcv.model_fields(kwargs, metadata))
            note_started(run_id)

        self._guard("llm_start", start)

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        def first() -> None:
            run = self.runs.get(run_id)
            if run is not None:
                run.obs.mark_first_token()
                if run.attached is not None:  # chunks go to a consumer now, whose code is its own
                    self._release(run)

        self._guard("llm_new_token", first)

    def _end_model(self, run_id: UUID, response: Any, error: BaseException | None = None) -> None:
        try:
            fields = model_reply(response, streamed_only=error is not None)
        except Exception as exc:  # the run still ends (and stops being current), without its reply
            guarded_failure("langchain.reply", exc)
            fields = {}
        self._end(run_id, error, **fields)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._guard("llm_end", self._end_model, run_id, response)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, response: Any = None, **kwargs: Any) -> None:
        self._guard("llm_error", self._end_model, run_id, response, error)

    # -- retrievers and tools -----------------------------------------------------------------------
    def on_retriever_start(self, serialized: Any, query: str, *, run_id: UUID, parent_run_id: UUID | None = None,
                           metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        def start() -> None:
            self._start(ObservationType.RETRIEVER, run_name(serialized, kwargs, "retriever"), run_id, parent_run_id,
                        metadata, tags=kwargs.get("tags"), serialized=serialized, query=query,
                        store=(metadata or {}).get("ls_vector_store_provider"))
            note_started(run_id)

        self._guard("retriever_start", start)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        def end() -> None:
            self._end(run_id, **lcv.retrieval_fields(list(documents or ())))

        self._guard("retriever_end", end)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._guard("retriever_error", self._end, run_id, error)

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID, parent_run_id: UUID | None = None,
                      metadata: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None,
                      **kwargs: Any) -> None:
        def start() -> None:
            name = run_name(serialized, kwargs, "tool")
            tool_name = serialized.get("name") if isinstance(serialized, dict) else None  # not a run_name
            self._start(ObservationType.TOOL, name, run_id, parent_run_id, lg.with_tool_call(metadata, kwargs),
                        tags=kwargs.get("tags"), serialized=serialized, tool_name=tool_name or name,
                        arguments=inputs if inputs is not None else input_str)

        self._guard("tool_start", start)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        def end() -> None:
            # A handled error (``tool_handled``; for a tool call, also a ToolMessage of status
            # "error"): the model or caller is told, the result is that text; the step still failed.
            run = self.runs.get(run_id)
            error = run.handled if run is not None else None
            if error is None and getattr(output, "status", None) == "error":
                error = str(getattr(output, "content", output))
            self._end(run_id, error, result=lf.tool_result(output))

        self._guard("tool_end", end)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._guard("tool_error", self._fail, run_id, error)

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._guard("custom_event", self._event, name, data, run_id)

    def _event(self, name: str, data: Any, run_id: UUID) -> None:
        """A custom event (``dispatch_custom_event``): an event under the run that dispatched it
        (under the current span if that run is not recorded), its data the input."""
        target = self.hidden.get(run_id, run_id) if self.hidden else run_id
        run = self.runs.get(target) if target is not None else None
        if run is not None and left_trace_of(run.obs.span):
            run = None
        obs = recorder.start(ObservationType.EVENT, str(name),
                             parent=trace.set_span_in_context(run.obs.span) if run is not None else None)
        if run is not None:
            lf.trace_tags(obs, run.trace_tags)
            self._inherit_session(obs, run, None)
        obs.update(input=data)
        obs.end()

    def on_text(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_retry(self, *args: Any, **kwargs: Any) -> None:
        return None


def _handler_class() -> type:
    from langchain_core.callbacks import BaseCallbackHandler

    return type("AutotraceLangChainHandler", (AutotraceCallbackHandler, BaseCallbackHandler), {})


class LangChainIntegration(Integration):
    name = "langchain"
    distribution = "langchain-core"
    module = "langchain_core"
    supported = ">=0.3.60,<2"  # earlier 0.3 releases lose run nesting and stream ends (checked down to 0.3.0)

    def __init__(self) -> None:
        super().__init__()
        self.handler: AutotraceCallbackHandler | None = None
        self._hook: tuple[Any, ...] | None = None
        self._stores = store_patches(self.patcher)
        self._embeddings = embedding_patches(self.patcher)
        self._cancellable = CancellablePatches(self.patcher, self, LLM_GENERATE)  # llms: ~15 ms to import

    def _instrument(self) -> None:
        from langchain_core.runnables import config as runnable_config
        from langchain_core.tracers import context as tracer_context

        handler_class = _handler_class()
        self.handler = handler_class(lcv.marks_streams(), lcv.stream_codes(), self._cancellable)
        self.handler.steps_config = getattr(runnable_config, "var_child_runnable_config", None)
        variable: ContextVar[Any] = ContextVar("autotrace_langchain_handler", default=self.handler)
        tracer_context.register_configure_hook(variable, True)
        self._hook = tracer_context._configure_hooks[-1]
        for target in ("_handle_tool_error", "_handle_validation_error"):
            self.patcher.wrap("langchain_core.tools.base", target, self._handled, expects=("e",))
        # runs in the context LangChain makes for a run's steps (``set_config_context``)
        self.patcher.wrap("langchain_core.runnables.config", "_set_config_context", self._steps_context,
                          expects=("config",))
        for kind in ("chain", "chat_model", "llm", "tool", "retriever"):  # an LLM's told every handler (``all_told``)
            self.patcher.wrap("langchain_core.callbacks.manager", f"AsyncCallbackManager.on_{kind}_start",
                              functools.partial(self._async_start, llm=kind == "llm"))
        # a handler that raises (``raise_error``) keeps the others from a run's start or end
        for target, wrapper in (("handle_event", lci.raising_event), ("ahandle_event", lci.raising_aevent)):
            self.patcher.wrap("langchain_core.callbacks.manager", target, functools.partial(wrapper, self),
                              expects=("handlers", "event_name"))
        self._cancellable.apply()  # async calls that report no end when cancelled
        chat = "langchain_core.language_models.chat_models"
        patch_chat_runs(self, chat)  # a chat model's run current while it generates; a raising batch's ended
        # a run its cache answers costs nothing
        if self.patcher.wrap(chat, "BaseChatModel._convert_cached_generations", lcv.from_cache, optional=True):
            for target, wrapper in (("_generate_with_cache", lcv.cached_call), ("_agenerate_with_cache", lcv.acached_call)):
                self.patcher.wrap(chat, f"BaseChatModel.{target}", functools.partial(wrapper, self), optional=True,
                                  expects=("messages", "stop", "run_manager"))
        try:  # vector stores searched directly, which send no callbacks
            self._stores.apply()
        except Exception as exc:  # a changed langchain-core: the rest stays traced
            guarded_failure("langchain.vectorstores", exc)
        try:  # embedding models, which send no callbacks either
            self._embeddings.apply()
        except Exception as exc:
            guarded_failure("langchain.embeddings_patch", exc)

    def _handled(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        content = wrapped(*args, **kwargs)  # a failing handler raises as it would without autotrace
        handler = self.handler
        if handler is not None:
            handler._guard("tool_handled", handler.tool_handled, args[0] if args else kwargs.get("e"))
        return content

    async def _async_start(self, wrapped: Any, instance: Any, args: Any, kwargs: Any, llm: bool = False) -> Any:
        since_ns = time.time_ns()
        try:
            return await (lci.all_told(self, wrapped, instance, args, kwargs) if llm else wrapped(*args, **kwargs))
        except BaseException as error:  # raised as it would be without autotrace
            handler = self.handler
            if handler is not None:
                handler._guard("start_interrupted", handler.start_interrupted, error,
                               getattr(instance, "parent_run_id", None), since_ns)
            raise

    def _steps_context(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)
        handler = self.handler
        if handler is not None and handler._by_span:  # only while a root run may start its steps
            handler._guard("steps_context", handler.steps_started, args[0] if args else kwargs.get("config"))
        return result

    def _uninstrument(self) -> None:
        from langchain_core.tracers import context as tracer_context

        if self._hook is not None and self._hook in tracer_context._configure_hooks:
            tracer_context._configure_hooks.remove(self._hook)
        self._hook = None
        self.handler = None
        self._stores.remove()
        self._embeddings.remove()
        self._cancellable.remove()


INTEGRATION = LangChainIntegration()
