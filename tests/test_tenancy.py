"""Proof of isolation: many tenants at once, each span only at its own tenant's Langfuse project,
with that tenant's credentials; none elsewhere, none lost. Plus the tenant rules themselves."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections import defaultdict
from collections.abc import Iterator

import pytest
from opentelemetry import trace

import autotrace
import autotrace._internal as internal
import autotrace.export.router as router_module
from autotrace.export.credentials import Credentials, StaticCredentials
from autotrace.testing.otlp_receiver import OtlpReceiver

TENANTS = [f"tenant-{i:02d}" for i in range(50)]


def _auth(tenant: str) -> str:
    return "Basic " + base64.b64encode(f"pk-{tenant}:sk-{tenant}".encode()).decode()


@pytest.fixture(scope="module")
def _started() -> Iterator[dict[str, OtlpReceiver]]:
    started = {tenant: OtlpReceiver().start() for tenant in TENANTS}
    yield started
    for rx in started.values():
        rx.stop()


@pytest.fixture
def receivers(_started: dict[str, OtlpReceiver]) -> dict[str, OtlpReceiver]:
    for tenant, rx in _started.items():
        rx.clear()
        rx.require_auth(_auth(tenant))
    return _started


def _turn(tenant: str, index: int) -> str:
    third_party = trace.get_tracer("third.party.lib")
    with autotrace.start_chain(f"turn-{tenant}-{index}") as chain:
        with autotrace.start_generation("llm", model="m") as gen:
            gen.set_output(f"answer for {tenant}")
        with third_party.start_as_current_span("http.request"):
            pass
        return chain.trace_id


def test_fifty_tenants_threads_and_tasks_each_reach_only_their_project(
    receivers: dict[str, OtlpReceiver],
) -> None:
    credentials = StaticCredentials({
        t: Credentials(f"pk-{t}", f"sk-{t}", host=rx.endpoint) for t, rx in receivers.items()
    })
    autotrace.install(langfuse_host="http://127.0.0.1:9", credentials=credentials, integrations=(),
                      export_interval=0.05, export_workers=8)
    expected: dict[str, set[str]] = defaultdict(set)
    lock = threading.Lock()

    def thread_worker(worker: int) -> None:
        for i in range(25):
            tenant = TENANTS[(worker * 25 + i) % len(TENANTS)]
            with autotrace.tenant(tenant):
                trace_id = _turn(tenant, i)
            with lock:
                expected[tenant].add(trace_id)

    threads = [threading.Thread(target=thread_worker, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()

    async def task(i: int) -> tuple[str, str]:
        tenant = TENANTS[i % len(TENANTS)]
        with autotrace.tenant(tenant):
            await asyncio.sleep(0)
            return tenant, _turn(tenant, 1000 + i)

    async def all_tasks() -> list[tuple[str, str]]:
        return await asyncio.gather(*(task(i) for i in range(500)))

    for tenant, trace_id in asyncio.run(all_tasks()):
        expected[tenant].add(trace_id)
    for thread in threads:
        thread.join()
    assert autotrace.flush(30)

    total = 0
    for tenant, rx in receivers.items():
        spans = rx.wait_for_spans(3 * len(expected[tenant]), timeout=10)
        assert len(spans) == 3 * len(expected[tenant]), tenant
        assert {s.attributes["autotrace.tenant"] for s in spans} == {tenant}
        assert {s.trace_id for s in spans} == expected[tenant]
        assert {r.headers["authorization"] for r in rx.requests} == {_auth(tenant)}
        total += len(spans)
    assert total == 3 * (16 * 25 + 500)
    stats = autotrace.stats()
    assert not [k for k in stats if k.startswith("spans_dropped")]


def test_per_tenant_counters_are_bounded(receivers: dict[str, OtlpReceiver],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Export counters name each tenant's destination; past the cap on such names (a small one
    here), a new tenant's counts go to ``<name>.other``, so counting stays exact and bounded, and
    the fixed counters keep their names."""
    monkeypatch.setattr(internal, "_MAX_KEYED_COUNTERS", 20)
    credentials = StaticCredentials({
        t: Credentials(f"pk-{t}", f"sk-{t}", host=rx.endpoint) for t, rx in receivers.items()
    })
    autotrace.install(langfuse_host="http://127.0.0.1:9", credentials=credentials, integrations=(),
                      export_interval=0.05, export_workers=4)
    for tenant in TENANTS:
        with autotrace.tenant(tenant):
            _turn(tenant, 0)
    _turn("nobody", 0)  # counted under a fixed name, which the cap never touches
    assert autotrace.flush(20)
    assert all(len(rx.wait_for_spans(3)) == 3 for rx in receivers.values())
    stats = autotrace.stats()
    named = {k: v for k, v in stats.items() if k.startswith("spans_exported.langfuse:")}
    assert len(named) == 20 and all(v == 3 for v in named.values())
    assert stats["spans_exported.other"] == 3 * (len(TENANTS) - 20)
    assert stats["spans_exported"] == 3 * len(TENANTS)
    assert stats["spans_dropped.no_tenant"] == 3


