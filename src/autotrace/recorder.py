"""Span lifecycle for observations: start an OTel span for a typed observation and finish it.

When the autotrace pipeline is installed, an observation's fields travel to the export thread
untouched and are serialised there; otherwise they are written as attributes right away so any
OTel provider the user has still receives complete spans.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from . import interception, schema
from ._internal import guarded_failure
from .observation import Observation, ObservationType, resolved_fields
from .runtime import state

__version__ = "0.1.0"
_default_tracer = trace.get_tracer("autotrace", __version__)
_tracer: trace.Tracer = _default_tracer

#: Observations whose span is ending right now, keyed by span id; read by the pipeline's on_end.
PENDING: dict[int, Observation] = {}


def use_tracer(tracer: trace.Tracer | None) -> None:
    """Create observation spans with ``tracer`` (the installed provider's), or the global one."""
    global _tracer
    _tracer = tracer if tracer is not None else _default_tracer


def start(
    obs_type: ObservationType,
    name: str,
    *,
    parent: Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    start_time: int | None = None,
    attributes: dict[str, Any] | None = None,
) -> Observation:
    """Start the span of a new observation under ``parent`` (default: the current context)."""
    span = _tracer.start_span(name, context=parent, kind=kind, start_time=start_time, attributes=attributes)
    obs = Observation(span, obs_type, name)
    try:
        span._autotrace_obs = obs  # type: ignore[attr-defined]  # lets current_observation() find it
    except AttributeError:
        pass
    interceptor = interception.active()
    if interceptor is not None:
        try:
            obs.intercept = interceptor.intercept(obs)
        except interception.ReplayStop:
            obs.record_error("replay stopped: the run no longer matches the recording")
            obs.end()
            raise
        except Exception as exc:
            guarded_failure("intercept", exc)
    return obs


def finish(obs: Observation, end_time: int | None) -> None:
    """End the observation's span, handing its fields to the pipeline (or writing them now)."""
    span = obs.span
    try:
        span._autotrace_obs = None  # type: ignore[attr-defined]  # break the span <-> handle cycle
    except AttributeError:
        pass
    try:
        if not span.is_recording():
            span.end(end_time)
            return
        if state.pipeline is not None:
            span_id = span.get_span_context().span_id
            PENDING[span_id] = obs
            try:
                span.end(end_time)
            finally:
                PENDING.pop(span_id, None)
        else:
            fields = resolved_fields(obs.fields)
            span.set_attributes(schema.observation_attributes(obs.type.value, fields, state.max_value_bytes))
            span.end(end_time)
    except Exception as exc:
        guarded_failure("finish", exc)


def current_observation() -> Observation | None:
    """The autotrace observation whose span is current, if the current span is one of ours."""
    return getattr(trace.get_current_span(), "_autotrace_obs", None)
