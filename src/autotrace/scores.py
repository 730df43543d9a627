"""Scores: numeric, boolean or categorical judgements attached to a trace or an observation.

A score travels through the same pipeline as spans (off the caller's thread, redacted, routed by
tenant) and is sent to the tenant's Langfuse scores API, one per request, and to the local store.
``score()`` never raises: a score it cannot send is dropped, counted in ``stats()`` and logged once.
A score on an observation of a trace the sampler left out is dropped with it. An evaluator's
result (``observe(as_type="evaluator")``) becomes a score on the observation it evaluated.
"""

from __future__ import annotations

import dataclasses
import decimal
import math
import numbers
import re
import time
import uuid
import weakref
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import get_current_span

from . import bounds, recorder
from ._internal import count, guarded_failure, log_once
from .config import ENVIRONMENT_NAME
from .context import Held, current_tenant, hold_scope, release_scope, valid_tenant
from .observation import Observation, ObservationType, ScoreValue
from .recorder import current_observation
from .runtime import state
from .schema import ENVIRONMENT, iso_time

_DATA_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL")
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")


@dataclasses.dataclass(slots=True)
class ScoreItem:
    """One score on its way to a destination (Langfuse body field names)."""

    body: dict[str, Any]
    tenant: str | None


class _Invalid(ValueError):
    """A score argument autotrace cannot send; the message names the argument, never its value."""


def _data_type(value: object, declared: object) -> str:
    if declared is not None:
        if not isinstance(declared, str) or declared.upper() not in _DATA_TYPES:
            raise _Invalid(f"data_type must be one of {', '.join(_DATA_TYPES)}")
        return declared.upper()
    if isinstance(value, bool):
        return "BOOLEAN"
    return "NUMERIC" if isinstance(value, int | float) else "CATEGORICAL"


def _plain(value: object) -> object:
    """A score computed with numpy (``np.mean``, ``np.sum``, a comparison), ``fractions`` or
    ``decimal`` (a database's ``AVG()``) as the plain bool, int or float it stands for: the pipeline
    and Langfuse take only those (a numpy float, a float subclass, was sent on as is and failed
    redaction; a ``Decimal``, no ``numbers.Real``, was taken for a category's value)."""
    kind = type(value)
    if kind is bool or kind is int or kind is float or kind is str:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)  # also an IntEnum
    if isinstance(value, decimal.Decimal) and value.is_snan():  # ``float()`` raises: a NaN, invalid
        return math.nan
    if isinstance(value, numbers.Real | decimal.Decimal):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)  # a StrEnum member: its text
    if kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_"):
        return bool(value)
    return value


