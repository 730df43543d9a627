"""Tasks handed to a process pool (``ProcessPoolExecutor.submit``, a process ``multiprocessing``
``Pool``'s submitting methods) run in their submitter's tenant, content-capture setting and trace:
the task is pickled to a worker that serves every submitter, and starts with none of their state
(``threads._in_started_process``), so its spans were new, tenantless traces, which the default
``unknown_tenant="drop"`` kept out of every project.

What travels, with the callable, is what a call to another of the application's services carries
and no more: the tenant (a validated id of at most 128 characters), the current span as a W3C
``traceparent`` (55 characters; the worker's spans are its children, in its trace) and the
content-capture switch (privacy: a request that turned capture off keeps it off in the worker).
Trace attributes stay in the submitter's process: the worker's spans join a trace whose spans carry
them. A task submitted with none of the three runs in the worker's own state. Either way the worker's
own state is back after the task, whatever the task changed: a job that sets its tenant (one its
payload names) would otherwise leave it to every later task of that worker, whoever submitted it.
A worker where autotrace is not installed runs the callable as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context

from .. import carried, propagation
from .._internal import guarded_failure
from ..context import _capture, _tenant, valid_tenant
from ..runtime import state

#: The length of a version-00 ``traceparent``.
_TRACEPARENT_LENGTH = 55


class InSubmittersTrace(carried.Carrying):
    """A callable for a process pool's worker, run with its submitter's tenant, capture setting and
    current span (``traceparent``) set there (none of them: in the worker's own state), then the
    worker's own put back. Picklable as ``fn`` is (pickling it pickles ``fn``: an unpicklable
    callable fails as it would alone)."""

    __slots__ = ("capture", "tenant", "traceparent")

    def __init__(self, fn: Any, tenant: str | None, capture: bool | None, traceparent: str | None) -> None:
        super().__init__(fn)
        self.tenant, self.capture, self.traceparent = tenant, capture, traceparent

    def _enter(self) -> carried.Entered | None:
        """Set the submitter's state; None if that failed, or in a worker where autotrace is not
        installed (the task runs in the worker's as it is)."""
        if state.settings is None:
            return None
        try:
            if self.tenant is None and self.capture is None and self.traceparent is None:  # outside traced work
                return carried.enter(carried.current_values(), otel_context.get_current(), "threads")
            tenant = self.tenant if valid_tenant(self.tenant) else None
            capture = self.capture if type(self.capture) is bool else None
            parent = self.traceparent
            otel = (propagation.extract({"traceparent": parent})
                    if type(parent) is str and len(parent) == _TRACEPARENT_LENGTH else Context())
            return carried.enter((tenant, capture, None, None), otel, "threads")
        except Exception as exc:
            guarded_failure("threads", exc)
            return None


def carrier() -> Callable[[Any], Any]:
    """What makes a task carry the caller's state (its tenant, capture setting and current span, if
    any) to a worker process, which keeps nothing of the task's."""
    tenant, capture = _tenant.get(), _capture.get()
    parent = propagation.traceparent(full_flags=True)
    return lambda fn: InSubmittersTrace(fn, tenant, capture, parent)
