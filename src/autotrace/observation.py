"""The typed vocabulary: observation types and the handle users hold while an observation runs."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from contextvars import Token
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, Status, StatusCode, get_current_span, set_span_in_context

from ._ended import (
    CONTENT_FIELDS,
    DEFERRED,
    LATE,
    plain_fields,
    resolved_fields,
    settled_attributes,
    with_doc_count,
)
from ._heads import content_cut_short
from ._internal import count, guarded_failure, log_once
from ._snapshots import snapshot
from .context import capture_enabled, reset_block
from .runtime import state
from .schema import _usage_dict
from .spans import ObservationSpan

if TYPE_CHECKING:
    from .interception import Intercept

ScoreValue = float | int | bool | str  #: a score's value: a number, a boolean, or a category's text


class ObservationType(StrEnum):
    """The kinds of step an agent pipeline is made of (Langfuse observation types)."""

    GENERATION = "generation"
    EMBEDDING = "embedding"
    RETRIEVER = "retriever"
    TOOL = "tool"
    GUARDRAIL = "guardrail"
    AGENT = "agent"
    CHAIN = "chain"
    EVALUATOR = "evaluator"
    SPAN = "span"
    EVENT = "event"


#: Fields each observation type understands in ``update()`` besides the common ones.
TYPE_FIELDS: dict[ObservationType, frozenset[str]] = {
    ObservationType.GENERATION: frozenset(
        {"model", "model_parameters", "usage", "cost", "completion_start_time", "prompt", "finish_reason",
         "response_model", "provider"}
    ),
    ObservationType.EMBEDDING: frozenset(
        {"model", "model_parameters", "usage", "cost", "input_count", "dimensions", "provider", "response_model"}
    ),
    ObservationType.RETRIEVER: frozenset(
        {"query", "top_k", "doc_count", "documents", "store", "collection", "filter", "scores", "operation"}
    ),
    ObservationType.TOOL: frozenset({"tool_name", "arguments", "result", "error"}),
    ObservationType.GUARDRAIL: frozenset({"passed", "modified", "reason"}),
}
COMMON_FIELDS = frozenset({"input", "output", "metadata", "level", "status_message", "version", "prompt"})
#: Every field ``update`` records (``schema.observation_attributes`` exports each of them).
FIELDS = COMMON_FIELDS.union(*TYPE_FIELDS.values())
#: The fields ``update`` records as they are (a snapshot): all but those it reads first.
_SNAPSHOT_FIELDS = FIELDS - {"metadata", "level", "error"}
#: Fields the Langfuse SDK's ``update`` names otherwise (as they are on the wire), taken as ours.
LANGFUSE_NAMES = {"usage_details": "usage", "cost_details": "cost"}
#: The levels Langfuse accepts.
LEVELS = frozenset({"DEBUG", "DEFAULT", "WARNING", "ERROR"})


class Observation:
    """A running observation: the handle returned by ``start_*`` and passed to decorated code.

    Every method is safe to call at any time: after ``end()`` updates are ignored, and no method
    raises into the caller because of autotrace itself.
    """

    __slots__ = ("__weakref__", "_ended", "_fields", "_span", "_token", "intercept", "name", "type")

    def __init__(self, span: Span, obs_type: ObservationType, name: str) -> None:
        self._span = span
        self.type = obs_type
        self.name = name
        self._fields: dict[str, Any] = {}
        self._ended = False
        self._token: object | None = None
        #: Set during a replay: whether this call is frozen (and its recorded output) or overridden.
        self.intercept: Intercept | None = None

    # -- context management: ``with`` / ``async with`` make the observation current ---------------
    def __enter__(self) -> Observation:
        token = make_current(self)
        entered = self._token
        if entered is None:  # the usual case: one block
            self._token = token
        else:  # entered again, within its block or in another thread or task: one token per block
            if type(entered) is not _Entered:
                entered = self._token = _Entered(entered)
            entered.tokens.append(token)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            if exc is not None:
                self.record_error(exc)
        except Exception as failure:  # the block's own error (if any) reaches the caller, not this one
            guarded_failure("record_error", failure)
        finally:  # whatever recording the error does, the caller's context is back and the span ends
            entered = self._token
            last = True
            if type(entered) is _Entered:
                entered.release_own()
                last = not entered.tokens  # still current in another block: the last one to end ends it
            else:
                _leave(self._span, entered)
            if last:
                self._token = None
                self.end()

    async def __aenter__(self) -> Observation:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- identity ---------------------------------------------------------------------------------
    @property
    def span(self) -> Span:
        """The underlying OpenTelemetry span."""
        return self._span

    @property
    def trace_id(self) -> str:
        """The W3C trace id as 32 hex characters."""
        return format(self._span.get_span_context().trace_id, "032x")

    @property
    def id(self) -> str:
        """The observation (span) id as 16 hex characters."""
        return format(self._span.get_span_context().span_id, "016x")

    @property
    def ended(self) -> bool:
        """Whether ``end()`` has run (later updates are ignored)."""
        return self._ended

    @property
    def fields(self) -> dict[str, Any]:
        """The typed fields recorded so far (a live view; do not mutate)."""
        return self._fields

    # -- recording --------------------------------------------------------------------------------
    def set_input(self, value: Any) -> Observation:
        """Record the observation's input (serialised once, when the observation ends)."""
        if not self._ended and capture_enabled():
            self._fields["input"] = snapshot(value)
        return self

    def set_output(self, value: Any) -> Observation:
        """Record the observation's output."""
        if not self._ended and capture_enabled():
            self._fields["output"] = snapshot(value)
        return self

    def update(self, **fields: Any) -> Observation:
        """Record typed fields: ``model``, ``usage``, ``cost``, ``prompt``, ``metadata``, ``documents`` ...

        ``metadata`` merges into earlier metadata; ``None`` values are ignored. The Langfuse SDK's
        ``usage_details`` and ``cost_details`` are ``usage`` (``_gross_usage``) and ``cost``. A name
        that is no field (``FIELDS``) is left out, counted as ``fields_unknown``.
        """
        if self._ended:
            return self
        capture = capture_enabled()
        recorded = self._fields
        for key, value in fields.items():
            if value is None or (not capture and key in CONTENT_FIELDS):
                continue
            if key in _SNAPSHOT_FIELDS:  # the most common: first
                recorded[key] = snapshot(value)
            elif key == "metadata":
                self._merge_metadata(value)
            elif key == "level":
                recorded[key] = _level(value)
            elif key == "error":  # a tool's error (DESIGN: tool fields): the observation failed
                if value is not False and not (isinstance(value, str) and not value):
                    self.record_error(value if isinstance(value, BaseException) else str(value))
            elif key == "usage_details":  # the Langfuse SDK's name (code ported from it)
                self._fields["usage"] = _gross_usage(snapshot(value))
            elif key in LANGFUSE_NAMES:
                self._fields[LANGFUSE_NAMES[key]] = snapshot(value)
            else:  # nothing would export it: not held, and said (a misspelt ``usage``, say)
                count("fields_unknown")
                log_once(f"field_unknown:{key}", "autotrace: %r is not an observation field; left out "
                         "(counted as fields_unknown)", key[:64])
        return self

    def _merge_metadata(self, value: Any) -> None:
        """Merge a mapping into the metadata; anything else (or a mapping that raises when read) is
        left out, counted (``metadata_invalid``): metadata is exported key by key."""
        try:
            items = dict(value) if type(value) is dict or isinstance(value, Mapping) else None
        except Exception:  # the application's mapping failed to be read
            items = None
        if items is None:
            count("metadata_invalid")
            return
        merged = self._fields.get("metadata")
        if type(merged) is not dict:
            merged = self._fields["metadata"] = {}
        merged.update(items)

    def defer(self, compute: Callable[..., dict[str, Any]], *args: Any, late: bool = False) -> Observation:
        """Add fields computed once, as ``compute(*args)``, when the observation ends (nothing is
        extracted before then). They never replace fields already set.

        ``compute`` must only read objects that no longer change, such as a parsed response.
        ``late``: compute them on the export pipeline's thread instead, before redaction; ``args``
        must then be plain values (bytes, strings, numbers), so a span waiting to be exported
        holds nothing of the library's.
        """
        if not self._ended:
            self._fields.setdefault(LATE if late else DEFERRED, []).append((compute, args, capture_enabled()))
        return self

    def set_level(self, level: str, message: str | None = None) -> Observation:
        """Set the Langfuse level (DEBUG, DEFAULT, WARNING, ERROR) and an optional status message."""
        if self._ended:
            return self
        self._fields["level"] = _level(level)
        if message is not None:
            self._fields["status_message"] = message
        return self

    def record_error(self, error: BaseException | str) -> Observation:
        """Mark the observation as failed; the exception itself is left to the caller."""
        if self._ended:
            return self
        message = error if isinstance(error, str) else describe_error(error)
        if isinstance(error, BaseException) and not isinstance(error, Exception):
            # cancellation, GeneratorExit, KeyboardInterrupt: the step was interrupted, not failed
            self._fields["level"] = "WARNING"
            self._fields["status_message"] = message or type(error).__name__
            return self
        self._fields["level"] = "ERROR"
        self._fields["status_message"] = message
        try:  # the status first: the exception event may fail on what the exception itself does
            self._span.set_status(Status(StatusCode.ERROR, message))
            if isinstance(error, BaseException):
                self._span.record_exception(error)
        except Exception as exc:  # a broken exception or third-party span must not break the caller
            guarded_failure("record_error", exc)
        return self

    def score(
        self,
        name: str,
        value: ScoreValue,
        *,
        data_type: str | None = None,
        comment: str | None = None,
    ) -> None:
        """Attach a score to this observation (sent to the Langfuse of the tenant it started with,
        even once it has ended, and stored locally); never raises (see ``autotrace.score``)."""
        from .scores import score_observation

        score_observation(self, name, value, data_type, comment)

    def mark_first_token(self) -> None:
        """Record now as the completion start time (first streamed token), once."""
        if "completion_start_time" not in self._fields:
            self._fields["completion_start_time"] = time.time_ns()

    def end(self, end_time: int | None = None) -> None:
        """End the observation exactly once; later calls do nothing.

        Here, on the caller's thread, deferred fields are computed (they read the library's
        objects, which are then free) and the content (input, output, documents ...) is
        serialised, so what is recorded is what it was at the end. When the span is autotrace's
        own light span, the fields, now plain values, become attributes on the pipeline thread,
        before redaction, with the late fields computed first (``ObservationSpan.settle``); an
        SDK span gets its attributes here.
        """
        if self._ended:
            return
        self._ended = True
        span = self._span
        try:
            span._autotrace_obs = None  # type: ignore[attr-defined]  # break the span <-> handle cycle
        except AttributeError:
            pass
        try:
            if span.is_recording():
                fields = resolved_fields(self._fields, DEFERRED)
                if self.type is ObservationType.RETRIEVER and "doc_count" not in fields:
                    fields = with_doc_count(fields)
                max_bytes = state.max_value_bytes
                fields = content_cut_short(fields, max_bytes)
                obs_type = self.type._value_  # ``value`` without its property's two calls
                if type(span) is ObservationSpan:
                    span.hand_over(settled_attributes, obs_type, plain_fields(fields, max_bytes), max_bytes)
                else:
                    span.set_attributes(settled_attributes(obs_type, fields, max_bytes))
        except Exception as exc:  # the span still ends, with what it has
            guarded_failure("finish", exc)
        try:
            span.end(end_time)
        except Exception as exc:
            guarded_failure("finish", exc)

    def __repr__(self) -> str:
        return f"<Observation {self.type.value} {self.name!r} id={self.id}>"