def _value(value: object, kind: str) -> ScoreValue:
    """The value as Langfuse takes it for ``kind`` (a boolean as 1/0)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    too_big = isinstance(value, int) and abs(value) >= 2**63
    if too_big or (isinstance(value, float) and not math.isfinite(value)):
        raise _Invalid("a score value must be a finite number (an integer of 64 bits at most)")
    if kind == "BOOLEAN" and (isinstance(value, bool) or (number and value in (0, 1))):
        return 1 if value else 0
    if kind == "NUMERIC" and isinstance(value, int | float):
        return int(value) if isinstance(value, bool) else value
    if kind == "CATEGORICAL" and isinstance(value, str):
        return value
    raise _Invalid(f"a {kind} score needs a {'string' if kind == 'CATEGORICAL' else 'number'} value")


def _comment(comment: object) -> str | None:
    if comment is None or isinstance(comment, str):
        return comment
    if isinstance(comment, bytes | bytearray):
        return bytes(comment).decode("utf-8", "replace")
    raise _Invalid("comment must be a string")


def unsampled(obs: Any) -> bool:
    """Whether ``obs`` belongs to a trace the sampler left out: a score on it would point at a trace
    that is never exported, so it is dropped (``scores_dropped.unsampled``)."""
    if not _sampled_out(obs):
        return False
    count("scores_dropped.unsampled")
    return True


def _sampled_out(obs: Any) -> bool:
    """``unsampled``, not counted."""
    try:
        span_context = obs.span.get_span_context()
        return bool(span_context.is_valid and not span_context.trace_flags.sampled)  # invalid: not installed
    except Exception:
        return False


def score(
    name: str,
    value: ScoreValue,
    *,
    trace_id: str | None = None,
    observation_id: str | None = None,
    data_type: str | None = None,
    comment: str | None = None,
    tenant: str | None = None,
) -> str | None:
    """Record a score; defaults to the current observation. Returns the score id (None if not sent).

    ``data_type`` is NUMERIC, BOOLEAN or CATEGORICAL (inferred from ``value`` when omitted);
    ``trace_id`` is 32 and ``observation_id`` 16 hex digits. Never raises: an invalid argument
    drops the score (``scores_dropped.invalid``, logged once per argument).
    """
    return _guarded(name, value, trace_id, observation_id, data_type, comment, tenant, None)


def score_observation(obs: Observation, name: str, value: ScoreValue, data_type: str | None,
                      comment: str | None) -> str | None:
    """``Observation.score``: a score on ``obs``, sent to the tenant ``obs`` started with, even once
    it (and its trace) has ended and the current scope is another tenant's or none."""
    if unsampled(obs):
        return None
    return _guarded(name, value, obs.trace_id, obs.id, data_type, comment, None, started_tenant(obs),
                    trace_environment(obs), own=True)


def started_tenant(obs: Observation) -> str | None:
    """The tenant the observation's span started with (kept on the span by the pipeline); None if
    it started with none, or before ``install()``."""
    return getattr(obs.span, "_autotrace_tenant", None)


def trace_environment(obs: Observation | None) -> str | None:
    """The environment the observation's span carries (``trace_attributes(environment=...)``), one
    Langfuse takes; None for none: its scores then go to the installed environment."""
    try:
        environment = obs.span.attributes.get(ENVIRONMENT)  # type: ignore[union-attr]
    except Exception:  # no observation, or a span that records nothing
        return None
    return environment if type(environment) is str and ENVIRONMENT_NAME.match(environment) else None


def _guarded(name: object, value: object, trace_id: object, observation_id: object, data_type: object,
             comment: object, tenant: object, started_with: str | None, environment: str | None = None, *,
             own: bool = False) -> str | None:
    """``_score``, never raising: an invalid argument or an internal failure drops the score, counted.
    ``own``: given through the scored observation's handle (or its evaluator), not by ids alone."""
    try:
        return _score(name, value, trace_id, observation_id, data_type, comment, tenant, started_with, environment,
                      own)
    except _Invalid as exc:
        count("scores_dropped.invalid")
        log_once(f"score_invalid:{exc}", "autotrace: score dropped: %s", exc)
    except Exception as exc:  # never into the application
        count("scores_dropped.internal_error")
        guarded_failure("score", exc)
    return None


