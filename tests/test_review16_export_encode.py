"""The OTLP encoder's cost on the export thread (which shares the GIL with the application): a
resource's hash is a JSON dump of its attributes, and grouping spans by resource hashed it once per
span, a third of what encoding a batch cost."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as reference
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from autotrace.export.otlp_encode import encode_parts, encode_spans


class _CountingResource(Resource):
    hashed = 0

    def __hash__(self) -> int:
        _CountingResource.hashed += 1
        return super().__hash__()


def _spans(resource: Resource, n: int) -> list[ReadableSpan]:
    tracer = TracerProvider(resource=resource).get_tracer("lib")
    spans = []
    for i in range(n):
        span = tracer.start_span(f"s{i}", attributes={"langfuse.observation.type": "span"})
        span.end()
        spans.append(span)  # type: ignore[arg-type]
    return spans  # type: ignore[return-value]


def test_a_batch_hashes_its_resource_once_not_once_per_span() -> None:
    spans = _spans(_CountingResource({"service.name": "svc", "deployment.environment": "prod"}), 200)
    _CountingResource.hashed = 0
    encoded = encode_spans(spans)
    assert _CountingResource.hashed == 1
    _CountingResource.hashed = 0
    assert [held for _, held in encode_parts(spans, 1 << 20)] == [200]
    assert _CountingResource.hashed == 1
    assert ExportTraceServiceRequest.FromString(encoded) == reference(spans)


def test_equal_resources_of_two_providers_still_share_one_resource_group() -> None:
    """Grouping by object must not split what OpenTelemetry's encoder groups by equality."""
    first = _spans(Resource({"service.name": "svc"}), 2)
    second = _spans(Resource({"service.name": "svc"}), 2)
    other = _spans(Resource({"service.name": "other"}), 1)
    spans = [first[0], other[0], second[0], first[1], second[1]]
    request = ExportTraceServiceRequest.FromString(encode_spans(spans))
    assert request == reference(spans)
    assert [[s.name for scope in group.scope_spans for s in scope.spans] for group in request.resource_spans] == [
        ["s0", "s0", "s1", "s1"], ["s0"]]