class _Entered:
    """The context tokens of the open ``with`` blocks of an observation entered more than once.

    Each exit must reset the token made in its own context: blocks in other threads or tasks (a
    worker that makes a shared handle current) end in any order, and a token reset in another
    context fails, leaving the ended observation current there for every later call."""

    __slots__ = ("tokens",)

    def __init__(self, first: object | None) -> None:
        self.tokens = [first]

    def release_own(self) -> None:
        """Reset and forget the newest token made in the current context; none made here (a block
        left in another context than it entered), forget the newest all the same, counted as one
        block's would be (``context_not_restored``): each exit takes one token, the last ends it."""
        tokens = self.tokens
        for index in range(len(tokens) - 1, -1, -1):
            token = tokens[index]
            if isinstance(token, Token):
                try:
                    token.var.reset(token)
                except (RuntimeError, ValueError):  # another block's context, or already reset
                    continue
            else:  # another context runtime (or no token): undone as before
                restore_context(token)
            del tokens[index]
            return
        if tokens:
            restore_context(tokens.pop())


class CurrentDuring:
    """A base for ``with``-blocks that make an observation current for the block only: the
    caller's context is restored after it, then ``exited(error)`` runs (``obs`` may be None:
    nothing is made current)."""

    __slots__ = ("obs", "token")

    def __init__(self, obs: Observation | None) -> None:
        self.obs = obs
        self.token: object | None = None

    def __enter__(self) -> None:
        if self.obs is not None:
            self.token = make_current(self.obs)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> None:
        token, self.token = self.token, None
        restore_context(token)
        try:
            self.exited(error)
        except Exception as exc:  # the block's own error (if any) reaches the caller, not this one
            guarded_failure("exited", exc)
            if error is not None and self.obs is not None:  # ``exited`` ends it on an error: never left open
                self.obs.end()

    def exited(self, error: BaseException | None) -> None:
        """What the block's end means (``error``: what it raised, if anything)."""


