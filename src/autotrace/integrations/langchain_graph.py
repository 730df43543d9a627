"""LangGraph graphs as the LangChain callbacks show them, read without importing langgraph.

A compiled graph runs on langchain-core's callbacks: the graph is one chain run, each node task a
child run tagged ``graph:step:<n>``, and every run inside a graph carries ``langgraph_node`` (and
more ``langgraph_*`` keys) in its metadata. The graph's own run carries ``ls_integration``
"langgraph" (which every run inside it inherits, a model's excepted): a run with it that is in no
graph is a graph, known so at its start, even one that ends before any node runs (an input its
schema rejects, an ``interrupt_before`` its first node); where LangGraph sets no such key, a graph is
known once its first node starts. How each run is recorded:

- the outermost graph is the ``agent`` (the user invoked it as such); a subgraph is one step of it,
  a ``chain``, unless its name says agent (LangChain's rule, e.g. ``create_react_agent(name=...)``);
- a node is a ``chain`` named after the node, whatever the node's name says; an unnamed subgraph
  (LangGraph's default name ``LangGraph``) is named after the node it runs in, a sub-agent built
  by ``create_react_agent`` without a name too (unnamed, it is no agent by LangChain's rule, even
  in a node whose name says agent);
- a chain run LangGraph tags ``langsmith:hidden`` (the ``__start__`` task and what runs in it) is
  not recorded: what it starts nests under its parent; a model, tool or retriever always is;
- an unnamed function (a lambda router of a conditional edge) is named ``<lambda>``, not
  LangGraph's class name ``RunnableCallable``;
- a node's input and output are what its ``TracePolicy`` makes of them, as tracers get them
  (``langchain_graph_policy``); a tool run that answers a model's tool call (a ``ToolNode``'s, one
  run per parallel call) has the call's ``tool_call_id`` in its metadata;
- ``langgraph_node``/``langgraph_step`` are metadata of node runs only; LangGraph's bookkeeping
  keys (triggers, path, checkpoint namespace) of none; in a run outside any graph, such keys are
  the caller's own and kept;
- an interrupt (``interrupt()``, ``GraphInterrupt``) ends the runs it passes through as WARNING
  with its values (content: only while content is captured); a handoff to a parent graph
  (``ParentCommand``) as DEFAULT: control flow, not failures. A resumed run is a new trace; with a
  checkpointer, the graph's ``thread_id`` is the session of both, which links them, on every run
  of the graph (as a session in its metadata is);
  a session the caller gives (in the metadata or ``autotrace.trace_attributes``) wins;
- what a node writes to its custom stream is metadata of its run (``langchain_graph_writes``);
- a node attempt its ``timeout`` ends (``add_node(..., timeout=...)``, ``@task(timeout=...)``) is
  cancelled by LangGraph, which raises ``NodeTimeoutError`` to the graph: the node's run fails with
  that error, not as a plain cancellation (``timed_attempt``); what ran inside it is interrupted;
- a functional API ``@task``'s run is recorded as a node is (``task_started``): a ``chain`` with
  ``langgraph_node``/``langgraph_step`` that holds what it writes to its custom stream;
- a node or ``@task`` its cache answers (``CachePolicy``) runs nothing and starts no run: recorded
  as one that ran, a ``chain`` with metadata ``cache_hit`` and the cached writes as its output
  (``cached_writes``); its ``TracePolicy``'s processors are applied, and one that raises keeps that
  value out (fail closed).
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from .. import schema
from .._internal import count, guarded_failure
from ..context import capture_enabled, current_trace_attributes
from ..observation import ObservationType
from .langchain_convert import chain_value
from .langchain_graph_writes import Writes

NODE_KEY = "langgraph_node"
_TRIGGERS_KEY = "langgraph_triggers"  # set with ``langgraph_node`` on every task: a caller's key alone is no graph
_INTEGRATION = ("ls_integration", "langgraph")  # on a graph's own run and inherited by what it runs
_DEFAULT_NAME = "LangGraph"  # a compiled graph's name unless given one
HIDDEN_TAG = "langsmith:hidden"
_STEP_TAG = "graph:step:"
UNNAMED = "RunnableCallable"  # LangGraph's name for an unnamed function it runs synchronously (none if awaited)
#: kept on node runs only (a node's descendants would repeat them)
NODE_KEYS = frozenset({"langgraph_node", "langgraph_step"})
#: LangGraph's bookkeeping, kept on no run
INTERNAL_KEYS = frozenset({"langgraph_triggers", "langgraph_path", "langgraph_checkpoint_ns", "checkpoint_ns"})
GRAPH_KEYS = NODE_KEYS | INTERNAL_KEYS
_MAX_HIDDEN = 10_000
_SESSION_KEYS = ("session_id", "langfuse_session_id")
#: (module, target) LangGraph runs a node attempt that has a ``timeout`` with (async only)
TIMED = ("langgraph.pregel._retry", "_arun_with_timeout")
_TASK_NS = "langgraph_checkpoint_ns"

#: (module, target) LangGraph hands the writes its cache answered a task with to (``cached=True``)
CACHED = ("langgraph.pregel._loop", "PregelLoop.put_writes")
_CALL_MARK = True  # last item of a functional ``@task``'s ``langgraph_path`` (a call in progress)
#: LangGraph's channels a node's output becomes (``__root__``: a state of one value; ``__return__``: a
#: task's; ``__end__``: an ``@entrypoint``'s, beside what it saves for its next run in ``__previous__``)
_ONE_VALUE = ("__root__", "__return__", "__end__")
_NOT_OUTPUT = ("__", "branch:")  # its bookkeeping channels (the ``goto`` of a ``Command``)
_UNRECORDED: Any = object()  # a value a trace policy's processor failed on


class _Attempt:
    """A node attempt run with a ``timeout``: the run its node's run starts under (the graph's, or
    for a functional ``@task`` its caller's), and the ``NodeTimeoutError`` LangGraph raised when it
    ended the attempt, if it did."""

    __slots__ = ("error", "parent")

    def __init__(self, parent: UUID | None) -> None:
        self.parent = parent
        self.error: BaseException | None = None


#: the timed node attempt running here: the node's task copies it from the attempt's context
_ATTEMPT: ContextVar[_Attempt | None] = ContextVar("autotrace_langgraph_attempt", default=None)


async def timed_attempt(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``TIMED``, as it is: a ``NodeTimeoutError`` it raises is noted for the node's run, which is
    cancelled after it (``GraphRuns._fail``)."""
    try:
        config = args[1] if len(args) > 1 else kwargs["config"]
        attempt: _Attempt | None = _Attempt(getattr(config.get("callbacks"), "parent_run_id", None))
    except Exception as exc:  # a changed langgraph: the node's run ends as cancelled
        guarded_failure("langgraph.node_timeout", exc)
        attempt = None
    if attempt is None:
        return await wrapped(*args, **kwargs)
    token = _ATTEMPT.set(attempt)
    try:
        return await wrapped(*args, **kwargs)
    except Exception as error:  # raised as it would be without autotrace
        if type(error).__name__ == "NodeTimeoutError":
            attempt.error = error
        raise
    finally:
        _ATTEMPT.reset(token)


