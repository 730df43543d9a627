"""An evaluator given another tenant's observation is that tenant's: its span (which records the
evaluated work as its input), the calls it makes and its score go to the evaluated observation's
tenant, never to the tenant whose request happened to run it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver


@pytest.fixture
def projects() -> Iterator[dict[str, OtlpReceiver]]:
    started = {name: OtlpReceiver().start() for name in ("acme", "globex")}
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05, credentials={
        name: Credentials(f"pk-{name}", f"sk-{name}", host=receiver.endpoint) for name, receiver in started.items()})
    yield started
    autotrace.uninstall()
    for receiver in started.values():
        receiver.stop()


@autotrace.observe(as_type="evaluator", name="judge")
def judge(answer: autotrace.Observation) -> float:
    with autotrace.start_generation("judge-call", model="m") as call:
        call.set_output("fine")
    return 0.9


def test_an_evaluator_of_another_tenants_observation_runs_in_that_tenants_project(
        projects: dict[str, OtlpReceiver]) -> None:
    with autotrace.tenant("acme"), autotrace.start_generation("answer", model="m") as answer:
        answer.set_output("the refund is on its way")
    with autotrace.tenant("globex"), autotrace.trace_attributes(user_id="bob"), \
            autotrace.start_chain("evaluation-job") as job:
        assert judge(answer) == 0.9
    assert autotrace.flush(5)
    acme = {s.name: s for s in projects["acme"].wait_for_spans(3)}
    globex = projects["globex"].wait_for_spans(1)
    assert sorted(acme) == ["answer", "judge", "judge-call"] and [s.name for s in globex] == ["evaluation-job"]
    assert acme["judge"].parent_span_id is None and acme["judge"].trace_id != job.trace_id  # a trace of its own
    assert acme["judge-call"].parent_span_id == acme["judge"].span_id
    assert "user.id" not in acme["judge"].attributes  # not globex's user
    assert answer.id in acme["judge"].attributes["langfuse.observation.input"]  # what it evaluates: acme's
    scores = [body for _headers, body in projects["acme"].scores]
    assert [(s["name"], s["value"], s["traceId"]) for s in scores] == [("judge", 0.9, answer.trace_id)]
    assert projects["globex"].scores == []


def test_an_evaluator_run_with_no_tenant_in_scope_is_the_evaluated_observations(
        projects: dict[str, OtlpReceiver]) -> None:
    with autotrace.tenant("acme"), autotrace.start_generation("answer", model="m") as answer:
        answer.set_output("ok")
    assert judge(answer) == 0.9  # a batch job: no tenant of its own
    assert autotrace.flush(5)
    acme = {s.name: s for s in projects["acme"].wait_for_spans(3)}
    assert sorted(acme) == ["answer", "judge", "judge-call"]
    assert "spans_dropped.no_tenant" not in autotrace.stats()