def _score(name: object, value: object, trace_id: object, observation_id: object, data_type: object,
           comment: object, tenant: object, started_with: str | None, environment: str | None,
           own: bool) -> str | None:
    """A score's body, queued for its tenant and sent in the environment of the trace it scores (of
    the observation scored, else the current one's when it is of that trace), else the installed one
    (``_installed_environment``)."""
    pipeline = state.pipeline
    if pipeline is None:
        count("scores_dropped.not_installed")
        return None
    obs = current_observation() if environment is None else None
    if trace_id is None:
        if obs is None:
            count("scores_dropped.no_target")
            log_once("score_no_target", "autotrace: score() outside an observation needs trace_id=")
            return None
        if unsampled(obs):
            return None
        trace_id = obs.trace_id
        if observation_id is None or (isinstance(observation_id, str) and observation_id.lower() == obs.id):
            started_with = started_tenant(obs)
            own = True
        observation_id = observation_id or obs.id
    elif obs is not None and isinstance(trace_id, str):
        if obs.trace_id != trace_id.lower():
            obs = None  # the current observation is of another trace: says nothing of the scored one's
        elif unsampled(obs):  # the current trace, named by its id: left out, its scores with it
            return None
        else:  # the current trace, or its current observation: the caller's own work
            own = own or observation_id is None or (isinstance(observation_id, str) and observation_id.lower() == obs.id)
    if not isinstance(trace_id, str) or _TRACE_ID.fullmatch(trace_id) is None or int(trace_id, 16) == 0:
        raise _Invalid("trace_id must be a trace id of 32 hex digits")
    if observation_id is not None and (not isinstance(observation_id, str) or _SPAN_ID.fullmatch(observation_id)
                                       is None):
        raise _Invalid("observation_id must be an observation id of 16 hex digits")
    if not isinstance(name, str) or not name:
        raise _Invalid("name must be a non-empty string")
    if tenant and not valid_tenant(tenant):
        raise _Invalid("tenant must be a valid tenant id")
    value = _plain(value)
    kind = _data_type(value, data_type)
    limit = state.max_value_bytes  # its texts held as a span's are, cut once redacted (``redact_score``)
    score_value = _value(value, kind)
    body: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "traceId": trace_id.lower(),
        "name": bounds.hold(name, limit),
        "value": bounds.hold(score_value, limit) if type(score_value) is str else score_value,
        "dataType": kind,
        # when it was given (the local store keeps it; Langfuse's scores API takes the time it
        # receives a score, and replaces one sent again with the same id the same UTC day)
        "timestamp": iso_time(time.time_ns()),
    }
    if observation_id:
        body["observationId"] = observation_id.lower()
    text = _comment(comment)
    if text is not None:
        body["comment"] = bounds.hold(text, limit)
    environment = environment or trace_environment(obs) or _installed_environment()
    if environment:
        body["environment"] = environment
    tenants = pipeline.tenants  # with no tenant of its trace or in scope, the resolver's, as a span's
    owner = _trace_owner(tenants, trace_id, observation_id, started_with, tenant, own)
    if owner == _REFUSED:
        return None
    pipeline.submit(ScoreItem(body, owner or current_tenant() or tenants.resolve()))
    return body["id"]


def _installed_environment() -> str | None:
    """The environment a trace's spans that carry none of their own are filed under: the installed
    one, else the one Langfuse reads from their resource (``deployment.environment``), as sent."""
    settings = state.settings
    if settings is not None and settings.environment:
        return settings.environment
    from .export.langfuse import resource_environment  # not at import: the export imports this module

    return resource_environment(getattr(state.provider, "resource", None))


#: ``_trace_owner``'s answer for a score that must not be sent (never a valid tenant)
_REFUSED = ""


def _trace_owner(tenants: Any, trace_id: str, observation_id: str | None, started_with: str | None,
                 given: object, own: bool) -> str | None:
    """The tenant of the scored observation, else of its trace, while they are live, else the one
    the scored observation's handle started with, else ``given`` (``tenant=``): a score goes where
    its trace goes, as a span does. Given another tenant (``tenant=``, in scope, else the resolver's)
    than the one that owns the work it scores, a score of that work's own (its handle, its
    evaluator, or ``score()`` in its current observation) still goes to the owner (counted as
    ``tenant_mismatch``); one by ids alone is refused (``_REFUSED``, counted as
    ``scores_dropped.tenant_mismatch``): one tenant never writes into another's project by knowing
    its trace or observation ids."""
    of_observation = tenants.tenant_of(int(observation_id, 16)) if observation_id else None
    of_trace = tenants.known(int(trace_id, 16))
    owner = of_observation or of_trace or started_with
    if owner is None:
        return given or None  # type: ignore[return-value]  # (checked by ``_score``)
    scope = given or current_tenant() or (None if own else tenants.resolve())
    if own:
        if scope is not None and scope != owner:
            count("tenant_mismatch")
            log_once("score_tenant_mismatch", "autotrace: a score on work owned by one tenant was given under "
                     "another; it goes to the work's tenant (counted as tenant_mismatch)")
        return owner
    if (scope is not None and scope != owner) or (of_trace is not None and of_trace != owner):
        count("scores_dropped.tenant_mismatch")
        log_once("score_tenant_refused", "autotrace: a score by trace id on another tenant's live trace was dropped "
                 "(counted as scores_dropped.tenant_mismatch)")
        return _REFUSED
    return owner