def task_namespace(metadata: Any) -> str | None:
    """A node task's checkpoint namespace (its task id last), from its run's metadata, if it has one."""
    ns = metadata.get(_TASK_NS) if isinstance(metadata, dict) else None
    return ns if isinstance(ns, str) and ns else None


def cached_writes(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``CACHED``, as it is; writes its cache answered a task with are recorded (``cached_node``)."""
    handler = integration.handler
    if handler is not None and kwargs.get("cached") is True and args:
        handler._guard("langgraph_cache_hit", handler.cached_node, getattr(instance, "tasks", {}).get(args[0]),
                       args[1] if len(args) > 1 else kwargs.get("writes"))
    return wrapped(*args, **kwargs)


def _processed(value: Any, processor: Any) -> Any:
    """``value`` as a ``TracePolicy`` processor records it; ``_UNRECORDED`` if it raises (fail closed)."""
    if processor is None:
        return value
    try:
        return processor(value)
    except Exception as exc:
        guarded_failure("langgraph.cached_trace_policy", exc)
        return _UNRECORDED


def _cached_output(writes: Any) -> Any:
    """A node's output from its writes: its value (a task's, an entrypoint's, a one-value state's, also
    beside the ``goto`` of its ``Command``), or the channels it updated."""
    writes = list(writes or ())
    for channel, value in writes:
        if channel in _ONE_VALUE:
            return value
    return {channel: value for channel, value in writes
            if not (isinstance(channel, str) and channel.startswith(_NOT_OUTPUT))}


def plain_cancellation(error: BaseException) -> BaseException:
    """``error``, or a bare ``CancelledError`` for one whose message is no text (LangGraph's
    sentinel object, whose repr would make every status message unique)."""
    if isinstance(error, asyncio.CancelledError) and not all(isinstance(arg, str) for arg in error.args):
        return asyncio.CancelledError()
    return error


def _timed_out(run: Any, error: BaseException) -> BaseException | None:
    """The ``NodeTimeoutError`` that cancelled ``run`` with ``error``, if it is the node's run of the
    timed attempt that raised it (the one run in it started under the attempt's parent)."""
    attempt = _ATTEMPT.get()
    if (attempt is None or attempt.parent is None or run is None or run.parent_run_id != attempt.parent
            or not isinstance(error, asyncio.CancelledError)):
        return None
    return attempt.error


def in_graph(metadata: dict[str, Any] | None) -> bool:
    """Whether a run runs inside a LangGraph graph (a node, or anything a node runs)."""
    return bool(metadata) and NODE_KEY in metadata and _TRIGGERS_KEY in metadata  # type: ignore[operator]


def is_graph(metadata: dict[str, Any] | None) -> bool:
    """Whether a run in no graph is a graph's own run, from its start (see the module's docstring)."""
    return metadata is not None and metadata.get(_INTEGRATION[0]) == _INTEGRATION[1]


def of_graph(metadata: dict[str, Any] | None) -> bool:
    """Whether LangGraph's keys in a run's metadata are its bookkeeping: the run is or is in a graph."""
    return in_graph(metadata) or is_graph(metadata)


def is_node(tags: list[str] | None) -> bool:
    """Whether a run inside a graph is one of its node tasks (its parent run is the graph)."""
    return any(tag.startswith(_STEP_TAG) for tag in tags or ())


def is_hidden(tags: list[str] | None) -> bool:
    return bool(tags) and HIDDEN_TAG in tags  # type: ignore[operator]


def inner_name(name: str, metadata: dict[str, Any]) -> str:
    """The name of a run a node starts: LangGraph names an unnamed function by its class (and
    gives it no name when awaited: ``UNNAMED`` then), and an unnamed subgraph ``LangGraph``, as
    every other: that one is named after its node."""
    if name == UNNAMED:
        return "<lambda>"
    return str(metadata[NODE_KEY]) if name == _DEFAULT_NAME else name


def with_tool_call(metadata: dict[str, Any] | None, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """A tool run's metadata, with the id of the model's tool call it answers (``tool_call_id``, as
    a ``ToolNode`` runs each of a model's parallel calls), if it answers one."""
    call = kwargs.get("tool_call_id")
    return {**(metadata or {}), "tool_call_id": str(call)} if call else metadata


def _session_given(metadata: dict[str, Any] | None) -> bool:
    """Whether the caller gave a session: in a run's ``metadata``, or ``autotrace.trace_attributes``."""
    if metadata and any(metadata.get(key) for key in _SESSION_KEYS):
        return True
    return bool((current_trace_attributes() or {}).get(schema.TRACE_SESSION))


def thread_session(metadata: dict[str, Any] | None) -> str | None:
    """The session a graph's checkpointer thread makes, unless the caller gave one."""
    if not metadata or _session_given(metadata):
        return None
    thread = metadata.get("thread_id")
    return str(thread) if thread is not None and thread != "" else None


def control_flow(error: BaseException) -> tuple[str, str] | None:
    """``(level, message)`` for an exception LangGraph raises to pause or redirect a graph
    (``GraphBubbleUp``: ``GraphInterrupt``, ``ParentCommand``); None for any other. An interrupt's
    message has its values only while content is captured."""
    names = [cls.__name__ for cls in type(error).__mro__ if cls.__module__.startswith("langgraph")]
    if "GraphBubbleUp" not in names:
        return None
    kind = type(error).__name__
    if "GraphInterrupt" not in names:
        return "DEFAULT", kind
    if not capture_enabled():  # its values are content (a draft for review), as a node's output is
        return "WARNING", kind
    try:
        values = [getattr(item, "value", item) for item in (error.args[0] if error.args else ())]
        return "WARNING", f"{kind}: " + "; ".join(str(value) for value in values)
    except Exception:  # an interrupt with unexpected args is still an interrupt
        return "WARNING", kind


class GraphRuns:
    """What the LangChain callback handler does for LangGraph runs only."""

    runs: dict[UUID, Any]  # run id -> ``langchain_runs.Run``
    hidden: dict[UUID, UUID | None]

    if TYPE_CHECKING:  # the handler's
        def _start(self, obs_type: ObservationType, name: str, run_id: UUID, parent_run_id: UUID | None,
                   metadata: dict[str, Any] | None, streamed: bool = False, tags: list[str] | None = None,
                   node: bool = False, serialized: Any = None, **fields: Any) -> Any: ...

        def _end(self, run_id: UUID, error: BaseException | str | None = None, **fields: Any) -> None: ...

        def _sweep_at_task_end(self, trace_id: int, error: BaseException) -> None: ...

    def _graph_started(self, graph_run_id: UUID | None, metadata: dict[str, Any] | None) -> None:
        """The graph run ``graph_run_id`` is known as such (it starts, or a node of it starts): the
        outermost graph is the agent, and its checkpointer thread its session."""
        run = self.runs.get(graph_run_id) if graph_run_id is not None else None
        if run is None or run.graph:
            return
        run.graph = True
        if not run.in_graph:
            run.obs.type = ObservationType.AGENT
            session = thread_session(metadata)
            if session is not None:
                run.session = session
                run.obs.span.set_attribute(schema.TRACE_SESSION, session)

    @staticmethod
    def _inherit_session(obs: Any, parent: Any, metadata: dict[str, Any] | None) -> str | None:
        """The session ``obs``, started under the run ``parent`` in a graph, carries (set on its span):
        the graph's thread's (``_graph_started``), as a session given in the metadata reaches every
        run, unless it is given one of its own."""
        session: str | None = parent.session if parent is not None else None
        if session is None or _session_given(metadata):
            return None
        obs.span.set_attribute(schema.TRACE_SESSION, session)
        return session

    def _hide(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        """Record no ``run_id``: what it starts nests under its nearest recorded ancestor."""
        self.hidden[run_id] = self.hidden.get(parent_run_id, parent_run_id) if parent_run_id is not None else None
        if len(self.hidden) > _MAX_HIDDEN:  # one whose end never came
            del self.hidden[next(iter(self.hidden))]

    def _fail(self, run_id: UUID, error: BaseException, **fields: Any) -> None:
        flow = control_flow(error)  # an interrupt or a handoff is no failure
        run = self.runs.get(run_id) if flow is None and isinstance(error, asyncio.CancelledError) else None
        timeout = _timed_out(run, error)
        if timeout is not None:  # a node its timeout cancelled: what it ran may be left open, as in any
            self._sweep_at_task_end(run.obs.span.get_span_context().trace_id, error)
            self._end(run_id, timeout, **fields)
        elif flow is None:
            self._end(run_id, plain_cancellation(error), **fields)
        else:
            self._end(run_id, level=flow[0], status_message=flow[1], **fields)

    def stream_written(self, run_id: UUID, value: Any) -> None:
        """Note ``value``, written to the custom stream in the run ``run_id``, on its nearest node."""
        if not capture_enabled():  # content, as the node's output is
            return
        run = self.runs.get(self.hidden.get(run_id, run_id) if self.hidden else run_id)
        while run is not None and run.writes is None:  # a node's run has its ``Writes``
            run = self.runs.get(run.parent_run_id) if run.parent_run_id is not None else None
        if run is None:
            count("langgraph_stream_writes_unrecorded")
            return
        run.writes.add(value)  # type: ignore[union-attr]

    def output_processed(self, run_id: UUID) -> None:
        """The node run ``run_id`` ends with what its ``TracePolicy`` makes of its output: the values
        it wrote are not recorded either."""
        run = self.runs.get(run_id)
        if run is not None and run.writes is not None:
            run.writes.withhold()

    def task_started(self, run_id: UUID, config: Any) -> None:
        """The run ``run_id`` LangGraph started with ``config`` is a functional ``@task``'s own run (not
        a run inside it, which inherits its metadata): recorded as a node's (see the module's docstring)."""
        run = self.runs.get(run_id)
        metadata = config.get("metadata") or {}
        path = metadata.get("langgraph_path")
        if (run is None or run.writes is not None or not in_graph(metadata) or type(path) is not tuple
                or not path or path[-1] is not _CALL_MARK or config.get("run_name") != metadata[NODE_KEY]):
            return
        run.writes, run.task = Writes(), task_namespace(metadata)
        run.obs.type = ObservationType.CHAIN  # a step, whatever its name, as a node is
        run.obs.update(metadata={key: metadata[key] for key in ("langgraph_node", "langgraph_step") if key in metadata})

    def cached_node(self, task: Any, writes: Any) -> None:
        """Record ``task`` (a ``PregelExecutableTask``), which its cache answered with ``writes``, as a
        node run that starts and ends now under its run's parent, if autotrace traces that run."""
        config = getattr(task, "config", None) or {}
        callbacks = config.get("callbacks")
        parent_run_id = getattr(callbacks, "parent_run_id", None)
        tags = [*(getattr(callbacks, "tags", None) or ()), *(config.get("tags") or ())]
        if (parent_run_id is None or self not in (getattr(callbacks, "handlers", None) or ()) or is_hidden(tags)
                or (parent_run_id not in self.runs and parent_run_id not in self.hidden)):
            return
        task_ns = task_namespace(config.get("metadata"))
        if task_ns is not None and any(run.task == task_ns for run in list(self.runs.values())):
            # its own run is live: LangGraph gave a task still running the writes of another call with
            # its key, which ended first (``match_cached_writes``); it ran, and is recorded so, once
            count("langgraph_cache_hits_of_running_tasks")
            return
        proc = getattr(task, "proc", None)
        policy = getattr(proc, "trace_policy", None)
        value = _processed(task.input, getattr(proc, "trace_inputs", None))
        value = _processed(value, getattr(policy, "process_inputs", None))
        output = _processed(_cached_output(writes), getattr(policy, "process_outputs", None))
        run_id = uuid4()
        self._start(ObservationType.CHAIN, str(task.name), run_id, parent_run_id, config.get("metadata"), tags=tags,
                    node=True, input=None if value is _UNRECORDED else chain_value(value))
        self._end(run_id, output=None if output is _UNRECORDED else chain_value(output), metadata={"cache_hit": True})
