"""Scores hold places in the full span queue like spans: a tenant posting scores in a tight loop
(an evaluation job) gives way to another tenant's spans and scores as a tenant ending spans does.
Old code counted only queued spans as held, so a queue filled with one tenant's scores dropped
every span and score of every other tenant. Real OpenTelemetry tracer, autotrace installed into a
local store; a redaction hook holds the pipeline thread (as in test_review19_intake_fair_queue)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from opentelemetry import trace

import autotrace
from autotrace.runtime import state
from tests.test_review19_intake_fair_queue import held  # noqa: F401 (the fixture)

_QUEUE = 16
_TRACE = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def gate(held: tuple[threading.Event, Path]) -> threading.Event:  # noqa: F811
    """autotrace installed with a queue of 16; the pipeline thread held until the event is set."""
    return held[0]


def _scores(tenant: str, n: int) -> None:
    with autotrace.tenant(tenant):
        for i in range(n):
            autotrace.score(f"{tenant} {i}", float(i), trace_id=_TRACE)


def _stored() -> tuple[list[str], list[str]]:
    store = autotrace.local_store()
    assert store is not None
    return (sorted(record["name"] for record in store.observations()),
            sorted(record["name"] for record in store.scores()))


def test_a_quiet_tenants_span_and_score_take_the_places_of_a_noisy_tenants_scores(gate: threading.Event) -> None:
    _scores("noisy", 40)
    pipeline = state.pipeline
    assert pipeline is not None and len(pipeline._queue) == _QUEUE
    with autotrace.tenant("quiet"), trace.get_tracer("review19").start_as_current_span("quiet"):
        pass
    _scores("quiet", 1)
    gate.set()
    assert autotrace.flush(10)
    assert _stored() == (["holder", "quiet"], sorted(["quiet 0", *(f"noisy {i}" for i in range(14))]))
    stats = autotrace.stats()
    assert {k: v for k, v in stats.items() if "dropped" in k} == {"scores_dropped.queue_full": 40 - 14}


def test_two_tenants_posting_scores_share_the_full_queue(gate: threading.Event) -> None:
    _scores("first", 30)
    _scores("second", 30)
    gate.set()
    assert autotrace.flush(10)
    assert _stored()[1] == sorted([*(f"first {i}" for i in range(8)), *(f"second {i}" for i in range(8))])
    assert {k: v for k, v in autotrace.stats().items() if "dropped" in k} == {"scores_dropped.queue_full": 60 - 16}
