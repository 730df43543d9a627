"""The span pipeline core as a production user meets it: the sampled flag of another provider's
spans, flush under other threads' steady traffic, and spans reaching a pipeline already shut down."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider, sampling

import autotrace
from autotrace.runtime import state
from tests.helpers import Traced, numbered_spans


class _RecordOnlyFor(sampling.Sampler):
    """Records every span; samples (exports) only those not named ``unsampled``: a tail-sampling
    or span-metrics setup, where a span is recorded for local use but the trace is left out."""

    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                      attributes: Any = None, links: Any = None, trace_state: Any = None) -> sampling.SamplingResult:
        decision = sampling.Decision.RECORD_ONLY if name == "unsampled" else sampling.Decision.RECORD_AND_SAMPLE
        return sampling.SamplingResult(decision, attributes)

    def get_description(self) -> str:
        return "record-only-for-unsampled"


@pytest.fixture
def app_provider() -> Iterator[TracerProvider]:
    """The application's own global tracer provider, set before autotrace is installed."""
    provider = TracerProvider(sampler=_RecordOnlyFor())
    previous, was_set = trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE._done  # owned for a moment
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE._done = False
    trace.set_tracer_provider(provider)
    try:
        yield provider
    finally:
        autotrace.uninstall()
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE._done = previous, was_set


def test_a_recorded_but_unsampled_span_is_never_exported(app_provider: TracerProvider, tmp_path: Path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05)
    tracer = app_provider.get_tracer("app")
    with tracer.start_as_current_span("unsampled") as left_out:
        with tracer.start_as_current_span("child") as child:  # sampled by this sampler, its parent not
            pass
    with tracer.start_as_current_span("kept"):
        pass
    assert left_out.is_recording() is False and not left_out.get_span_context().trace_flags.sampled
    assert child.get_span_context().trace_flags.sampled
    assert [r["name"] for r in Traced(tmp_path / "t.db").records()] == ["child", "kept"]
    assert autotrace.stats() == {"spans_exported": 2, "spans_exported.local": 2}


def test_flush_returns_once_what_came_before_is_exported_while_other_threads_keep_tracing(tmp_path: Path) -> None:
    """A request handler (or a task) that flushes at its end, in a server whose other threads keep
    tracing: the queue and the export buffers are never empty, yet everything finished before the
    flush is exported and the flush says so (before: it waited its whole timeout, then said False)."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=30.0)
    stop = threading.Event()
    started = threading.Event()

    def other_requests() -> None:
        while not stop.is_set():
            with autotrace.start_span("other"):
                started.set()
            time.sleep(0.0002)

    worker = threading.Thread(target=other_requests)
    worker.start()
    try:
        assert started.wait(5)
        numbered_spans(3, "mine")
        assert autotrace.flush(3.0) is True
        store = autotrace.local_store()
        assert store is not None
        mine = sorted(r["name"] for r in store.observations() if r["name"] != "other")
        assert mine == ["mine-0", "mine-1", "mine-2"]
    finally:
        stop.set()
        worker.join()
    assert autotrace.flush(5.0)
    assert not [k for k in autotrace.stats() if k.startswith("spans_dropped")]


def _redact_and_flush(results: list[bool]) -> Any:
    def hook(key: str, value: Any, span_type: str) -> Any:
        if value == "flush from the hook":
            results.append(autotrace.flush(3.0))
        return value
    return hook


def test_a_flush_on_the_pipeline_thread_does_not_stall_it(tmp_path: Path) -> None:
    """A redaction hook (run on the pipeline thread) that calls ``flush``: it cannot wait for the
    thread it runs on, so it says False at once instead of holding that thread (and every export)
    for its whole timeout."""
    results: list[bool] = []
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05,
                      redact=[_redact_and_flush(results)])
    with autotrace.start_span("s") as span:
        span.set_output("flush from the hook")
    assert autotrace.flush(1.0) is True  # before: False, the pipeline thread stuck 3 s in the hook's flush
    assert results == [False]
    assert [r["name"] for r in Traced(tmp_path / "t.db").records()] == ["s"]


def _open_under(pipeline: Any, name: str) -> Any:
    """A span open under ``pipeline`` as a thread sees it that read the installed pipeline (as the
    relay does) just before ``install`` replaced it."""
    provider = TracerProvider(shutdown_on_exit=False)  # not kept alive (with the pipeline) until exit
    provider.add_span_processor(pipeline)
    return provider.get_tracer("app").start_span(name)


def test_a_span_reaching_a_replaced_pipeline_goes_to_the_new_one(tmp_path: Path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05)
    with autotrace.tenant("acme"):
        late = _open_under(state.pipeline, "late")
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.06)
    late.end()  # the old pipeline is shut down: before, the span was queued there, never exported nor counted
    (record,) = Traced(tmp_path / "t.db").records()
    assert (record["name"], record["tenant"]) == ("late", "acme")
    assert autotrace.stats() == {"spans_exported": 1, "spans_exported.local": 1}


def test_the_flush_a_shutdown_makes_completes_with_spans_in_flight(tmp_path: Path) -> None:
    """A shutdown sets the queue's bound to 0 (what comes then is handed on); its flush's barrier was
    then "held past the queue's bound" and dropped unanswered, so every re-install and uninstall
    with a span in flight waited its whole timeout (5 s) and reported the flush failed."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05)
    pipeline = state.pipeline
    assert pipeline is not None
    with autotrace.tenant("acme"), autotrace.start_span("in flight"):
        pass
    pipeline._closing, pipeline._max_queue = True, 0  # as ``shutdown`` begins
    assert pipeline.flush(30.0)
    (record,) = Traced(tmp_path / "t.db").records()
    assert record["name"] == "in flight" and "spans_dropped.shutdown" not in autotrace.stats()


