"""Langfuse export over real OTLP/HTTP to a loopback receiver: headers, batching, retries, faults.

The traced code's result never depends on the exporter: an endpoint that is down, slow, failing
or raising only shows up in ``autotrace.stats()``.
"""

from __future__ import annotations

import base64
import logging
import socket
import time
from collections.abc import Iterator

import pytest

import autotrace
from autotrace.export.otlp_http import OtlpHttpSink
from autotrace.runtime import state
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import wait_for_stat

PK, SK = "pk-lf-export", "sk-lf-export"
AUTH = "Basic " + base64.b64encode(f"{PK}:{SK}".encode()).decode()


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rx:
        yield rx


def _install(endpoint: str, **options: object) -> None:
    autotrace.install(langfuse_host=endpoint, public_key=PK, secret_key=SK, unknown_tenant="default",
                      integrations=(), export_interval=0.05, **options)


def _work(n: int = 1) -> list[str]:
    ids = []
    for i in range(n):
        with autotrace.start_chain(f"turn-{i}") as chain:
            with autotrace.start_generation("llm", model="m"):
                pass
            ids.append(chain.trace_id)
    return ids


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_spans_arrive_with_langfuse_headers_and_links(receiver: OtlpReceiver) -> None:
    _install(receiver.endpoint)
    (trace_id,) = _work()
    assert autotrace.flush(5)
    spans = receiver.wait_for_spans(2)
    assert {(s.name, s.trace_id) for s in spans} == {("turn-0", trace_id), ("llm", trace_id)}
    chain = next(s for s in spans if s.name == "turn-0")
    llm = next(s for s in spans if s.name == "llm")
    assert llm.parent_span_id == chain.span_id and chain.parent_span_id is None
    assert llm.attributes["langfuse.observation.type"] == "generation"
    assert llm.attributes["gen_ai.request.model"] == "m"
    headers = receiver.requests[0].headers
    assert headers["authorization"] == AUTH
    assert headers["x-langfuse-ingestion-version"] == "4"
    assert headers["x-langfuse-public-key"] == PK
    assert headers["content-encoding"] == "gzip"
    assert receiver.requests[0].path == "/api/public/otel/v1/traces"
    assert autotrace.stats()["spans_exported"] == 2


def test_retries_5xx_and_429_then_delivers(receiver: OtlpReceiver) -> None:
    receiver.fail_with(503, times=1)
    _install(receiver.endpoint)
    _work(3)
    spans = receiver.wait_for_spans(6, timeout=15)
    assert len(spans) == 6
    receiver.clear()
    receiver.fail_with(429, times=1)
    _work(1)
    assert len(receiver.wait_for_spans(2, timeout=15)) == 2
    stats = autotrace.stats()
    assert stats["export_failures.langfuse:default"] == 2
    assert "spans_dropped.export_failed" not in stats


def test_dropped_connection_is_retried(receiver: OtlpReceiver) -> None:
    receiver.drop_connections(1)
    _install(receiver.endpoint)
    _work(1)
    assert len(receiver.wait_for_spans(2, timeout=15)) == 2


def test_client_error_drops_the_batch_and_counts_it(receiver: OtlpReceiver) -> None:
    receiver.require_auth("Basic wrong")
    _install(receiver.endpoint)
    _work(2)
    assert autotrace.flush(5)
    assert receiver.spans == []
    assert autotrace.stats()["spans_dropped.export_failed"] == 4


def test_endpoint_down_never_affects_the_traced_code() -> None:
    _install(f"http://127.0.0.1:{_free_port()}", max_retries=1, export_timeout=0.5)

    @autotrace.observe
    def step(x: int) -> int:
        return x + 1

    assert [step(i) for i in range(200)] == list(range(1, 201))
    assert autotrace.flush(0.2) is False  # nothing can be delivered while the endpoint is down
    deadline = time.monotonic() + 10
    while "spans_dropped.export_failed" not in autotrace.stats() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert autotrace.stats()["spans_dropped.export_failed"] >= 1


