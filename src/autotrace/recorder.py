"""Starting observations: an OTel span for a typed observation, under the current context (the
observation finishes itself: ``Observation.end``)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from . import interception
from ._internal import guarded_failure
from .observation import Observation, ObservationType

__version__ = "0.1.0"
_default_tracer = trace.get_tracer("autotrace", __version__)
_tracer: Any = _default_tracer
#: How many ended observations, each left current by the next one's block, ``live_parent`` skips.
_MAX_STRANDED = 16


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
    """Start the span of a new observation under ``parent`` (default: the current context, see
    ``live_parent``)."""
    if parent is None:
        parent = live_parent()
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


def start_with(obs_type: ObservationType, name: str, failure: str, *, parent: Context | None = None,
               kind: SpanKind = SpanKind.INTERNAL, **fields: Any) -> Observation:
    """``start`` an observation (under ``parent``, of ``kind``) and record ``fields``; if recording
    them fails (counted under ``failure``), the observation is still given back, to be ended: never
    left open."""
    obs = start(obs_type, name, parent=parent, kind=kind)
    try:
        obs.update(**fields)
    except Exception as exc:
        guarded_failure(failure, exc)
    return obs


def live_parent() -> Context | None:
    """None (the current context), or, when the current span is an observation that ended while its
    ``with`` block was still current here (see ``observation._leave``), the context that block was
    entered in (that observation's parent), so new observations do not start under an ended one."""
    outer = getattr(trace.get_current_span(), "_autotrace_outer", None)
    for _ in range(_MAX_STRANDED):
        further = None if outer is None else getattr(trace.get_current_span(outer), "_autotrace_outer", None)
        if further is None:
            return outer
        outer = further
    return outer


def current_observation() -> Observation | None:
    """The autotrace observation whose span is current, if the current span is one of ours (for an
    ended one left current here by its block, see ``live_parent``: its parent)."""
    obs = getattr(trace.get_current_span(), "_autotrace_obs", None)
    if obs is None and (outer := live_parent()) is not None:
        obs = getattr(trace.get_current_span(outer), "_autotrace_obs", None)
    return obs
