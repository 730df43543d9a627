"""A score given by the trace id of the current trace, which the sampler left out (an incoming
``traceparent`` with the sampled flag unset), is dropped with that trace, as one given without the
id is: it was sent to Langfuse for a trace never exported. Real pipeline, loopback receiver."""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_default_tenant

_CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _scores_given_under_caller(flags: str) -> list[str | None]:
    carrier = {"traceparent": f"00-{_CALLER_TRACE}-00f067aa0ba902b7-{flags}"}
    token = otel_context.attach(TraceContextTextMapPropagator().extract(carrier))
    try:
        with autotrace.start_span("handler") as span:
            return [autotrace.score("by_trace_id", 1.0, trace_id=_CALLER_TRACE.upper()),
                    autotrace.score("by_both_ids", 0.5, trace_id=_CALLER_TRACE, observation_id=span.id),
                    autotrace.score("current", True)]
    finally:
        otel_context.detach(token)


def test_a_score_by_the_id_of_the_current_unsampled_trace_is_dropped_with_it(rx: OtlpReceiver) -> None:
    install_default_tenant(rx, "sampling")
    assert _scores_given_under_caller("00") == [None, None, None]
    assert autotrace.flush(10)
    assert rx.spans == [] and rx.scores == []
    assert autotrace.stats()["scores_dropped.unsampled"] == 3


def test_a_score_by_the_id_of_the_current_sampled_trace_is_sent(rx: OtlpReceiver) -> None:
    install_default_tenant(rx, "sampling")
    assert None not in _scores_given_under_caller("01")
    assert autotrace.flush(10)
    assert sorted(body["name"] for _, body in rx.scores) == ["by_both_ids", "by_trace_id", "current"]
    assert "scores_dropped.unsampled" not in autotrace.stats()
