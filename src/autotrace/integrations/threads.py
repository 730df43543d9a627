"""Tasks handed to a ``concurrent.futures.ThreadPoolExecutor`` run in the tracing state of the code
that submitted them: the current observation (so their spans join its trace, under it), the tenant,
the trace attributes, the content-capture setting and an active replay.

Python gives a worker thread none of the submitter's context (``asyncio.to_thread`` copies it;
``submit``, ``map`` and ``loop.run_in_executor`` do not), so parallel tool calls or retrievals run
in a pool started new, tenantless traces, which the default ``unknown_tenant="drop"`` then kept out
of every project. Only autotrace's own state is carried, for the task only: the application's other
context variables are left as they were, a task submitted outside any traced work is handed over
unchanged, and a worker thread keeps nothing after the task. ``threading.Thread`` is left alone: a
thread started during one request may outlive it, and would record later work under its tenant.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from .. import context, interception
from .base import Integration

#: autotrace's context variables carried with a task (the OTel context is carried apart).
_VARIABLES = (context._tenant, context._capture, context._trace_attrs, interception._active)


class _InSubmittersState:
    """A submitted callable, run with the submitter's tracing state set, then the worker's put back."""

    __slots__ = ("fn", "otel", "values")

    def __init__(self, fn: Any, otel: Any, values: tuple[Any, ...]) -> None:
        self.fn, self.otel, self.values = fn, otel, values

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tokens = [variable.set(value) for variable, value in zip(_VARIABLES, self.values, strict=True)]
        attached = otel_context.attach(self.otel)
        try:
            return self.fn(*args, **kwargs)
        finally:
            otel_context.detach(attached)
            for variable, token in zip(reversed(_VARIABLES), reversed(tokens), strict=True):
                variable.reset(token)


def _submit(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``ThreadPoolExecutor.submit``: the task carries the submitter's tracing state, if there is any."""
    values = tuple(variable.get() for variable in _VARIABLES)
    span = trace.get_current_span()
    if not args or (not span.get_span_context().is_valid and not any(value is not None for value in values)):
        return wrapped(*args, **kwargs)  # nothing traced here: the task is handed over as it is
    return wrapped(_InSubmittersState(args[0], otel_context.get_current(), values), *args[1:], **kwargs)


class ThreadsIntegration(Integration):
    """Patches ``ThreadPoolExecutor.submit`` (``map`` and ``run_in_executor`` go through it)."""

    name = "threads"
    module = "concurrent.futures.thread"

    def check(self) -> str | None:
        return None  # the standard library's

    def _instrument(self) -> None:
        self.patcher.wrap("concurrent.futures.thread", "ThreadPoolExecutor.submit", _submit, expects=("fn",))


INTEGRATION = ThreadsIntegration()
