"""Another instrumentation's span whose event or link dropped attributes at OpenTelemetry's limits
(128 by default: the oldest go): OTLP says how many per event and link (``dropped_attributes_count``), as autotrace
keeps for the span's own counts (``export.span_copy``). Redaction rebuilt each event and link from a
plain mapping, which says 0: the count was lost on the wire."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver

_MANY = {f"k{i}": f"v{i}" for i in range(130)}


def _sent(rx: OtlpReceiver, long_value: bool) -> list[tuple[str, int, int, str]]:
    autotrace.install(langfuse_host=rx.endpoint, credentials={"acme": ("pk-lf-acme", "sk-lf-acme")},
                      integrations=(), export_interval=0.05)
    other = trace.get_tracer("another.instrumentation")
    value = "mail jane.doe@example.com " + ("x" * 70_000 if long_value else "")
    with autotrace.tenant("acme"), other.start_as_current_span("linked") as linked:
        pass
    with autotrace.tenant("acme"), other.start_as_current_span(
            "step", links=[trace.Link(linked.get_span_context(), {**_MANY, "k129": value})]) as span:
        span.add_event("noted", {**_MANY, "k129": value})
    assert autotrace.flush(10)
    rx.wait_for_spans(2)
    out = []
    for request in rx.requests:
        message = ExportTraceServiceRequest()
        message.ParseFromString(request.body)
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for sent in scope_spans.spans:
                    for event in sent.events:
                        out.append(("event", len(event.attributes), event.dropped_attributes_count,
                                    dict((a.key, a.value.string_value) for a in event.attributes)["k129"][:24]))
                    for link in sent.links:
                        out.append(("link", len(link.attributes), link.dropped_attributes_count,
                                    dict((a.key, a.value.string_value) for a in link.attributes)["k129"][:24]))
    return sorted(out)


def test_an_events_and_a_links_dropped_attributes_are_still_counted_once_redacted() -> None:
    with OtlpReceiver() as rx:
        assert _sent(rx, long_value=False) == [("event", 128, 2, "mail <EMAIL> "), ("link", 128, 2, "mail <EMAIL> ")]


def test_they_are_still_counted_when_a_long_value_is_cut_too() -> None:
    with OtlpReceiver() as rx:
        assert _sent(rx, long_value=True) == [("event", 128, 2, "mail <EMAIL> xxxxxxxxxxx"),
                                              ("link", 128, 2, "mail <EMAIL> xxxxxxxxxxx")]
