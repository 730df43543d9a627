"""Tasks handed to a ``concurrent.futures.ThreadPoolExecutor`` run in the tracing state of the code
that submitted them: the current observation (so their spans join its trace, under it), the tenant,
the trace attributes, the content-capture setting and an active replay.

Python gives a worker thread none of the submitter's context (``asyncio.to_thread`` copies it;
``submit``, ``map`` and ``loop.run_in_executor`` do not), so parallel tool calls or retrievals run
in a pool started new, tenantless traces, which the default ``unknown_tenant="drop"`` then kept out
of every project. Only autotrace's own state is carried, for the task only: the application's other
context variables are left as they were, and a task submitted outside any traced work runs in the
worker's own state. Either way a worker thread keeps nothing of the task's: a tenant it set (a job
that calls ``set_tenant`` and ends) or a stream it left current (a generator handed back to the
submitter) would otherwise belong to every later task of that thread, whoever submitted it.
``threading.Thread`` is left alone: a thread started during one request may outlive it, and would
record later work under its tenant.
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from .. import context, interception
from .._internal import guarded_failure
from .base import Integration

#: autotrace's context variables carried with a task (the OTel context is carried apart).
_TENANT, _CAPTURE, _ATTRS, _ACTIVE = context._tenant, context._capture, context._trace_attrs, interception._active


class _InSubmittersState:
    """A submitted callable, run with the submitter's tracing state set (``values`` None: with the
    worker's own), then the worker's put back, whatever the task changed of it. A failure in
    setting or restoring that state is autotrace's (counted, logged once): the task still runs,
    and its result or error is its own."""

    __slots__ = ("fn", "otel", "values")

    def __init__(self, fn: Any, otel: Any, values: tuple[Any, Any, Any, Any] | None) -> None:
        self.fn, self.otel, self.values = fn, otel, values

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        values, otel = self.values, self.otel
        if values is None:  # submitted outside traced work: set as they are, so that the task's changes are undone
            values, otel = (_TENANT.get(), _CAPTURE.get(), _ATTRS.get(), _ACTIVE.get()), otel_context.get_current()
        tenant, capture, attrs, active = values
        tokens = (_TENANT.set(tenant), _CAPTURE.set(capture), _ATTRS.set(attrs), _ACTIVE.set(active))  # cannot fail
        try:
            attached = otel_context.attach(otel)
        except Exception as exc:  # a custom OTel runtime context failed: the task runs in the worker's state
            guarded_failure("threads", exc)
            _restore(tokens, None)
            return self.fn(*args, **kwargs)
        try:
            return self.fn(*args, **kwargs)
        finally:
            _restore(tokens, attached)


def _restore(tokens: tuple[Token[Any], ...], attached: Any) -> None:
    """Put the worker's state back: the OTel context, then the variables, last set first."""
    try:
        if attached is not None:
            otel_context.detach(attached)
        _ACTIVE.reset(tokens[3])
        _ATTRS.reset(tokens[2])
        _CAPTURE.reset(tokens[1])
        _TENANT.reset(tokens[0])
    except Exception as exc:
        guarded_failure("threads", exc)


def _submit(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``ThreadPoolExecutor.submit``: the task carries the submitter's tracing state, if there is
    any, else runs in the worker's; either way the worker keeps nothing of the task's."""
    try:
        tenant, capture, attrs, active = _TENANT.get(), _CAPTURE.get(), _ATTRS.get(), _ACTIVE.get()
        traced = (tenant is not None or capture is not None or attrs is not None or active is not None
                  or trace.get_current_span().get_span_context().is_valid)
        carried = (otel_context.get_current(), (tenant, capture, attrs, active)) if traced else (None, None)
        task = _InSubmittersState(args[0], *carried) if args else None
    except Exception as exc:  # the task is handed over as it is
        guarded_failure("threads", exc)
        task = None
    if task is None:
        return wrapped(*args, **kwargs)  # no task (submit's own error) or a failure: handed over as it is
    return wrapped(task, *args[1:], **kwargs)


class ThreadsIntegration(Integration):
    """Patches ``ThreadPoolExecutor.submit`` (``map`` and ``run_in_executor`` go through it)."""

    name = "threads"
    module = "concurrent.futures.thread"

    def check(self) -> str | None:
        return None  # the standard library's

    def _instrument(self) -> None:
        self.patcher.wrap("concurrent.futures.thread", "ThreadPoolExecutor.submit", _submit, expects=("fn",))


INTEGRATION = ThreadsIntegration()
