"""Hooks that let a replay freeze or override instrumented calls.

While an interceptor is active (see ``autotrace.replay``), every new observation is shown to it
at start. It answers with an ``Intercept``: ``frozen`` calls return their recorded output without
running; a live call may carry ``overrides`` (model, parameters, messages). Integrations that can
skip a call (decorated functions, the OpenAI client) honour ``obs.intercept``; all others simply
run, which keeps the tree positions aligned for their descendants.
"""

from __future__ import annotations

import dataclasses
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .observation import Observation


@dataclasses.dataclass(frozen=True, slots=True)
class Intercept:
    """The decision for one observation."""

    frozen: bool
    record: dict[str, Any] | None = None
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def output(self) -> Any:
        """The recorded output (decoded) of a frozen call."""
        return (self.record or {}).get("output")


class Interceptor(Protocol):
    def intercept(self, obs: Observation) -> Intercept | None: ...


class ReplayStop(BaseException):
    """Raised into the application to stop a replay whose calls no longer match the recording.

    A ``BaseException``, so that no guard of autotrace's (nor an application's ``except Exception``)
    turns it into a silently diverging run.
    """


_active: ContextVar[Interceptor | None] = ContextVar("autotrace_interceptor", default=None)
_process: Interceptor | None = None


def active() -> Interceptor | None:
    """The interceptor of this context, else the process-wide one (``autotrace replay`` runs)."""
    return _active.get() or _process


def activate_process(interceptor: Interceptor | None) -> None:
    """Intercept observations in every thread of the process (used by the replay CLI)."""
    global _process
    _process = interceptor


def activate(interceptor: Interceptor | None) -> object:
    """Make ``interceptor`` see every observation started in this context; returns a reset token."""
    return _active.set(interceptor)


def deactivate(token: object) -> None:
    _active.reset(token)  # type: ignore[arg-type]
