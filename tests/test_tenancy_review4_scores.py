"""A score given by trace id, with no tenant in scope, goes to the trace's tenant while any of its
local roots is live: a trace can have several (an in-process server's span beside its client's,
two requests carrying one incoming trace id), and the first to end must not forget the trace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver

INCOMING = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def acme() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                      credentials={"acme": Credentials("pk-acme", "sk-acme", host=receiver.endpoint)})
    yield receiver
    autotrace.uninstall()
    receiver.stop()


def _scores(receiver: OtlpReceiver) -> list[tuple[str, str]]:
    return [(body["name"], body["traceId"]) for _headers, body in receiver.scores]


def test_a_score_by_trace_id_goes_to_the_trace_while_a_local_root_of_it_is_live(acme: OtlpReceiver) -> None:
    incoming = TraceContextTextMapPropagator().extract(INCOMING)
    tracer = trace.get_tracer("app")
    with autotrace.tenant("acme"):
        first = tracer.start_span("handler-1", context=incoming)
        second = tracer.start_span("handler-2", context=incoming)
    first.end()  # one local root of the trace ended; the other is still live
    assert autotrace.score("quality", 0.5, trace_id=TRACE_ID) is not None  # no tenant in scope
    second.end()
    assert autotrace.score("late", 0.1, trace_id=TRACE_ID) is not None  # every root ended: no owner known
    assert autotrace.flush(5)
    assert sorted(s.name for s in acme.wait_for_spans(2)) == ["handler-1", "handler-2"]
    assert _scores(acme) == [("quality", TRACE_ID)]
    assert autotrace.stats()["scores_dropped.no_tenant"] == 1


def test_a_root_that_started_with_no_tenant_does_not_end_the_tenants_trace(acme: OtlpReceiver) -> None:
    incoming = TraceContextTextMapPropagator().extract(INCOMING)
    tracer = trace.get_tracer("app")
    with autotrace.tenant("acme"):
        owned = tracer.start_span("owned", context=incoming)
    tracer.start_span("tenantless", context=incoming).end()  # dropped (no tenant), and counted so
    assert autotrace.score("quality", 0.5, trace_id=TRACE_ID) is not None
    owned.end()
    assert autotrace.flush(5)
    assert [s.name for s in acme.wait_for_spans(1)] == ["owned"]
    assert _scores(acme) == [("quality", TRACE_ID)]
    assert autotrace.stats()["spans_dropped.no_tenant"] == 1
