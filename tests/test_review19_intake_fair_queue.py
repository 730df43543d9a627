"""The span queue between callers and the pipeline thread is shared fairly between tenants: once a
noisy tenant has filled it (the pipeline thread held up), a quiet tenant's span takes the place of
the noisy tenant's newest queued span instead of being dropped, and every span that gives way is
counted. Old code dropped every span of the quiet tenant while the noisy one held the whole queue.
Real OpenTelemetry tracer, autotrace installed into a local store; a redaction hook holds the
pipeline thread (as in tests/test_review17_pipeline_claims.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace

import autotrace
from autotrace.runtime import state

_QUEUE = 16
_HOLD = "hold the pipeline"


@pytest.fixture
def held(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[threading.Event, Path]]:
    """autotrace installed with a small queue (or ``request.param`` items); the pipeline thread is
    held (until the event is set) by the redaction of the first span, then no longer queued."""
    gate, holding = threading.Event(), threading.Event()

    def hold(key: str, value: object, span_type: str) -> object:
        if value == _HOLD:
            holding.set()
            gate.wait(30)
        return value

    path = tmp_path / "traces.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=(),
                      queue_size=getattr(request, "param", _QUEUE),
                      export_interval=0.05, redact=[hold], backpressure=False)
    with autotrace.start_span("holder", input=_HOLD):
        pass
    assert holding.wait(10)
    try:
        yield gate, path
    finally:
        gate.set()


def _span(tracer: trace.Tracer, tenant: str, name: str) -> None:
    with autotrace.tenant(tenant), tracer.start_as_current_span(name):
        pass


def _stored(path: Path) -> list[str]:
    store = autotrace.local_store()
    assert store is not None
    return sorted(record["name"] for record in store.observations())


def test_a_quiet_tenant_keeps_its_spans_while_a_noisy_one_fills_the_queue(held: tuple[threading.Event, Path]) -> None:
    gate, path = held
    tracer = trace.get_tracer("review19")
    for i in range(3):
        for j in range(100):
            _span(tracer, "noisy", f"noisy {i}-{j}")
        _span(tracer, "quiet", f"quiet {i}")
    pipeline = state.pipeline
    assert pipeline is not None
    assert len(pipeline._queue) == _QUEUE  # never past its bound
    gate.set()
    assert autotrace.flush(10)
    # the noisy tenant's first 16 filled the queue; each quiet span took the place of its newest
    assert _stored(path) == sorted(["holder", "quiet 0", "quiet 1", "quiet 2",
                                    *(f"noisy 0-{j}" for j in range(13))])
    assert {k: v for k, v in autotrace.stats().items() if k.startswith("spans_dropped")} == {
        "spans_dropped.queue_full": 300 - 13}


def test_the_tenant_holding_most_gives_way_only_while_it_holds_more(held: tuple[threading.Event, Path]) -> None:
    """Two tenants sharing the full queue end up with half each, whichever keeps sending."""
    gate, path = held
    tracer = trace.get_tracer("review19")
    for j in range(40):
        _span(tracer, "first", f"first {j}")
    for j in range(40):
        _span(tracer, "second", f"second {j}")
    gate.set()
    assert autotrace.flush(10)
    assert _stored(path) == sorted(["holder", *(f"first {j}" for j in range(8)), *(f"second {j}" for j in range(8))])
    assert autotrace.stats()["spans_dropped.queue_full"] == 80 - 16


def test_a_score_of_a_quiet_tenant_takes_a_noisy_spans_place(held: tuple[threading.Event, Path]) -> None:
    gate, path = held
    tracer = trace.get_tracer("review19")
    for j in range(30):
        _span(tracer, "noisy", f"noisy {j}")
    with autotrace.tenant("quiet"), tracer.start_as_current_span("quiet") as span:
        autotrace.score("helpful", 1.0, trace_id=format(span.get_span_context().trace_id, "032x"))
    gate.set()
    assert autotrace.flush(10)
    assert _stored(path) == sorted(["holder", "quiet", *(f"noisy {j}" for j in range(14))])
    stats = autotrace.stats()
    assert stats["spans_dropped.queue_full"] == 30 - 14
    assert "scores_dropped.queue_full" not in stats
    store = autotrace.local_store()
    assert store is not None
    assert [record["name"] for record in store.scores()] == ["helpful"]


@pytest.mark.parametrize("held", [4096], indirect=True)
def test_a_quiet_tenant_on_its_own_thread_keeps_its_spans_beside_a_tight_loop(
        held: tuple[threading.Event, Path]) -> None:
    """A queue too long to count whole (every 4th item is counted), a noisy tenant's tight loop on
    one thread and a quiet tenant's spans on another while the queue is full."""
    gate, path = held
    pipeline = state.pipeline
    assert pipeline is not None
    tracer = trace.get_tracer("review19")
    done, produced = threading.Event(), [0]

    def noisy() -> None:
        while not done.is_set():
            _span(tracer, "noisy", "noisy")
            produced[0] += 1

    loop = threading.Thread(target=noisy)
    loop.start()
    try:
        while len(pipeline._queue) < 4096:
            done.wait(0.001)
        for i in range(10):
            _span(tracer, "quiet", f"quiet {i}")
    finally:
        done.set()
        loop.join(10)
    assert len(pipeline._queue) == 4096
    gate.set()
    assert autotrace.flush(30)
    stored = _stored(path)
    assert [name for name in stored if name.startswith("quiet")] == [f"quiet {i}" for i in range(10)]
    assert stored.count("noisy") == 4096 - 10
    assert {k: v for k, v in autotrace.stats().items() if k.startswith("spans_dropped")} == {
        "spans_dropped.queue_full": produced[0] - (4096 - 10)}