def _gross_usage(usage: Any) -> Any:
    """Langfuse's ``usage_details`` as ``usage``: Langfuse's ``input`` and ``output`` are net of their
    details (``input_cached_tokens``...), ``usage``'s count every token (``schema._net_of_details``
    takes the details off again for the wire); counts read as the wire reads them (``20.0``, ``"20"``
    and numpy's integers are counts, a negative one is none), anything but a mapping as it is."""
    if not isinstance(usage, Mapping):
        return usage
    counts = dict(_usage_dict(usage))
    for side in ("input", "output"):
        if (given := counts.get(side)) is not None:
            counts[side] = given + sum(v for k, v in counts.items() if k.startswith(side + "_"))
    return counts


def _level(value: object) -> str:
    """A level as Langfuse accepts it: one of ``LEVELS``, upper-case (the local store and queries
    compare it as such too); anything else becomes DEFAULT, counted as ``levels_invalid``."""
    level = value.upper() if isinstance(value, str) else None
    if level in LEVELS:
        return level  # type: ignore[return-value]
    count("levels_invalid")
    return "DEFAULT"


#: Metadata of a decorated function's observation whose output was not recorded (``capture_output=False``,
#: content capture off), set False: a replay cannot otherwise tell it from a function that returned None.
OUTPUT_CAPTURED = "autotrace.output_captured"