def test_a_span_reaching_a_pipeline_after_uninstall_is_counted(tmp_path: Path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05)
    late = _open_under(state.pipeline, "late")
    autotrace.uninstall()
    late.end()
    assert autotrace.stats() == {"spans_dropped.shutdown": 1}


def test_another_librarys_span_open_across_uninstall_and_install_keeps_its_tenant(tmp_path: Path) -> None:
    """An OpenTelemetry SDK span (another instrumentation's: the SDK hands the processor a copy at
    its end, without what autotrace kept on the span) started for tenant acme before ``uninstall()``
    and ended after the next ``install()``: exported as acme's, as autotrace's own spans are (before:
    with no tenant, so to the ``unknown_tenant`` destination)."""
    options: dict[str, Any] = {"local_store": "on", "local_store_path": tmp_path / "t.db", "integrations": (),
                               "export_interval": 0.05}
    autotrace.install(**options)
    with autotrace.tenant("acme"):
        assert state.provider is not None
        sdk_span = state.provider.get_tracer("http.client").start_span("GET")
        own = autotrace.start_span("own")
    autotrace.uninstall()
    autotrace.install(**options)
    sdk_span.end()
    own.end()
    records = Traced(tmp_path / "t.db").records()
    assert sorted((r["name"], r["tenant"]) for r in records) == [("GET", "acme"), ("own", "acme")]


def test_a_span_started_in_the_replaced_tracker_after_the_take_over_keeps_its_tenant() -> None:
    """``install`` with new options copies the tenants of open spans into the new pipeline, then
    switches, then copies again once the integrations are patched again: a span that started in the
    old pipeline after the first copy and is finalised by the new one before the second (an SDK span,
    which carries no tenant of its own) keeps its tenant; so does a child started under it."""
    from autotrace.export.tenant_tracker import TenantTracker

    old, new = TenantTracker(None), TenantTracker(None)
    new.take_over(old)
    with autotrace.tenant("acme"):
        assert old.span_started(1, 7, None) == "acme"
    parent = trace.SpanContext(7, 1, is_remote=False)
    assert new.span_started(2, 7, parent) == "acme"  # no current tenant: the parent's
    assert new.span_finished(2) == ("acme", False)
    assert new.span_finished(1) == ("acme", False)
