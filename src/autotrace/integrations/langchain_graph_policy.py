"""A LangGraph node's ``TracePolicy`` (``add_node(..., trace_policy=...)``): LangGraph gives the
input and output its processors make of a node's run to tracers only (LangChain's ``BaseTracer``,
LangSmith's), the raw ones to every other handler. autotrace records what a tracer records: where
LangGraph splits a run's handlers so (``_split_handlers``, wrapped once langgraph is imported), the
autotrace handler goes with the tracers. A node whose output is so processed records none of the
values it wrote to its custom stream (``langchain_graph_writes``)."""

from __future__ import annotations

from typing import Any

from .._internal import guarded_failure

#: (module, function) LangGraph splits a run's handlers with: ``(others, tracers)``, copies of one manager
SPLIT = ("langgraph._internal._runnable", "_split_handlers")


def with_tracers(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``SPLIT``, the autotrace handler (``integration.handler``, read now) moved to the tracers."""
    split = wrapped(*args, **kwargs)
    handler = integration.handler
    if handler is not None:
        try:
            others, tracers = split
            run_id = getattr(args[0] if args else kwargs.get("manager"), "run_id", None)
            if run_id is not None:  # a run's end, its output processed (its start has no run yet)
                handler.output_processed(run_id)
            if handler in others.handlers:
                others.handlers = [h for h in others.handlers if h is not handler]
                tracers.handlers = [*tracers.handlers, handler]
        except Exception as exc:  # a changed langgraph: the split as it made it
            guarded_failure("langgraph.trace_policy", exc)
    return split
