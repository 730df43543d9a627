"""A batch the endpoint (or a proxy before it, such as nginx with its default 1 MB body limit)
refuses as too large (HTTP 413) is sent again in halves instead of being dropped whole; a span too
large on its own is sent again with its values cut, and only one refused even so is lost, and
counted. Real OTLP/HTTP to a loopback receiver."""

from __future__ import annotations

import json
import logging
import random
import string
from collections import Counter
from typing import Any

import pytest

import autotrace
from autotrace.bounds import TRUNCATION_MARK
from autotrace.export.destination import _REGROW_AFTER, Destination
from autotrace.export.sink import OK, SinkResult
from autotrace.export.trim import TRIMMED, TRIMMED_VALUE_BYTES
from autotrace.scores import ScoreItem
from autotrace.testing.otlp_receiver import OtlpReceiver

PK, SK = "pk-lf-large", "sk-lf-large"


def _text(seed: int, size: int) -> str:
    """Words of random letters: gzip keeps about 60% of them, so a batch's size grows with its spans."""
    rng = random.Random(seed)
    words = ("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(size // 5))
    return " ".join(words)[:size]


def _install(endpoint: str) -> None:
    # a long interval: batches go out at ``flush``, all the spans waiting in one request first
    autotrace.install(langfuse_host=endpoint, public_key=PK, secret_key=SK, unknown_tenant="default",
                      integrations=(), export_interval=30.0)


def _spans(sizes: dict[str, int]) -> None:
    for seed, (name, size) in enumerate(sizes.items()):
        with autotrace.start_span(name) as span:
            span.set_output(_text(seed, size))


def test_a_batch_refused_as_too_large_arrives_in_smaller_requests(caplog: pytest.LogCaptureFixture) -> None:
    names = {f"step-{i}": 16_000 for i in range(10)}  # about 10 kB each on the wire
    with OtlpReceiver() as rx, caplog.at_level(logging.WARNING, logger="autotrace"):
        rx.limit_body(25_000)
        _install(rx.endpoint)
        _spans(names)
        assert autotrace.flush(10)
        received = Counter(span.name for span in rx.spans)
        assert received == Counter(list(names))  # each exactly once
        assert rx.refused_sizes and min(rx.refused_sizes) > 25_000
        assert all(r.raw_body_len <= 25_000 for r in rx.requests)
    stats = autotrace.stats()
    assert not [name for name in stats if name.startswith("spans_dropped")]
    assert stats["export_batches_split"] == len(rx.refused_sizes) >= 2  # 10 spans: halved at least twice
    assert "export_failures" not in stats  # the endpoint answered: no failure, no backoff
    assert caplog.text.count("as too large") == 1
    assert "refused a batch of 10 as too large (HTTP 413); sending batches of at most 5" in caplog.text


def test_a_span_too_large_alone_arrives_with_its_values_cut_and_the_others_whole(
        caplog: pytest.LogCaptureFixture) -> None:
    sizes = {f"small-{i}": 2_000 for i in range(6)}
    sizes["huge"] = 200_000
    with OtlpReceiver() as rx, caplog.at_level(logging.WARNING, logger="autotrace"):
        rx.limit_body(40_000)
        _install(rx.endpoint)
        _spans(sizes)
        assert autotrace.flush(10)
        received = {span.name: span for span in rx.spans}
    assert sorted(received) == sorted(sizes)
    huge = received.pop("huge")
    output = huge.attributes["langfuse.observation.output"]
    assert output.endswith(TRUNCATION_MARK) and output.startswith(_text(6, 200_000)[:4_000])
    assert len(output.encode()) <= TRIMMED_VALUE_BYTES + len(TRUNCATION_MARK.encode())
    assert json.loads(huge.attributes[TRIMMED]).startswith(f"each value cut to {TRIMMED_VALUE_BYTES} bytes")
    for seed, name in enumerate(sizes):  # the others as they were
        if name != "huge":
            assert received[name].attributes["langfuse.observation.output"] == _text(seed, 2_000)
            assert TRIMMED not in received[name].attributes
    stats = autotrace.stats()
    assert stats["spans_trimmed"] == 1
    assert not [name for name in stats if name.startswith("spans_dropped")]
    assert "refused a single span as too large (HTTP 413); sending it again with each value cut to 4096" in caplog.text


def test_a_span_refused_even_with_its_values_cut_is_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    sizes = {f"small-{i}": 100 for i in range(3)} | {"huge": 200_000}
    with OtlpReceiver() as rx, caplog.at_level(logging.WARNING, logger="autotrace"):
        rx.limit_body(2_000)  # less than 4 KiB of random words, gzipped
        _install(rx.endpoint)
        _spans(sizes)
        assert autotrace.flush(10)
        assert sorted(span.name for span in rx.spans) == [f"small-{i}" for i in range(3)]
    stats = autotrace.stats()
    assert stats["spans_trimmed"] == 1 and stats["spans_dropped.too_large"] == 1
    assert "spans_dropped.export_failed" not in stats
    assert "refused a single span as too large (HTTP 413); dropped" in caplog.text


def test_the_events_and_other_libraries_spans_are_cut_too() -> None:
    from opentelemetry import trace

    with OtlpReceiver() as rx:
        rx.limit_body(30_000)
        _install(rx.endpoint)
        with trace.get_tracer("other.lib").start_as_current_span("theirs") as span:
            span.set_attribute("payload", _text(1, 60_000))
            span.add_event("note", {"detail": _text(2, 60_000), "n": 3})
        assert autotrace.flush(10)
        (received,) = rx.spans
    assert received.name == "theirs"
    assert received.attributes["payload"].endswith(TRUNCATION_MARK) and len(received.attributes["payload"]) < 4_200
    (event,) = received.events
    assert event["name"] == "note"
    assert event["attributes"]["detail"].endswith(TRUNCATION_MARK) and event["attributes"]["n"] == 3
    assert autotrace.stats()["spans_trimmed"] == 1


def test_a_trimmed_span_keeps_the_counts_its_tracer_dropped() -> None:
    """The span's own limits dropped attributes, events and links before export: the trimmed copy
    still says how many (OTLP's ``dropped_*_count``), as the original would have."""
    from opentelemetry import trace
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    with OtlpReceiver() as rx:
        rx.limit_body(12_000)
        _install(rx.endpoint)
        with trace.get_tracer("other.lib").start_as_current_span("theirs") as span:
            for i in range(130):  # the SDK keeps the last 128 attributes by default
                span.set_attribute(f"extra.{i}", i)
            for i in range(130):  # and the last 128 events
                span.add_event(f"e{i}")
            span.add_event("note", {"detail": _text(2, 60_000)})
        assert autotrace.flush(10)
        request = ExportTraceServiceRequest.FromString(rx.requests[-1].body)
    (sent,) = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert sent.name == "theirs" and len(sent.attributes) == 128 + 1  # and the trimmed marker
    assert sent.events[-1].name == "note" and sent.events[-1].attributes[0].value.string_value.endswith(
        TRUNCATION_MARK)
    # the library set 130 attributes (the SDK dropped 2); autotrace's own keys then took the place of as
    # many of the others; of 131 events the SDK dropped 3
    own = [a.key for a in sent.attributes if not a.key.startswith("extra.") and a.key != TRIMMED]
    assert "langfuse.observation.type" in own
    assert (sent.dropped_attributes_count, sent.dropped_events_count) == (2 + len(own), 3)
    assert autotrace.stats()["spans_trimmed"] == 1


def test_a_score_refused_alone_is_dropped_not_trimmed() -> None:
    destination = Destination("t", _SizeLimitedSink(limit=0), max_queue=10, max_batch=4, max_retries=3,
                              clock=lambda: 0.0)
    destination.add(ScoreItem(tenant="t", body={"name": "x" * 10}))
    _drain(destination)
    assert autotrace.stats()["scores_dropped.too_large"] == 1 and "spans_trimmed" not in autotrace.stats()


def test_the_next_spans_after_a_refusal_go_in_batches_that_fit() -> None:
    with OtlpReceiver() as rx:
        rx.limit_body(25_000)
        _install(rx.endpoint)
        _spans({f"first-{i}": 16_000 for i in range(8)})
        assert autotrace.flush(10)
        refused = len(rx.refused_sizes)
        _spans({f"then-{i}": 16_000 for i in range(8)})
        assert autotrace.flush(10)
        assert len(rx.refused_sizes) == refused  # the second lot was cut to the size learnt
        assert len(rx.spans) == 16


class _SizeLimitedSink:
    """Takes batches of at most ``limit`` items; refuses larger ones as an endpoint answering 413 does."""

    name = "limited"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent: list[int] = []

    def export(self, items: list[Any]) -> SinkResult:
        self.sent.append(len(items))
        if len(items) > self.limit:
            return SinkResult(ok=False, retryable=False, reason="HTTP 413", status=413)
        return OK

    def close(self) -> None:
        pass


def _drain(destination: Destination) -> None:
    while destination.due(0.0, 1.0, force=True):
        destination.export(destination.take())


def test_the_batch_size_is_halved_per_refusal_and_doubled_back_after_batches_that_fit() -> None:
    sink = _SizeLimitedSink(limit=4)
    destination = Destination("t", sink, max_queue=1_000, max_batch=16, max_retries=3, clock=lambda: 0.0)
    for i in range(16):
        destination.add(f"span-{i}")
    _drain(destination)
    assert sink.sent == [16, 8, 4, 4, 4, 4]  # halved twice, then what was refused went in fours
    assert destination.batch_cap == 4
    sink.sent.clear()
    for i in range(4 * _REGROW_AFTER):
        destination.add(f"more-{i}")
    _drain(destination)
    # after _REGROW_AFTER batches at the cap (the four above count), eight is tried once again
    assert sink.sent == [4] * (_REGROW_AFTER - 4) + [8] + [4] * 4
    assert destination.batch_cap == 4
    sink.limit = 100  # the proxy's limit was raised: the size grows back to max_batch
    for i in range(16 * 3 * _REGROW_AFTER):
        destination.add(f"later-{i}")
    _drain(destination)
    assert destination.batch_cap == 16


def test_a_batch_over_max_export_bytes_goes_in_several_requests_of_at_most_that() -> None:
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key=PK, secret_key=SK, unknown_tenant="default",
                          integrations=(), export_interval=30.0, max_export_bytes=40_000)
        _spans({f"step-{i}": 16_000 for i in range(10)} | {"huge": 100_000})
        assert autotrace.flush(10)
        assert sorted(span.name for span in rx.spans) == sorted([f"step-{i}" for i in range(10)] + ["huge"])
        sizes = [(len(r.body), r.span_count) for r in rx.requests]
    assert len(sizes) >= 5
    assert all(size <= 40_000 or count == 1 for size, count in sizes)  # a span larger than that goes alone
    assert (max(size for size, _ in sizes), 1) in sizes
    assert "export_batches_split" not in autotrace.stats()  # cut before sending: nothing refused


