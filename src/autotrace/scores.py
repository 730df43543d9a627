"""Scores: numeric, boolean or categorical judgements attached to a trace or an observation.

A score travels through the same pipeline as spans (off the caller's thread, redacted, routed by
tenant) and is sent to the tenant's Langfuse scores API, one per request, and to the local store.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from ._internal import count, log_once
from .context import current_tenant
from .recorder import current_observation
from .runtime import state

ScoreValue = float | int | bool | str
_DATA_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL")


@dataclasses.dataclass(slots=True)
class ScoreItem:
    """One score on its way to a destination (Langfuse body field names)."""

    body: dict[str, Any]
    tenant: str | None


def _data_type(value: ScoreValue, declared: str | None) -> str:
    if declared is not None:
        upper = declared.upper()
        if upper not in _DATA_TYPES:
            raise ValueError(f"data_type must be one of {', '.join(_DATA_TYPES)}, got {declared!r}")
        return upper
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "NUMERIC"
    return "CATEGORICAL"


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

    ``data_type`` is NUMERIC, BOOLEAN or CATEGORICAL (inferred from ``value`` when omitted).
    """
    pipeline = state.pipeline
    if pipeline is None:
        count("scores_dropped.not_installed")
        return None
    if trace_id is None:
        obs = current_observation()
        if obs is None:
            count("scores_dropped.no_target")
            log_once("score_no_target", "autotrace: score() outside an observation needs trace_id=")
            return None
        trace_id = obs.trace_id
        observation_id = observation_id or obs.id
    kind = _data_type(value, data_type)
    body: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "traceId": trace_id,
        "name": name,
        "value": (1 if value else 0) if kind == "BOOLEAN" else value,
        "dataType": kind,
    }
    if observation_id:
        body["observationId"] = observation_id
    if comment is not None:
        body["comment"] = comment
    settings = state.settings
    if settings is not None and settings.environment:
        body["environment"] = settings.environment
    owner = tenant or current_tenant() or pipeline.tenants.known(int(trace_id, 16))
    pipeline.submit(ScoreItem(body, owner))
    return body["id"]
