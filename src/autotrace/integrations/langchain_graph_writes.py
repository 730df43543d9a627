"""What a LangGraph node writes to its custom stream (``get_stream_writer()``, a ``writer`` or
``runtime`` argument, a tool's ``ToolRuntime``), recorded on the node's observation with its output:
the values in order under the metadata key ``WRITES_KEY``, whether the graph is streamed with
``stream_mode="custom"`` or invoked (where LangGraph drops them). A value written inside a run the
node started (a tool of a ``ToolNode``) is the node's too.

LangGraph gives each graph run one writer, in the ``Runtime`` it merges with its parent's
(``Runtime.merge``, patched): ours calls it and notes each value on the node whose run is the
current one's nearest node (``langchain_graph.GraphRuns.stream_written``). Bounded as a traced
stream's items are: the first ``_MAX_WRITES``, while they fit the value size limit; the rest are
dropped, counted (``attribute_items_dropped``) and marked. A node whose ``TracePolicy`` processes
its output records none (counted as ``langgraph_stream_writes_withheld``): its output is what the
policy makes of it, and the values it wrote are part of that output. They are withheld from the
node run's start (``RunnableSeq._start``, patched): a node that fails has no output to process,
and its values stay unrecorded as well (fail closed).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any
from uuid import UUID

from .. import bounds
from .._internal import count, guarded_failure
from ..runtime import state

WRITES_KEY = "stream_custom"
#: (module, target) the writer of each graph run is made in
MERGE = ("langgraph.runtime", "Runtime.merge")
_MAX_WRITES = 1000
#: (module, target) LangGraph starts a node's run with, sync and async
START = ("langgraph._internal._runnable", "RunnableSeq._start")
ASTART = ("langgraph._internal._runnable", "RunnableSeq._astart")
#: set while a ``_Recording`` writes: one its writer calls (a subgraph's, made of its node's writer, which a
#: node's ``timeout`` wraps in a guard ``_Recording`` cannot see through) writes without noting again
_WRITING: ContextVar[bool] = ContextVar("autotrace_langgraph_writing", default=False)


class Writes:
    """The values one node wrote, within bounds (see the module's docstring)."""

    __slots__ = ("dropped", "items", "room", "withheld")

    def __init__(self) -> None:
        self.items: list[Any] = []
        #: counted as a traced stream's items are (``decorators``): a text's length, a quarter of another's size
        self.room = state.max_value_bytes + bounds.REDACTION_MARGIN
        self.dropped = 0
        self.withheld = False

    def withhold(self) -> None:
        """Record none (its node's output is processed by a ``TracePolicy``), counted."""
        if not self.withheld:
            self.withheld = True
            count("langgraph_stream_writes_withheld", len(self.items) + self.dropped)
            self.items, self.dropped = [], 0

    def add(self, value: Any) -> None:
        if self.withheld:
            count("langgraph_stream_writes_withheld")
            return
        if len(self.items) >= _MAX_WRITES or self.room <= 0:
            self.dropped += 1
            return
        self.items.append(value)
        self.room -= len(value) if type(value) is str else bounds.size(value, 4 * self.room) // 4

    def recorded(self) -> list[Any] | None:
        """The values as recorded, None if none is."""
        if self.withheld or not (self.items or self.dropped):
            return None
        if self.dropped:
            count("attribute_items_dropped", self.dropped)
            return [*self.items, bounds.TRUNCATION_MARK]
        return self.items


class _Recording:
    """A graph run's writer that notes each value on its node, then writes it as LangGraph would."""

    __slots__ = ("integration", "writer")

    def __init__(self, integration: Any, writer: Any) -> None:
        self.integration = integration  # its ``handler`` read at each write: it may be gone
        self.writer = writer

    def __call__(self, value: Any) -> Any:
        if _WRITING.get():  # noted by the recording writer that calls this one
            return self.writer(value)
        handler = self.integration.handler
        if handler is not None:
            run_id = _current_run_id()
            if run_id is not None:
                handler._guard("stream_write", handler.stream_written, run_id, value)
        token = _WRITING.set(True)
        try:
            return self.writer(value)
        finally:
            _WRITING.reset(token)


def _current_run_id() -> UUID | None:
    """The run whose code runs here: the parent of the runs it would start (LangChain's config)."""
    try:
        from langchain_core.runnables.config import var_child_runnable_config

        config = var_child_runnable_config.get()
        return getattr((config or {}).get("callbacks"), "parent_run_id", None)
    except Exception as exc:  # a changed langchain-core: the value is written, not recorded
        guarded_failure("langgraph.stream_write_run", exc)
        return None


def recording_merge(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``Runtime.merge``, its writer made a ``_Recording`` (once: a subgraph inherits its parent's, or a
    guard around it, ``_WRITING``)."""
    runtime = wrapped(*args, **kwargs)
    try:
        writer = runtime.stream_writer
        if not isinstance(writer, _Recording):
            return runtime.override(stream_writer=_Recording(integration, writer))
    except Exception as exc:  # a changed langgraph: its runtime as it made it
        guarded_failure("langgraph.stream_writer", exc)
    return runtime


def _withheld_if_processed(integration: Any, instance: Any, run_manager: Any, config: Any) -> Any:
    """``run_manager``'s run withholds its writes if its node's ``TracePolicy`` processes its output;
    a functional ``@task``'s run (started with ``config``) is recorded as a node's (``task_started``)."""
    try:
        handler = integration.handler
        if handler is None:
            return run_manager
        if getattr(getattr(instance, "trace_policy", None), "process_outputs", None):
            handler.output_processed(run_manager.run_id)
    except Exception as exc:  # a changed langgraph: the writes are withheld as its output ends, if at all
        guarded_failure("langgraph.stream_writes_withheld", exc)
        return run_manager
    handler._guard("task_started", handler.task_started, getattr(run_manager, "run_id", None), config)
    return run_manager


def _config(args: Any, kwargs: Any) -> Any:
    """The config ``RunnableSeq._start(input, config)`` is given."""
    return args[1] if len(args) > 1 else kwargs.get("config") or {}


def withheld_at_start(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``RunnableSeq._start``: see ``_withheld_if_processed``."""
    return _withheld_if_processed(integration, instance, wrapped(*args, **kwargs), _config(args, kwargs))


async def withheld_at_astart(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``RunnableSeq._astart``: see ``_withheld_if_processed``."""
    return _withheld_if_processed(integration, instance, await wrapped(*args, **kwargs), _config(args, kwargs))
