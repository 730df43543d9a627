"""Export review: HTTP statuses worth a retry, batches sent in several requests of which a later one
fails, and what a trimmed span keeps. Real OTLP/HTTP to a loopback receiver."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import autotrace
from autotrace.bounds import TRUNCATION_MARK
from autotrace.export.otlp_encode import encode_spans
from autotrace.export.otlp_http import classify
from autotrace.export.trim import TRIMMED_VALUE_BYTES, trimmed
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import CERTS, server_tls
from tests.test_export_too_large import _spans
from tests.test_otlp_encode import _Collect

PK, SK = "pk-lf-review3", "sk-lf-review3"


class _FailsNth(OtlpReceiver):
    """A receiver that answers the trace requests numbered in ``failures`` (from 1) with their status."""

    def __init__(self, failures: dict[int, int]) -> None:
        super().__init__()
        self._failures = failures
        self._seen = 0

    def _injected_fault(self) -> str | int | None:
        with self._cond:
            self._seen += 1
            return self._failures.get(self._seen)


def _install(endpoint: str, **options: object) -> None:
    # a long interval: the spans go out at ``flush``, as one batch
    autotrace.install(langfuse_host=endpoint, public_key=PK, secret_key=SK, unknown_tenant="default",
                      integrations=(), export_interval=30.0, **options)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 507, 520, 521, 522, 523, 524, 530, 599, 408, 425, 429])
def test_server_errors_a_cdn_answers_and_throttling_are_retryable(status: int) -> None:
    assert classify(status, {}).retryable


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 501, 505])
def test_requests_that_can_never_be_served_are_not_retried(status: int) -> None:
    assert not classify(status, {}).retryable


def test_a_batch_a_cdn_answered_522_is_sent_again_and_delivered() -> None:
    with _FailsNth({1: 522}) as rx:
        _install(rx.endpoint, max_retries=2)
        _spans({"a": 10, "b": 10})
        assert autotrace.flush(10)
        assert Counter(span.name for span in rx.spans) == Counter(["a", "b"])
    stats = autotrace.stats()
    assert stats["spans_exported"] == 2 and stats["export_failures.langfuse:default"] == 1
    assert not [name for name in stats if name.startswith("spans_dropped")]


def test_spans_of_requests_taken_before_a_later_one_is_refused_are_counted_exported_not_dropped() -> None:
    # about 2 kB each on the wire: 4 spans a request of 10 kB at most, 3 requests
    sizes = {f"step-{i}": 2_000 for i in range(10)}
    with _FailsNth({2: 400}) as rx:
        _install(rx.endpoint, max_export_bytes=10_000)
        _spans(sizes)
        assert autotrace.flush(10)
        received = Counter(span.name for span in rx.spans)
    assert received == Counter([f"step-{i}" for i in range(4)])  # the first request's, once
    stats = autotrace.stats()
    assert stats["spans_exported"] == 4
    assert stats["spans_dropped.export_failed"] == 6  # the refused request's spans and those after them


def test_spans_of_requests_taken_before_a_later_one_fails_are_not_sent_again_with_the_retry() -> None:
    sizes = {f"step-{i}": 2_000 for i in range(10)}
    with _FailsNth({3: 503}) as rx:
        _install(rx.endpoint, max_export_bytes=10_000, max_retries=2)
        _spans(sizes)
        assert autotrace.flush(10)
        received = Counter(span.name for span in rx.spans)
    assert received == Counter(list(sizes))  # each exactly once
    stats = autotrace.stats()
    assert stats["spans_exported"] == 10 and stats["export_failures.langfuse:default"] == 1
    assert not [name for name in stats if name.startswith("spans_dropped")]


def test_a_span_too_large_in_the_last_request_of_a_batch_is_trimmed_and_the_others_arrive_once() -> None:
    sizes = {f"small-{i}": 2_000 for i in range(6)}
    sizes["huge"] = 200_000
    with OtlpReceiver() as rx:
        rx.limit_body(40_000)
        _install(rx.endpoint, max_export_bytes=20_000)
        _spans(sizes)
        assert autotrace.flush(10)
        received = Counter(span.name for span in rx.spans)
    assert received == Counter(list(sizes))  # each exactly once: the small ones were taken at first
    stats = autotrace.stats()
    assert stats["spans_exported"] == 7 and stats["spans_trimmed.langfuse:default"] == 1
    assert "export_batches_split" not in stats  # only the huge span's request was refused, alone


def test_a_trimmed_span_keeps_the_counts_of_attributes_its_events_dropped() -> None:
    collect = _Collect()
    provider = TracerProvider(span_limits=SpanLimits(max_event_attributes=1))
    provider.add_span_processor(SimpleSpanProcessor(collect))
    with provider.get_tracer("lib").start_as_current_span("step") as span:
        span.add_event("long", {"dropped": 1, "text": "x" * 10_000})  # the oldest is dropped at the limit
        span.add_event("short", {"n": 1})
    smaller = trimmed(collect.spans[0])
    assert smaller is not None
    request = ExportTraceServiceRequest.FromString(encode_spans([smaller]))
    events = request.resource_spans[0].scope_spans[0].spans[0].events
    assert [(e.name, e.dropped_attributes_count) for e in events] == [("long", 1), ("short", 0)]
    text = events[0].attributes[0].value.string_value
    assert text.endswith(TRUNCATION_MARK) and len(text.encode()) <= TRIMMED_VALUE_BYTES  # cut, as the test means


@pytest.mark.parametrize(("host", "ca", "said"), [
    ("127.0.0.1", None, "SSLCertVerificationError: unable to get local issuer certificate"),
    ("localhost", CERTS / "ca.pem", "SSLCertVerificationError: Hostname mismatch, certificate is not valid for "
                                    "'localhost'"),
])
def test_a_tls_failure_is_logged_once_with_its_cause(host: str, ca: Path | None, said: str,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with OtlpReceiver(tls=server_tls()) as rx, caplog.at_level(logging.WARNING, logger="autotrace"):
        _install(rx.endpoint.replace("127.0.0.1", host), max_retries=1, export_ca_file=ca)
        for _ in range(2):
            _spans({"a": 10})
            autotrace.flush(5)
        assert rx.spans == []
    assert f"export to default failed ({said}" in caplog.text
    assert caplog.text.count("retrying with backoff") == 1
    assert autotrace.stats()["export_failures.langfuse:default"] >= 2


def test_https_to_a_plain_http_port_is_logged_with_what_tls_said(caplog: pytest.LogCaptureFixture) -> None:
    with OtlpReceiver() as rx, caplog.at_level(logging.WARNING, logger="autotrace"):
        _install(rx.endpoint.replace("http://", "https://"), max_retries=0)
        _spans({"a": 10})
        autotrace.flush(5)
    assert "export to default failed (SSLError: WRONG_VERSION_NUMBER); batch dropped (counted)" in caplog.text


def test_a_413_a_proxy_answers_before_taking_the_body_splits_the_batch_instead_of_failing_it() -> None:
    with OtlpReceiver() as rx:
        split_when_refused_at_the_headers(rx)


def split_when_refused_at_the_headers(rx: OtlpReceiver, **options: object) -> None:
    """Spans some 5 MB in one request once compressed (more than the socket buffers, so sending it
    fails) to ``rx``, which answers 413 at the headers and closes, the body unread: split, all sent."""
    sizes = {f"step-{i}": 60_000 for i in range(140)}
    rx.limit_body(400_000, at_headers=True)
    _install(rx.endpoint, max_retries=1, max_export_bytes=16 << 20, **options)
    _spans(sizes)
    assert autotrace.flush(20)
    assert rx.refused_sizes
    assert Counter(span.name for span in rx.spans) == Counter(list(sizes))
    stats = autotrace.stats()
    assert stats["spans_exported"] == 140 and stats["export_batches_split.langfuse:default"] >= 1
    assert "export_failures.langfuse:default" not in stats
    assert not [name for name in stats if name.startswith("spans_dropped")]