def test_an_outage_never_slows_callers_down() -> None:
    _install(f"http://127.0.0.1:{_free_port()}", max_retries=100, export_timeout=0.2, max_destination_queue=100,
              max_export_batch=10)

    @autotrace.observe
    def step(i: int) -> int:
        return i

    for i in range(50):
        step(i)
    deadline = time.monotonic() + 5
    while autotrace.stats().get("export_failures.langfuse:default", 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # let the pipeline thread see the failure
    pauses_before = autotrace.stats().get("backpressure_pauses", 0)
    for i in range(400):
        if i % 100 == 0:
            time.sleep(0.12)  # bursts, like requests, that the pipeline thread (timer 0.05 s) drains
        step(i)
    assert autotrace.stats().get("backpressure_pauses", 0) == pauses_before  # no pause during the outage
    deadline = time.monotonic() + 5  # the pipeline thread routes (and drops) asynchronously
    while "spans_dropped.destination_full" not in autotrace.stats() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert autotrace.stats()["spans_dropped.destination_full"] > 0  # drops are counted instead



def test_spans_of_a_short_outage_arrive_when_the_endpoint_comes_back(caplog: pytest.LogCaptureFixture) -> None:
    port = _free_port()
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        _install(f"http://127.0.0.1:{port}", export_timeout=0.5)  # default retries
        during = _work(3)
        assert wait_for_stat("export_failures.langfuse:default") >= 1  # nothing listens there yet
        with OtlpReceiver().start(port=port) as rx:
            after = _work(1)
            spans = rx.wait_for_spans(8, timeout=40)  # the held batch once its backoff ends, then the rest
            assert autotrace.flush(10)
    assert sorted(s.trace_id for s in spans) == sorted(2 * [*during, *after])
    assert "spans_dropped.export_failed" not in autotrace.stats()
    assert caplog.text.count("retrying with backoff") == 1  # logged once however often it failed


def test_tracing_resumes_after_a_slow_endpoint(receiver: OtlpReceiver) -> None:
    receiver.delay(10.0)
    _install(receiver.endpoint, export_timeout=0.3, max_retries=0)
    _work(2)
    assert wait_for_stat("spans_dropped.export_failed", at_least=4) == 4  # timed out, dropped and counted
    receiver.delay(0)
    (trace_id,) = _work(1)
    assert autotrace.flush(5)
    spans = receiver.wait_for_spans(2)
    assert [s.trace_id for s in spans if s.trace_id == trace_id] == [trace_id, trace_id]
    assert autotrace.stats()["spans_dropped.export_failed"] == 4


def test_a_raising_exporter_never_affects_the_traced_code(receiver: OtlpReceiver,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(self: OtlpHttpSink, spans: object) -> None:
        raise RuntimeError("exporter bug")

    healthy_export = OtlpHttpSink.export
    monkeypatch.setattr(OtlpHttpSink, "export", explode)
    _install(receiver.endpoint, max_retries=0)
    with autotrace.start_tool("t") as tool:
        tool.update(result=1)
    assert autotrace.flush(5)
    stats = autotrace.stats()
    assert stats["internal_errors.export.langfuse:default"] == 1
    assert stats["spans_dropped.export_failed"] == 1
    monkeypatch.setattr(OtlpHttpSink, "export", healthy_export)  # the bug is gone: export resumes
    with autotrace.start_tool("after"):
        pass
    assert autotrace.flush(5)
    assert [s.name for s in receiver.wait_for_spans(1)] == ["after"]


@pytest.mark.timeout(10)
def test_shutdown_with_a_slow_endpoint_is_bounded(receiver: OtlpReceiver) -> None:
    receiver.delay(30.0)
    _install(receiver.endpoint, export_timeout=60)
    _work(1)
    autotrace.shutdown(timeout=0.5)  # returns although the endpoint would hold the request for 30 s
    assert autotrace.stats()["spans_dropped.shutdown"] == 2
    receiver.delay(0)


def test_full_queue_drops_and_counts(tmp_path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), queue_size=10,
                      max_export_batch=10, export_interval=5)
    pipeline = state.pipeline
    assert pipeline is not None
    assert pipeline._thread is None  # no span yet: no thread (started by the first span)
    pipeline._stopped = True  # and none starts: the queue cannot drain
    for i in range(25):
        with autotrace.start_span(f"s{i}"):
            pass
    assert autotrace.stats()["spans_dropped.queue_full"] == 15
    pipeline._stopped = False
    pipeline._thread = pipeline._start_thread()  # the queue drains again: tracing resumes
    with autotrace.start_span("after"):
        pass
    assert autotrace.flush(10)
    store = autotrace.local_store()
    assert store is not None
    assert sorted(r["name"] for r in store.observations()) == sorted([f"s{i}" for i in range(10)] + ["after"])
    assert autotrace.stats()["spans_dropped.queue_full"] == 15


class _SlowHandler(logging.Handler):
    """A log handler as slow as a remote log shipper: each record takes a while to be written."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.written: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        time.sleep(0.3)
        self.written.append(record.getMessage())


@pytest.mark.parametrize("status", [500, 401])
def test_flush_returns_after_the_failed_batch_is_said_and_its_keys_forgotten(
        receiver: OtlpReceiver, status: int) -> None:
    """A failed batch's warning (and, for refused keys, the credentials cache's forgetting) happens
    before the batch stops being in flight: a ``flush`` that waited for it finds both done."""
    from autotrace.export.credentials import Credentials

    forgotten: list[str | None] = []

    class Resolver:
        def resolve(self, tenant: str) -> Credentials:
            return Credentials(f"pk-lf-{tenant}", f"sk-lf-{tenant}")

        def invalidate(self, tenant: str | None = None) -> None:
            time.sleep(0.3)
            forgotten.append(tenant)

    handler = _SlowHandler()
    logger = logging.getLogger("autotrace")
    logger.addHandler(handler)
    try:
        receiver.fail_with(status)
        autotrace.install(langfuse_host=receiver.endpoint, credentials=Resolver(), integrations=(),
                          export_interval=30.0, max_retries=0)
        with autotrace.tenant("acme"), autotrace.start_span("step"):
            pass
        assert autotrace.flush(10)
        assert handler.written == [f"autotrace: export to tenant:acme failed (HTTP {status}); batch dropped (counted)"]
        assert forgotten == (["acme"] if status == 401 else [])
    finally:
        logger.removeHandler(handler)
