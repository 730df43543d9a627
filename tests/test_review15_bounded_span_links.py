"""autotrace's own light span bounds the links other code adds through the OpenTelemetry API as the
SDK's span does (128 by default): a long-lived observation (a consumer's span linking every message
it takes) must not grow without bound. Real OTLP/HTTP to a loopback receiver, decoded with
``opentelemetry-proto``."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.trace import SpanContext, TraceFlags

import autotrace
from autotrace.spans import ObservationSpan
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_default_tenant

_ADDED = 5_000


def test_links_added_to_a_long_lived_observation_are_bounded_and_the_rest_counted() -> None:
    limit = SpanLimits().max_links  # the SDK's default, which a light span follows
    with OtlpReceiver() as rx:
        install_default_tenant(rx, "d")
        with autotrace.start_span("consumer"):
            span = trace.get_current_span()  # autotrace's own span, through the OpenTelemetry API
            assert isinstance(span, ObservationSpan)
            for i in range(_ADDED):
                span.add_link(SpanContext(i + 1, i + 1, True, TraceFlags(1)), {"message": i})
            assert len(span.links) == limit
        assert autotrace.flush(10)
        [sent] = [s for r in rx.requests
                  for rs in ExportTraceServiceRequest.FromString(r.body).resource_spans
                  for ss in rs.scope_spans for s in ss.spans if s.name == "consumer"]
    assert len(sent.links) == limit
    assert [link.span_id for link in sent.links[:2]] == [(1).to_bytes(8, "big"), (2).to_bytes(8, "big")]  # the first kept
    assert sent.dropped_links_count == autotrace.stats()["links_dropped"] == _ADDED - limit
