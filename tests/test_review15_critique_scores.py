"""An evaluator's score follows the sampling of the observation it evaluates (review 15), not its
own: an evaluator given an observation of another trace (an offline evaluation job, another
tenant's answer) runs in a trace of its own, sampled on its own."""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import autotrace
from tests.helpers import Traced

_CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _under_caller(flags: str) -> object:
    carrier = {"traceparent": f"00-{_CALLER_TRACE}-00f067aa0ba902b7-{flags}"}
    return otel_context.attach(TraceContextTextMapPropagator().extract(carrier))


@autotrace.observe(as_type="evaluator", name="judge")
def judge(answer: autotrace.Observation) -> float:
    return 0.75


def test_an_evaluator_in_an_unsampled_trace_scores_a_sampled_observation(traced: Traced) -> None:
    """The judged answer was exported; the evaluation job runs under a caller that sampled it out:
    the score was dropped as unsampled (the evaluator's trace), leaving the answer unscored."""
    with autotrace.start_generation("answer", model="m") as answer:
        answer.set_output("fine")
    token = _under_caller("00")
    try:
        assert judge(answer) == 0.75
    finally:
        otel_context.detach(token)
    assert autotrace.flush(5)
    scores = autotrace.local_store().scores(answer.trace_id)
    assert [(s["name"], s["value"], s["observation_id"]) for s in scores] == [("judge", 0.75, answer.id)]
    assert "scores_dropped.unsampled" not in autotrace.stats()


def test_an_evaluator_of_an_unsampled_observation_drops_its_score(traced: Traced) -> None:
    """The answer's trace was sampled out (never exported); a sampled evaluation job judged it: the
    score was sent for a trace that does not exist."""
    token = _under_caller("00")
    try:
        with autotrace.start_generation("answer", model="m") as answer:
            answer.set_output("fine")
    finally:
        otel_context.detach(token)
    assert judge(answer) == 0.75
    assert autotrace.flush(5)
    assert [r["name"] for r in traced.records()] == ["judge"]
    assert autotrace.local_store().scores(_CALLER_TRACE) == []
    assert autotrace.stats()["scores_dropped.unsampled"] == 1


def test_an_evaluator_of_another_tenants_observation_is_no_tenant_mismatch(traced: Traced) -> None:
    """globex's evaluation job judges acme's answer: the score goes to acme by design, yet it was
    counted (and logged) as ``tenant_mismatch``, the signal of a trace started under the wrong
    tenant."""
    with autotrace.tenant("acme"), autotrace.start_generation("answer", model="m") as answer:
        answer.set_output("fine")
    with autotrace.tenant("globex"), autotrace.start_chain("job"):
        assert judge(answer) == 0.75
    assert autotrace.flush(5)
    scores = autotrace.local_store().scores(answer.trace_id)
    assert [(s["name"], s["tenant"], s["observation_id"]) for s in scores] == [("judge", "acme", answer.id)]
    assert {k: v for k, v in autotrace.stats().items() if k.startswith("tenant")} == {"tenant_new_trace": 1}
