"""An evaluator given another tenant's observation is that tenant's while its body runs, not only
for its own span: the calls it makes carry that tenant, so an internal service it calls (which
trusts its callers' tenant) records them in the evaluated tenant's project. Before, the body ran
in the caller's tenant: a gRPC call made by an evaluator of acme's answer, run from a globex job,
told the service "globex", and acme's evaluation went to globex's project.

Real grpcio server and channel on loopback; spans received by a loopback OTLP endpoint per tenant."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.propagation import inject
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.grpc_services import CLIENT_KW, SERVER_KW

SERVICE = "test.Judge"


@pytest.fixture
def projects() -> Iterator[dict[str, OtlpReceiver]]:
    started = {name: OtlpReceiver().start() for name in ("acme", "globex")}
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=("grpc",), export_interval=0.05,
                      trust_incoming_tenant=True, credentials={
                          name: Credentials(f"pk-{name}", f"sk-{name}", host=rx.endpoint)
                          for name, rx in started.items()})
    yield started
    autotrace.uninstall()
    for rx in started.values():
        rx.stop()


def _lookup(request: Any, context: Any) -> dict[str, Any]:
    with autotrace.start_retrieval("lookup", query="refund") as found:
        found.update(doc_count=1)
    return {"tenant": autotrace.current_tenant()}


@pytest.fixture
def service() -> Iterator[grpc.Channel]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        SERVICE, {"Lookup": grpc.unary_unary_rpc_method_handler(_lookup, **SERVER_KW)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    server.stop(None)


def _answer() -> autotrace.Observation:
    with autotrace.tenant("acme"), autotrace.start_generation("answer", model="m") as answer:
        answer.set_output("the refund is on its way")
    return answer


def test_an_evaluators_calls_carry_the_evaluated_tenant_to_the_service_it_calls(
        projects: dict[str, OtlpReceiver], service: grpc.Channel) -> None:
    seen: list[Any] = []

    @autotrace.observe(as_type="evaluator", name="judge")
    def judge(answer: autotrace.Observation) -> float:
        seen.append(autotrace.current_tenant())
        seen.append(service.unary_unary(f"/{SERVICE}/Lookup", **CLIENT_KW)({})["tenant"])
        return 0.9

    answer = _answer()
    with autotrace.tenant("globex"), autotrace.start_chain("evaluation-job"):
        assert judge(answer) == 0.9
        assert autotrace.current_tenant() == "globex"  # the caller's again after the call
    assert seen == ["acme", "acme"]
    assert autotrace.flush(5)
    acme = sorted(s.name for s in projects["acme"].wait_for_spans(5))
    assert acme == ["answer", "judge", "lookup", f"{SERVICE}/Lookup", f"{SERVICE}/Lookup"]  # client and server
    assert [s.name for s in projects["globex"].spans] == ["evaluation-job"]
    assert [body["name"] for _h, body in projects["acme"].scores] == ["judge"]


def test_an_async_or_generator_evaluator_runs_in_the_evaluated_tenant(projects: dict[str, OtlpReceiver]) -> None:
    seen: list[Any] = []

    def look() -> None:
        seen.append((autotrace.current_tenant(), inject({}, send_tenant=True).get("baggage")))

    @autotrace.observe(as_type="evaluator", name="ajudge")
    async def ajudge(answer: autotrace.Observation) -> float:
        look()
        await asyncio.sleep(0)
        look()
        return 1.0

    @autotrace.observe(as_type="evaluator", name="gjudge")
    def gjudge(answer: autotrace.Observation) -> Iterator[str]:
        look()
        yield "ok"
        look()

    @autotrace.observe(as_type="evaluator", name="agjudge")
    async def agjudge(answer: autotrace.Observation) -> AsyncIterator[str]:
        look()
        yield "ok"
        look()

    async def run_async(answer: autotrace.Observation) -> None:
        assert await ajudge(answer) == 1.0
        assert [item async for item in agjudge(answer)] == ["ok"]

    answer = _answer()
    with autotrace.tenant("globex"):
        asyncio.run(run_async(answer))
        assert list(gjudge(answer)) == ["ok"]
        assert autotrace.current_tenant() == "globex"
    assert seen == [("acme", "autotrace.tenant=acme")] * 6


def test_an_evaluator_of_its_own_tenants_work_or_of_none_keeps_the_scope(projects: dict[str, OtlpReceiver]) -> None:
    seen: list[Any] = []

    @autotrace.observe(as_type="evaluator", name="judge")
    def judge(answer: autotrace.Observation | None = None) -> float:
        seen.append(autotrace.current_tenant())
        return 1.0

    answer = _answer()
    with autotrace.tenant("acme"):
        judge(answer)
    with autotrace.tenant("globex"), autotrace.start_span("job"):
        judge()  # evaluates the current observation: globex's own
    assert seen == ["acme", "globex"]


def _judge_call(answer: autotrace.Observation) -> float:
    with autotrace.start_generation("judge-call", model="m") as call:
        call.set_output("fine")
    return 0.9


def test_an_evaluators_spans_never_carry_the_callers_trace_attributes(projects: dict[str, OtlpReceiver]) -> None:
    """globex's user and session ids stayed in scope in the body: its spans took them into acme's
    project (Langfuse then gives acme's trace globex's user)."""
    judge = autotrace.observe(as_type="evaluator", name="judge")(_judge_call)
    answer = _answer()
    with autotrace.tenant("globex"), autotrace.trace_attributes(user_id="bob", session_id="s-globex"), \
            autotrace.start_chain("evaluation-job"):
        judge(answer)
        with autotrace.start_span("after"):  # the job's again
            pass
    assert autotrace.flush(5)
    acme = {s.name: s for s in projects["acme"].wait_for_spans(3)}
    assert [(name, acme[name].attributes.get("user.id"), acme[name].attributes.get("session.id"))
            for name in sorted(acme)] == [("answer", None, None), ("judge", None, None), ("judge-call", None, None)]
    globex = {s.name: s for s in projects["globex"].wait_for_spans(2)}
    assert globex["after"].attributes["user.id"] == "bob"


def test_an_evaluator_run_under_a_tenantless_span_is_a_trace_of_its_own(projects: dict[str, OtlpReceiver]) -> None:
    """A batch job with a span of no tenant's current: the evaluator of acme's answer went under
    that span (dropped: no tenant), an orphan in acme's project carrying the job's trace attributes."""
    judge = autotrace.observe(as_type="evaluator", name="judge")(_judge_call)
    answer = _answer()
    with autotrace.trace_attributes(name="nightly-eval", user_id="ops-bot"), autotrace.start_span("nightly") as job:
        assert judge(answer) == 0.9
    assert autotrace.flush(5)
    acme = {s.name: s for s in projects["acme"].wait_for_spans(3)}
    judged = acme["judge"]
    assert judged.parent_span_id is None and judged.trace_id not in (job.trace_id, answer.trace_id)
    assert acme["judge-call"].parent_span_id == judged.span_id and acme["judge-call"].trace_id == judged.trace_id
    assert {k for s in acme.values() for k in s.attributes if k in ("user.id", "langfuse.trace.name")} == set()
    assert [(b["name"], b["traceId"]) for _h, b in projects["acme"].scores] == [("judge", answer.trace_id)]
    assert autotrace.stats()["tenant_new_trace"] == 1
