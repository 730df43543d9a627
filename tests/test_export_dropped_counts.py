"""Each exported span says how many of its attributes and events were dropped on the way (OTLP's
``dropped_attributes_count`` and ``dropped_events_count``): by another library's tracer limits, by
autotrace's own span limits, and by the pipeline's attribute cap. Real OTLP/HTTP to a loopback
receiver, decoded with ``opentelemetry-proto``."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_default_tenant


def _exported(rx: OtlpReceiver) -> dict[str, Any]:
    assert autotrace.flush(10)
    spans = {}
    for received in rx.requests:
        request = ExportTraceServiceRequest.FromString(received.body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                spans.update({span.name: span for span in scope_spans.spans})
    return spans


def test_another_librarys_span_keeps_the_counts_its_tracer_dropped_and_adds_the_caps() -> None:
    with OtlpReceiver() as rx:
        install_default_tenant(rx, "d")
        with trace.get_tracer("other.lib").start_as_current_span("theirs") as span:
            for i in range(130):  # the SDK keeps 128
                span.set_attribute(f"extra.{i}", i)
            for i in range(131):
                span.add_event(f"e{i}")
        with trace.get_tracer("other.lib").start_as_current_span("small") as span:
            span.set_attribute("one", 1)
        sent = _exported(rx)
    theirs = sent["theirs"]
    own = [a.key for a in theirs.attributes if not a.key.startswith("extra.")]
    assert "langfuse.observation.type" in own and len(theirs.attributes) == 128
    # 2 dropped by the SDK, then as many of its own as autotrace's keys took the place of
    assert (theirs.dropped_attributes_count, theirs.dropped_events_count) == (2 + len(own), 3)
    assert (sent["small"].dropped_attributes_count, sent["small"].dropped_events_count) == (0, 0)


def test_autotraces_own_span_says_what_its_limits_dropped() -> None:
    with OtlpReceiver() as rx:
        install_default_tenant(rx, "d")
        with autotrace.start_span("busy"):
            span = trace.get_current_span()  # autotrace's own span, through the OpenTelemetry API
            for i in range(140):
                span.set_attribute(f"k{i}", i)
            for i in range(140):
                span.add_event(f"e{i}")
        with autotrace.start_span("quiet"):
            pass
        sent = _exported(rx)
    busy = sent["busy"]
    assert len(busy.attributes) == 128 and len(busy.events) == 128
    stats = autotrace.stats()
    assert busy.dropped_attributes_count == stats["attributes_dropped"] >= 12
    assert busy.dropped_events_count == stats["events_dropped"] == 12
    assert (sent["quiet"].dropped_attributes_count, sent["quiet"].dropped_events_count) == (0, 0)