def evaluation_target(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Observation | None:
    """What an evaluator evaluates: an ``Observation`` it is given, else the observation it runs in."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, Observation):
            return value
    return current_observation()


#: Evaluator observations running, each with the tenant the observation it evaluates started with,
#: whether the sampler left that observation's trace out, and that observation's environment.
_EVALUATED: weakref.WeakKeyDictionary[Observation, tuple[str | None, bool, str | None]] = weakref.WeakKeyDictionary()


def start_evaluation(obs_type: ObservationType, name: str, target: Observation) -> Observation:
    """The observation of an evaluator of ``target``: named in its metadata; its score goes where
    ``target`` went, even once ``target`` (and its trace) ended, and only if ``target``'s trace is
    exported (``score_evaluation``): an evaluator of another trace's observation is sampled apart.
    Of another tenant's work than the scope's (or of a scope with none), it is that tenant's, as
    it reads that work: under the current span when that is the tenant's, else a trace of its own,
    without the scope's trace attributes."""
    owner = started_tenant(target)
    held = evaluation_scope(owner)
    if held is None:
        obs = recorder.start(obs_type, name)
    else:
        try:
            span = get_current_span()
            own = getattr(span, "_autotrace_tenant", None) == owner  # set when the span started
            if not own and span.get_span_context().is_valid:
                count("tenant_new_trace")
            obs = recorder.start(obs_type, name, parent=None if own else Context())
        finally:
            release_scope(held)
    try:  # the observation started is given back whatever fails here: ended with the call, never left open
        obs.update(metadata={"evaluates": target.id, "evaluates_trace": target.trace_id})
        _EVALUATED[obs] = (owner, _sampled_out(target), trace_environment(target))
    except Exception as exc:
        guarded_failure("observe.begin", exc)
    return obs


def evaluation_scope(owner: str | None) -> Held | None:
    """``owner`` (the tenant of evaluated work) in scope for its evaluator, when another (or none)
    is (``release_scope`` undoes it); None, nothing done, otherwise."""
    return hold_scope(owner) if owner is not None and owner != current_tenant() else None


def evaluated_tenant(obs: Observation) -> str | None:
    """The tenant of the observation that evaluator ``obs`` evaluates, while ``obs`` runs; None if
    that observation has none (or ``obs`` is no evaluator's)."""
    noted = _EVALUATED.get(obs)
    return noted[0] if noted is not None else None


def score_evaluation(name: str, obs: Observation, output: Any) -> None:
    """Attach an evaluator's result as a score to the observation it evaluated.

    The result may be a number, a bool, a string (categorical), or a mapping with ``value`` and
    optionally ``comment`` and ``data_type``.
    """
    metadata = obs.fields.get("metadata") or {}
    target = metadata.get("evaluates")
    started_with, sampled_out, environment = _EVALUATED.pop(obs, (None, _sampled_out(obs), None))
    if target is None:
        return
    if sampled_out:
        count("scores_dropped.unsampled")
        return
    comment = data_type = None
    if isinstance(output, dict):
        comment, data_type, output = output.get("comment"), output.get("data_type"), output.get("value")
    output = _plain(output)  # numpy's numbers too
    if isinstance(output, bool | int | float | str):
        # sent to the evaluated tenant by name: an evaluator running under another tenant is no mismatch
        _guarded(name, output, metadata["evaluates_trace"], target, data_type, comment, started_with, None,
                 environment, own=True)
