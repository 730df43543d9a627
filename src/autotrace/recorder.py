"""Span lifecycle for observations: start an OTel span for a typed observation and finish it.

An observation's fields become span attributes when it ends, on the caller's thread: that frees
the objects it refers to (a parsed response, a copied message list) at once instead of keeping
them alive in the export queue, where they would fill the garbage collector's older generations.
Everything costlier (redaction, routing, export) still happens on the pipeline thread.
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
_tracer: Any = _default_tracer



def use_tracer(tracer: Any) -> None:
    """Create observation spans with ``tracer`` (the installed one), or the global provider's."""
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
    """Write the observation's fields onto its span as attributes, then end the span."""
    span = obs.span
    try:
        span._autotrace_obs = None  # type: ignore[attr-defined]  # break the span <-> handle cycle
    except AttributeError:
        pass
    try:
        if span.is_recording():
            fields = resolved_fields(obs.fields)
            span.set_attributes(schema.observation_attributes(obs.type.value, fields, state.max_value_bytes))
    except Exception as exc:  # the span still ends, with what it has
        guarded_failure("finish", exc)
    try:
        span.end(end_time)
    except Exception as exc:
        guarded_failure("finish", exc)


def current_observation() -> Observation | None:
    """The autotrace observation whose span is current, if the current span is one of ours."""
    return getattr(trace.get_current_span(), "_autotrace_obs", None)
