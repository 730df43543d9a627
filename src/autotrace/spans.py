"""Light spans for autotrace's own observations.

When autotrace's span pipeline is the only processor of the tracer provider, an observation does
not need the SDK span's machinery (attribute validation under a lock, a copy into a new readable
span at end, processor fan-out). ``ObservationTracer`` then creates an ``ObservationSpan``: a small
OpenTelemetry ``Span`` with the same ids, sampling decision and parent rules as the SDK's, that
hands itself to the pipeline when it ends. It is an ordinary API span, so making it current lets
any other OpenTelemetry instrumentation start its spans under it.

As soon as the provider has another processor (the application's own exporter, say), spans come
from the SDK tracer again, so every processor keeps seeing every span.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.util.types import Attributes

from ._internal import count, guarded_failure
from .bounds import has_long_string
from .runtime import state
from .schema import MAX_ATTRIBUTES

_UNSET = Status(StatusCode.UNSET)
#: As the SDK's default span limits: later attributes (new keys), events and links are dropped, counted.
_MAX_EVENTS = _MAX_LINKS = 128
_NO_TRACE_STATE = TraceState()
_RANDOM_TRACE_ID = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)  # W3C level 2; older APIs lack it
_FLAGS = {  # (sampled, random trace id) -> flags; shared, they never change
    (sampled, random): TraceFlags((TraceFlags.SAMPLED if sampled else 0) | (_RANDOM_TRACE_ID if random else 0))
    for sampled in (False, True) for random in (False, True)
}


class ObservationSpan(trace.Span):
    """A recording span read by the pipeline like a finished SDK span (same attribute names)."""

    __slots__ = ("_autotrace_adoptable", "_autotrace_obs", "_autotrace_outer", "_autotrace_tenant", "_relay", "attributes", "context",
                 "dropped_attributes", "dropped_events", "dropped_links", "end_time", "events", "instrumentation_scope", "kind", "links",
                 "long_values", "name", "parent", "resource", "settling", "start_time", "status")

    def __init__(self, name: str, context: SpanContext, parent: SpanContext | None, kind: SpanKind,
                 start_time: int, resource: Resource, scope: InstrumentationScope, relay: SpanProcessor) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.start_time = start_time
        self.end_time: int | None = None
        #: Attributes, events and links dropped past the limits (also counted in ``stats()``); read
        #: by exporters as on a finished SDK span (OTLP's ``dropped_*_count``).
        self.dropped_attributes = self.dropped_events = self.dropped_links = 0
        self.resource = resource
        self.instrumentation_scope = scope
        self.attributes: dict[str, Any] = {}
        self.events: tuple[Event, ...] | list[Event] = ()
        self.links: tuple[trace.Link, ...] = ()
        self.status = _UNSET
        self._autotrace_obs: Any = None
        #: Set when the span ended while its block stayed current somewhere (``observation._leave``).
        self._autotrace_outer: Any = None
        self._relay = relay
        #: Whether a string longer than a quarter of the value size limit was set through the
        #: OpenTelemetry API; if not, the pipeline need not look for values to cut.
        self.long_values = False
        #: How to build an ended observation's attributes, for ``settle``: a function and its arguments.
        self.settling: tuple[Callable[..., Mapping[str, Any]], tuple[Any, ...]] | None = None

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        if self.end_time is None and self._put(key, value) and has_long_string((value,), state.max_value_bytes):
            self.long_values = True

    def _put(self, key: str, value: Any) -> bool:
        """Set one attribute unless it is a new key past the limit (dropped, counted)."""
        if len(self.attributes) >= MAX_ATTRIBUTES and key not in self.attributes:
            count("attributes_dropped")
            self.dropped_attributes += 1
            return False
        self.attributes[key] = value
        return True

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self.end_time is None:
            if not self.long_values and has_long_string(attributes.values(), state.max_value_bytes):
                self.long_values = True
            self._merge_capped(attributes)

    def _merge_capped(self, attributes: Mapping[str, Any]) -> None:
        """Set attributes whose values are within the size limit (no scan for long ones)."""
        if len(self.attributes) + len(attributes) <= MAX_ATTRIBUTES:
            self.attributes.update(attributes)
            return
        for key, value in attributes.items():
            self._put(key, value)

    def hand_over(self, build: Callable[..., Mapping[str, Any]], *args: Any) -> None:
        """Have ``settle`` set the attributes ``build(*args)`` of an ending observation (``args``
        are plain values: nothing the caller can still change): they are then built on the
        pipeline thread, many spans in a row, instead of once per call on the caller's."""
        if self.end_time is None:
            self.settling = (build, args)

    def settle(self) -> None:
        """Set the attributes handed over (within the size limit); never raises: if building them
        fails, the span keeps the attributes it has."""
        pending, self.settling = self.settling, None
        if pending is None:
            return
        build, args = pending
        try:
            self._merge_capped(build(*args))
        except Exception as exc:
            guarded_failure("finish", exc)

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        if self.end_time is not None:
            return
        if len(self.events) >= _MAX_EVENTS:
            count("events_dropped")
            self.dropped_events += 1
            return
        if not isinstance(self.events, list):
            self.events = []
        self.events.append(Event(name, dict(attributes or {}), timestamp or time.time_ns()))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        if self.end_time is not None or context is None or not context.is_valid:
            return
        if len(self.links) >= _MAX_LINKS:  # a long-lived span (a consumer linking each message) stays bounded
            count("links_dropped")
            self.dropped_links += 1
            return
        self.links = (*self.links, trace.Link(context, attributes))

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return  # as in the SDK: OK is final
        self.status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(self, exception: BaseException, attributes: Attributes = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        event_attributes: dict[str, Any] = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": _text(exception),
            "exception.stacktrace": _stack_trace(exception),
            "exception.escaped": str(escaped),
        }
        event_attributes.update(attributes or {})
        self.add_event("exception", event_attributes, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time or time.time_ns()
        self._relay.on_end(self)  # type: ignore[arg-type]  # read like a ReadableSpan

    def __repr__(self) -> str:
        return f"<ObservationSpan {self.name!r} span_id={self.context.span_id:016x}>"


class ObservationTracer:
    """Starts observation spans: light ones while ``relay`` is the provider's only processor."""

    def __init__(self, provider: TracerProvider, relay: SpanProcessor, version: str) -> None:
        self._provider = provider
        self._relay = relay
        self._sdk_tracer = provider.get_tracer("autotrace", version)
        self._scope = InstrumentationScope("autotrace", version)

    def light(self) -> bool:
        """True while the relay is the provider's only span processor (read defensively: if the
        SDK ever stores its processors differently, the SDK path is used)."""
        active = getattr(self._provider, "_active_span_processor", None)
        processors = getattr(active, "_span_processors", None)
        return type(processors) is tuple and len(processors) == 1 and processors[0] is self._relay

    def start_span(self, name: str, context: Context | None = None, kind: SpanKind = SpanKind.INTERNAL,
                   start_time: int | None = None, attributes: Mapping[str, Any] | None = None) -> trace.Span:
        if self.light():
            try:
                return self._start_light(name, context, kind, start_time, attributes)
            except Exception as exc:  # e.g. an SDK whose provider changed shape: its own tracer still works
                guarded_failure("light_span", exc)
        return self._sdk_tracer.start_span(name, context=context, kind=kind, start_time=start_time,
                                           attributes=attributes)

    def _start_light(self, name: str, context: Context | None, kind: SpanKind, start_time: int | None,
                     attributes: Mapping[str, Any] | None) -> trace.Span:
        provider = self._provider
        parent = trace.get_current_span(context).get_span_context()
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = provider.id_generator.generate_trace_id()
            is_random = getattr(provider.id_generator, "is_trace_id_random", None)
            random_id = bool(is_random()) if is_random is not None else False
        else:
            trace_id = parent.trace_id
            random_id = bool(getattr(parent.trace_flags, "random_trace_id", False))
        sampled, trace_state, extra = _sample(provider.sampler, context, parent, trace_id, name, kind, attributes)
        # positional: keyword arguments make this call 40% dearer (6,200 against 4,400 instructions)
        span_context = SpanContext(trace_id, provider.id_generator.generate_span_id(), False,
                                   _FLAGS[(sampled, random_id)], trace_state)
        if not sampled:
            return trace.NonRecordingSpan(span_context)
        span = ObservationSpan(name, span_context, parent, kind, start_time or time.time_ns(), provider.resource,
                               self._scope, self._relay)
        if extra:
            span.set_attributes(extra)
        self._relay.on_start(span, context)  # type: ignore[arg-type]
        return span


def _text(exception: BaseException) -> str:
    """``str(exception)``, or a note that it failed: an exception whose ``__str__`` raises is still
    recorded (``traceback`` says the same of it in the stack trace)."""
    try:
        return str(exception)
    except Exception:
        return "<str() failed>"


#: How many frames of an exception's traceback its stack trace shows, those nearest the raise:
#: an exception leaving N nested observations (a traced recursion) is recorded by each, and writing
#: every frame each time cost O(N²) on the caller's thread (300 levels: 2 s to raise).
MAX_TRACEBACK_FRAMES = 64
#: The first line of an exception's own traceback as ``traceback`` writes it, and what follows it:
#: a plain exception's, an exception group's (whose lines are drawn in a box).
_TRACEBACK_HEADERS = {"Traceback (most recent call last):\n": "  ",
                      "  + Exception Group Traceback (most recent call last):\n": "  |   "}


def _stack_trace(exception: BaseException) -> str:
    """The exception's stack trace as ``traceback`` writes it, of its innermost ``MAX_TRACEBACK_FRAMES``
    frames only (a line says how many outer ones are left out)."""
    frames, tb = 0, exception.__traceback__
    while tb is not None:  # following links only: no frame is read
        frames, tb = frames + 1, tb.tb_next
    if frames <= MAX_TRACEBACK_FRAMES:
        return "".join(traceback.format_exception(exception))
    tb = exception.__traceback__
    for _ in range(frames - MAX_TRACEBACK_FRAMES):  # (a ``limit`` would still read every frame's position)
        tb = tb.tb_next  # type: ignore[union-attr]
    lines = traceback.format_exception(type(exception), exception, tb)
    for index in range(len(lines) - 1, -1, -1):  # its own traceback is the last one at the outer level written
        if (margin := _TRACEBACK_HEADERS.get(lines[index])) is not None:  # (after the ones it was raised from)
            lines.insert(index + 1, f"{margin}[{frames - MAX_TRACEBACK_FRAMES} outer frames left out]\n")
            break
    return "".join(lines)


def _sample(sampler: sampling.Sampler, context: Context | None, parent: SpanContext | None, trace_id: int,
            name: str, kind: SpanKind, attributes: Mapping[str, Any] | None,
            ) -> tuple[bool, TraceState, Mapping[str, Any] | None]:
    """The provider's sampling decision; the SDK default (parent-based, always on) is decided inline."""
    if sampler is sampling.DEFAULT_ON:
        if parent is None:
            return True, _NO_TRACE_STATE, attributes
        return parent.trace_flags.sampled, parent.trace_state, attributes
    result = sampler.should_sample(context, trace_id, name, kind, attributes, ())
    return result.decision.is_sampled(), result.trace_state or _NO_TRACE_STATE, result.attributes