def test_unknown_or_missing_tenant_is_dropped_by_default(receivers: dict[str, OtlpReceiver],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    rx = receivers["tenant-00"]
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                      credentials={"tenant-00": Credentials("pk-tenant-00", "sk-tenant-00", host=rx.endpoint)})
    with autotrace.tenant("stranger"):
        _turn("stranger", 0)
    _turn("nobody", 0)
    with autotrace.tenant("tenant-00"):
        _turn("tenant-00", 0)
    assert autotrace.flush(5)
    assert len(rx.wait_for_spans(3)) == 3
    stats = autotrace.stats()
    assert stats["spans_dropped.unknown_tenant"] == 3
    assert stats["spans_dropped.no_tenant"] == 3
    assert all(len(other.spans) == 0 for t, other in receivers.items() if t != "tenant-00")
    # each kind of drop said once, with the way to keep such spans
    dropped = [r.getMessage() for r in caplog.records if "dropping spans" in r.getMessage()]
    assert sorted(dropped) == [
        "autotrace: dropping spans of a tenant with no Langfuse keys (unknown_tenant='drop'): 'default' sends "
        "them to the default project's keys, 'local' to the local store (counted as spans_dropped.unknown_tenant)",
        "autotrace: dropping spans with no tenant (unknown_tenant='drop'): 'default' sends them to the default "
        "project's keys, 'local' to the local store (counted as spans_dropped.no_tenant)",
    ]


def test_a_trace_never_changes_tenant(receivers: dict[str, OtlpReceiver]) -> None:
    a, b = receivers["tenant-01"], receivers["tenant-02"]
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05, credentials={
        "tenant-01": Credentials("pk-tenant-01", "sk-tenant-01", host=a.endpoint),
        "tenant-02": Credentials("pk-tenant-02", "sk-tenant-02", host=b.endpoint),
    })
    with autotrace.tenant("tenant-01"), autotrace.start_chain("root"):
        token = autotrace.set_tenant("tenant-02")  # not a ``tenant`` block: the span stays in its trace
        try:
            with autotrace.start_tool("confused"):
                pass
        finally:
            autotrace.reset_tenant(token)
    assert autotrace.flush(5)
    assert sorted(s.name for s in a.wait_for_spans(2)) == ["confused", "root"]
    assert b.spans == []
    assert autotrace.stats()["tenant_mismatch"] == 1


def test_a_tenant_block_under_another_tenants_span_starts_its_own_trace(
        receivers: dict[str, OtlpReceiver]) -> None:
    """A worker that one tenant's request started serves another tenant's job in a ``tenant``
    block: the job's spans go to the job's tenant, in a trace of their own, without the request's
    trace attributes; the request's trace goes on after the block."""
    a, b = receivers["tenant-01"], receivers["tenant-02"]
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05, credentials={
        "tenant-01": Credentials("pk-tenant-01", "sk-tenant-01", host=a.endpoint),
        "tenant-02": Credentials("pk-tenant-02", "sk-tenant-02", host=b.endpoint),
    })
    with autotrace.tenant("tenant-01"), autotrace.trace_attributes(user_id="alice"), \
            autotrace.start_chain("request") as request:
        with autotrace.tenant("tenant-01"), autotrace.start_span("own-job"):  # its own tenant: same trace
            pass
        with autotrace.tenant("tenant-02"), autotrace.start_tool("other-job") as job:
            with autotrace.start_span("inside"):
                pass
        with autotrace.start_span("after"):
            pass
    assert autotrace.flush(5)
    spans_a = {s.name: s for s in a.wait_for_spans(3)}
    spans_b = {s.name: s for s in b.wait_for_spans(2)}
    assert sorted(spans_a) == ["after", "own-job", "request"] and sorted(spans_b) == ["inside", "other-job"]
    assert {s.trace_id for s in spans_a.values()} == {request.trace_id}
    assert {s.trace_id for s in spans_b.values()} == {job.trace_id} != {request.trace_id}
    assert spans_b["other-job"].parent_span_id is None
    assert spans_b["inside"].parent_span_id == job.id
    assert spans_a["after"].parent_span_id == spans_a["own-job"].parent_span_id == request.id
    assert "user.id" not in spans_b["other-job"].attributes
    assert spans_a["after"].attributes["user.id"] == "alice"
    assert autotrace.stats()["tenant_new_trace"] == 1
    assert "tenant_mismatch" not in autotrace.stats()