#: The status of a stream (a traced generator, an LLM's reply) its reader closed before its end:
#: interrupted, so WARNING; what it had produced is kept.
STREAM_CLOSED = "interrupted: closed by its reader before the end"


def describe_error(error: BaseException) -> str:
    """``"TypeName: message"``, or ``"TypeName"`` for an exception without a message (a
    cancellation); never raises, even for an exception whose ``__str__`` does (the application's
    exception must reach its caller unchanged, not be replaced by that one)."""
    try:
        text = _stable_cancellation(error, str(error))
    except Exception:
        text = "<str() failed>"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


#: anyio's message for a task one of its cancel scopes cancels (``by`` in older anyio).
_CANCEL_SCOPE = re.compile(r"Cancelled (?:via|by) cancel scope [0-9a-f]+\b")
_REASON = "; reason: "


def _stable_cancellation(error: BaseException, text: str) -> str:
    """``text``, or for anyio's cancellation what it says without the scope's address and the
    cancelling task (its coroutine's file and line), which differ from one run to the next: the
    reason given to ``CancelScope.cancel`` (such as ``deadline exceeded``) is kept."""
    if not isinstance(error, asyncio.CancelledError) or not _CANCEL_SCOPE.match(text):
        return text
    _, given, reason = text.partition(_REASON)
    return f"Cancelled via cancel scope{_REASON}{reason}" if given else "Cancelled via cancel scope"


def make_current(obs: Observation | Span) -> object | None:
    """Make ``obs``'s span (or a span) the current OTel span; returns the token for ``restore_context``."""
    try:
        return otel_context.attach(set_span_in_context(obs.span if isinstance(obs, Observation) else obs))
    except Exception as exc:
        guarded_failure("attach", exc)
        return None


def restore_context(token: object | None) -> None:
    """Undo ``make_current`` (never raises). A token made in another context (a block entered in
    one task or thread and left in another, an async generator closed by the event loop) cannot
    be reset: OpenTelemetry would log a traceback into the application's logs; counted instead
    (``context_not_restored``): the context it was made in keeps the observation current."""
    if type(token) is Token:  # OpenTelemetry's contextvars runtime (the default): reset directly
        reset_block(token)
    elif token is not None:
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception as exc:
            guarded_failure("detach", exc)


def _leave(span: Span, token: object | None) -> None:
    """``restore_context`` for ``span``'s one block. Where ``span`` stays current once ended (its block
    left in another context, as an async generator the loop closes, or before a block entered after
    it, which restores it), observations start under the block's entry (``recorder.live_parent``)."""
    if type(token) is not Token:
        restore_context(token)
        return
    stranded = get_current_span() is not span
    try:
        token.var.reset(token)
    except (RuntimeError, ValueError):  # made in another context: that one keeps the span current
        count("context_not_restored")
        stranded = True
    if stranded:
        outer = otel_context.Context() if token.old_value is Token.MISSING else token.old_value
        with suppress(AttributeError):  # a third-party span type may have no room for it
            span._autotrace_outer = outer  # type: ignore[attr-defined]


def release_if_current(obs: Observation, token: object | None) -> bool:
    """Undo ``make_current`` only where it is still in effect: callbacks of frameworks may end a
    run in another context, where detaching would corrupt that context, or (a copy of the
    context, as asyncio tasks get) fail. True if detached."""
    if get_current_span() is not obs.span:
        return False
    if isinstance(token, Token):  # OTel's contextvars runtime: a token resets only its own context
        try:
            token.var.reset(token)
        except (RuntimeError, ValueError):  # made in another context, or already used
            return False
        return True
    restore_context(token)
    return True
