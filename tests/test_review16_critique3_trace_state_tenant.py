"""A redaction hook may apply one tenant's policy (``redaction_tenant()``) to the W3C trace state an
incoming request brought. The spans of one request share that trace state; its redacted form was
remembered whatever tenant it was redacted for, so a span of a strict tenant ending after one of a
lenient tenant went out with the lenient tenant's (unredacted) trace state."""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import autotrace
from autotrace import propagation
from autotrace.export.credentials import Credentials
from autotrace.export.redaction import redaction_tenant
from autotrace.testing.otlp_receiver import OtlpReceiver

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _states(rx: OtlpReceiver) -> dict[str, str]:
    """Each exported span's trace state, by span name."""
    states = {}
    for request in rx.requests:
        message = ExportTraceServiceRequest.FromString(request.body)
        for rs in message.resource_spans:
            for ss in rs.scope_spans:
                states.update({span.name: span.trace_state for span in ss.spans})
    return states


def test_a_tenants_trace_state_policy_applies_to_its_spans_whatever_was_redacted_before(rx: OtlpReceiver) -> None:
    seen: list[tuple[str | None, str]] = []

    def per_tenant(key: str, value: Any, span_type: str) -> Any:
        if span_type != "tracestate":
            return value
        seen.append((redaction_tenant(), key))
        return None if redaction_tenant() == "strict" else value  # its contract lets nothing leave

    autotrace.install(langfuse_host="http://127.0.0.1:9", export_interval=30, integrations=(), redact=[per_tenant],
                      credentials={name: Credentials(f"pk-{name}", f"sk-{name}", host=rx.endpoint)
                                   for name in ("lenient", "strict")})
    incoming = propagation.extract({"traceparent": PARENT, "tracestate": "app=ref-123"})
    token = otel_context.attach(incoming)
    try:  # one request (one trace state), handled for two tenants
        for i, name in enumerate(("lenient", "strict", "lenient")):
            with autotrace.tenant(name), autotrace.start_span(f"for-{name}-{i}"):
                pass
            assert autotrace.flush(5)
    finally:
        otel_context.detach(token)
    assert len(rx.wait_for_spans(3)) == 3
    assert _states(rx) == {"for-lenient-0": "app=ref-123", "for-strict-1": "", "for-lenient-2": "app=ref-123"}
    assert seen == [("lenient", "app"), ("strict", "app"), ("lenient", "app")]