def test_requests_cut_by_size_hold_the_spans_of_the_whole_request_in_order() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from autotrace.export.otlp_encode import encode_requests, encode_spans
    from tests.test_otlp_encode import _Collect, _provider

    collect = _Collect()
    agent, rag = _provider("agent", collect).get_tracer("agent.lib"), _provider("rag", collect).get_tracer("rag")
    for i in range(12):
        with (agent if i % 3 else rag).start_as_current_span(f"s{i}") as span:
            span.set_attribute("text", _text(i, 1_000 * (i + 1)))

    def flat(body: bytes) -> list[tuple[str, str, str]]:
        request = ExportTraceServiceRequest.FromString(body)
        return [(rs.resource.attributes[0].value.string_value, ss.scope.name, span.name)
                for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]

    whole = encode_spans(collect.spans)
    parts = list(encode_requests(collect.spans, 20_000))
    assert len(parts) > 2 and all(len(part) <= 20_000 + 1_000 for part in parts)  # plus resource and scope
    assert sorted(item for part in parts for item in flat(part)) == sorted(flat(whole))  # each span once
    indices = [sorted(int(name[1:]) for _, _, name in flat(part)) for part in parts]
    assert [i for part in indices for i in part] == list(range(12))  # each part the spans that follow the last
    assert list(encode_requests(collect.spans, 10 << 20)) == [whole]
