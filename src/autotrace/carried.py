"""The tracing state a unit of work carries to where it runs: another thread (a pool's task) or
another task (an MCP client's callback). It is autotrace's context variables (tenant, content
capture, trace attributes, an active replay) and an OpenTelemetry context (the current span,
baggage); ``enter`` makes them current where the work runs, ``leave`` puts the runner's own back;
``forget`` drops them where no unit of work's state belongs (a process forked mid-request).
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context

from . import context, interception
from ._internal import guarded_failure
from .context import reset_block
from .observation import restore_context

#: autotrace's context variables a unit of work carries (the OTel context is carried apart).
VARIABLES = (context._tenant, context._capture, context._trace_attrs, interception._active)
Values = tuple[Any, Any, Any, Any]


def current_values() -> Values:
    """autotrace's context variables as they are here, in ``VARIABLES``' order."""
    tenant, capture, attrs, active = VARIABLES
    return tenant.get(), capture.get(), attrs.get(), active.get()


#: What ``enter`` set: the variables' tokens and the OTel context's (None: not attached).
Entered = tuple[tuple[Token[Any], Token[Any], Token[Any], Token[Any]] | None, object | None]


def enter(values: Values, otel: Context, where: str) -> Entered:
    """Make ``values`` (``VARIABLES``') and the OTel context ``otel`` current; ``leave`` puts the
    runner's own back, whatever was changed meanwhile. A failure in making ``otel`` current is
    autotrace's (counted under ``where``, logged once): the work runs in the runner's own state."""
    tenant, capture, attrs, active = VARIABLES
    tokens = (tenant.set(values[0]), capture.set(values[1]), attrs.set(values[2]), active.set(values[3]))
    try:
        return tokens, otel_context.attach(otel)
    except Exception as exc:  # a custom OTel runtime context failed
        guarded_failure(where, exc)
        leave((tokens, None))
        return None, None


def leave(entered: Entered) -> None:
    """Undo ``enter`` (never raises): the OTel context, then the variables, last set first."""
    tokens, attached = entered
    restore_context(attached)
    if tokens is not None:
        for token in reversed(tokens):
            reset_block(token)


def forget(where: str) -> None:
    """Run from here on in no unit of work's state: autotrace's variables unset and an empty OTel
    context current, for the rest of the running context (never raises)."""
    enter((None, None, None, None), Context(), where)


class Carrying:
    """A callable ``fn`` run where it is handed (a pool's worker thread or process) in the state
    ``_enter`` sets (a subclass's: the state it carries), then the runner's own put back, whatever
    ``fn`` changed of it. Its result or exception is ``fn``'s own."""

    __slots__ = ("fn",)

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        entered = self._enter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            if entered is not None:
                try:
                    leave(entered)
                except Exception as exc:  # the task's result or error stays its own
                    guarded_failure("threads", exc)

    def _enter(self) -> Entered | None:
        """Set the carried state; None (nothing set) if that failed or there is none to set."""
        raise NotImplementedError
