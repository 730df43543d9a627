"""Hooks that let a replay freeze or override instrumented calls.

While an interceptor is active (see ``autotrace.replay``), every new observation is shown to it
at start. It answers with an ``Intercept``: ``frozen`` calls return their recorded output without
running (or raise ``RecordedError`` when the recorded call raised); a live call may carry
``overrides`` (model, parameters, messages). Integrations that can skip a call (decorated
functions, the OpenAI client) honour ``obs.intercept``; all others simply run, which keeps the tree
positions aligned for their descendants.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
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

    @property
    def error(self) -> RecordedError | None:
        """What a frozen call raises instead: its recording raised (level ERROR and no output)."""
        record = self.record or {}
        if record.get("level") != "ERROR" or record.get("output") is not None:
            return None
        return RecordedError.of(record.get("status_message"))


class RecordedError(Exception):
    """Raised by a frozen call whose recorded run raised, with the recorded message.

    ``status_message`` is the recorded ``"TypeName: message"``; ``str()`` is the message. When the
    recorded type is a built-in exception (``RuntimeError``, ``KeyError`` ...), the error is an
    instance of it too, so the program's ``except RuntimeError`` takes the recorded path.
    """

    def __init__(self, message: str, status_message: str | None = None) -> None:
        super().__init__(message)
        self.status_message = status_message if status_message is not None else message

    @staticmethod
    def of(status_message: str | None) -> RecordedError:
        """The error for a recorded status message (``"TypeName: message"``)."""
        if not status_message:
            return RecordedError("the recorded call raised", "")
        type_name, sep, message = status_message.partition(": ")
        builtin = getattr(builtins, type_name, None) if sep else None
        if isinstance(builtin, type) and issubclass(builtin, Exception):
            try:
                return _recorded_class(builtin)(message, status_message)
            except Exception:  # a base that needs other arguments (UnicodeDecodeError, ExceptionGroup ...)
                pass
        return RecordedError(status_message)


@functools.cache  # built-in exception classes only: a bounded cache
def _recorded_class(builtin: type[Exception]) -> type[RecordedError]:
    return type(f"Recorded{builtin.__name__}", (RecordedError, builtin), {"__module__": __name__})


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