def test_tenant_resolver_and_its_failures(receivers: dict[str, OtlpReceiver],
                                          caplog: pytest.LogCaptureFixture) -> None:
    rx = receivers["tenant-03"]
    current = {"value": "tenant-03"}

    def resolver() -> str | None:
        if current["value"] == "boom":
            raise RuntimeError("resolver bug")
        return current["value"]

    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                      tenant_resolver=resolver,
                      credentials={"tenant-03": Credentials("pk-tenant-03", "sk-tenant-03", host=rx.endpoint)})
    _turn("tenant-03", 0)
    current["value"] = "boom"
    assert _turn("x", 1)  # the traced code is unaffected by a raising resolver
    assert _turn("x", 2)
    assert autotrace.flush(5)
    assert len(rx.wait_for_spans(3)) == 3
    assert autotrace.stats()["tenant_resolver_errors"] == 6  # once per span started while it raised
    assert autotrace.stats()["spans_dropped.no_tenant"] == 6  # tenantless: dropped, never sent elsewhere
    assert caplog.text.count("tenant_resolver raised RuntimeError") == 1  # logged once
    current["value"] = "tenant-03"  # the resolver recovers, and so does tracing
    recovered = _turn("x", 3)
    assert autotrace.flush(5)
    spans = rx.wait_for_spans(6)
    assert [s.trace_id for s in spans].count(recovered) == 3 and len(spans) == 6


def test_default_policy_sends_unknown_tenants_to_the_default_project(receivers: dict[str, OtlpReceiver]) -> None:
    default = receivers["tenant-04"]
    autotrace.install(langfuse_host=default.endpoint, public_key="pk-tenant-04", secret_key="sk-tenant-04",
                      unknown_tenant="default", integrations=(), export_interval=0.05, credentials={})
    _turn("none", 0)
    assert autotrace.flush(5)
    assert len(default.wait_for_spans(3)) == 3


def test_credentials_rotate_without_restart(receivers: dict[str, OtlpReceiver],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    rx = receivers["tenant-05"]
    keys = {"current": ("pk-tenant-05", "sk-tenant-05")}
    monkeypatch.setattr(router_module, "_RECHECK_CREDENTIALS", 0.0)  # re-resolve on every span
    autotrace.install(langfuse_host=rx.endpoint, integrations=(), export_interval=0.05,
                      credentials=_Rotating(keys))
    with autotrace.tenant("tenant-05"):
        _turn("tenant-05", 0)
    assert len(rx.wait_for_spans(3, timeout=5)) == 3
    keys["current"] = ("pk-rotated", "sk-rotated")
    rx.require_auth("Basic " + base64.b64encode(b"pk-rotated:sk-rotated").decode())
    with autotrace.tenant("tenant-05"):
        _turn("tenant-05", 1)
    assert len(rx.wait_for_spans(6, timeout=5)) == 6
    assert {r.headers["x-langfuse-public-key"] for r in rx.requests} == {"pk-tenant-05", "pk-rotated"}


class _Rotating:
    def __init__(self, keys: dict[str, tuple[str, str]]) -> None:
        self.keys = keys

    def resolve(self, tenant: str) -> Credentials | None:
        return Credentials(*self.keys["current"]) if tenant == "tenant-05" else None


def test_a_slow_tenant_endpoint_never_delays_another_tenant(receivers: dict[str, OtlpReceiver]) -> None:
    slow, fast = receivers["tenant-06"], receivers["tenant-07"]
    slow.delay(3.0)
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05, credentials={
        "tenant-06": Credentials("pk-tenant-06", "sk-tenant-06", host=slow.endpoint),
        "tenant-07": Credentials("pk-tenant-07", "sk-tenant-07", host=fast.endpoint),
    })
    with autotrace.tenant("tenant-06"):
        _turn("tenant-06", 0)
    with autotrace.tenant("tenant-07"):
        _turn("tenant-07", 0)
    assert len(fast.wait_for_spans(3, timeout=1.5)) == 3  # well before the slow endpoint answers
    assert slow.spans == []
    assert len(slow.wait_for_spans(3, timeout=10)) == 3  # and the slow tenant loses nothing


def test_scores_reach_the_tenants_project_and_the_local_store(receivers: dict[str, OtlpReceiver], tmp_path) -> None:
    rx = receivers["tenant-08"]
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05, local_store="on",
                      local_store_path=tmp_path / "s.db",
                      credentials={"tenant-08": Credentials("pk-tenant-08", "sk-tenant-08", host=rx.endpoint)})
    with autotrace.tenant("tenant-08"), autotrace.start_generation("answer") as gen:
        gen.score("helpfulness", 0.9, comment="good")
        autotrace.score("correct", True)
        trace_id, observation_id = gen.trace_id, gen.id
    autotrace.score("label", "great", trace_id=trace_id, tenant="tenant-08")
    assert autotrace.flush(5)
    bodies = sorted((body for _, body in rx.scores), key=lambda b: b["name"])
    assert [(b["name"], b["value"], b["dataType"]) for b in bodies] == [
        ("correct", 1, "BOOLEAN"), ("helpfulness", 0.9, "NUMERIC"), ("label", "great", "CATEGORICAL")]
    assert bodies[1]["observationId"] == observation_id and bodies[1]["traceId"] == trace_id
    assert "observationId" not in bodies[2]
    assert {h["authorization"] for h, _ in rx.scores} == {_auth("tenant-08")}
    stored = autotrace.local_store().scores(trace_id)
    assert sorted(s["name"] for s in stored) == ["correct", "helpfulness", "label"]
