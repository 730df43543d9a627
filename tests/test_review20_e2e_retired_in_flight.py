"""Found by the multi-tenant end-to-end run (``test_review20_e2e_multitenant``, ``max_tenants`` under
pressure): when more tenants retire than ``max_tenants`` allows, the oldest retiring destination was
closed with its batch under way counted as ``spans_dropped.tenant_retired`` and its connection cut;
the endpoint had the batch already (a slow Langfuse answering late), so spans that reached the
tenant's project were counted lost and never as exported. Now only the spans still waiting are
dropped; the batch under way settles by its outcome: exported, or (failed) counted as dropped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.runtime import state
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span

TENANTS = ("t0", "t1", "t2")


@pytest.fixture
def receivers() -> Iterator[dict[str, OtlpReceiver]]:
    with OtlpReceiver() as a, OtlpReceiver() as b, OtlpReceiver() as c:
        yield dict(zip(TENANTS, (a, b, c), strict=True))


def _wait(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _sending(tenant: str) -> bool:
    return any(d.key == f"tenant:{tenant}" and d.in_flight for d in state.pipeline.router.destinations())


@pytest.mark.parametrize("outcome", ["answered", "refused"])
def test_a_retiring_destination_closed_at_the_cap_lets_its_batch_under_way_settle(
        receivers: dict[str, OtlpReceiver], outcome: str) -> None:
    """max_tenants=1: t0's batch is under way to its slow Langfuse when t1 takes its place (t0
    retires), then t2 takes t1's (t1, failing, retires too: past the cap, t0 is closed). t0's
    batch is counted by what its Langfuse answers, never twice, never cut short."""
    receivers["t0"].delay(1.0)
    if outcome == "refused":
        receivers["t0"].fail_with(503)
    receivers["t1"].fail_with(503)  # t1 keeps its spans to retry: it retires rather than being evicted
    keys = {t: Credentials(f"pk-{t}", f"sk-{t}", host=rx.endpoint) for t, rx in receivers.items()}
    autotrace.install(langfuse_host="http://127.0.0.1:9", credentials=keys, integrations=(), local_store="off",
                      export_interval=0.05, export_workers=2, max_tenants=1, max_retries=20)
    for i in range(3):
        ended_span(f"t0-{i}", "t0")
    _wait(lambda: _sending("t0"))
    ended_span("t1-0", "t1")
    _wait(lambda: autotrace.stats().get("export_failures.langfuse:t1"))
    ended_span("t2-0", "t2")
    _wait(lambda: autotrace.stats().get("tenant_destinations_retired") == 2)
    assert [s.name for s in receivers["t2"].wait_for_spans(1)] == ["t2-0"]
    _wait(lambda: not _sending("t0"))  # t0's Langfuse answered (late)
    if outcome == "answered":
        receivers["t0"].wait_for_spans(3)
    stats = autotrace.stats()
    if outcome == "answered":
        assert sorted(s.name for s in receivers["t0"].spans) == ["t0-0", "t0-1", "t0-2"]
        assert stats.get("spans_exported.langfuse:t0") == 3
        assert "spans_dropped.tenant_retired" not in stats  # nothing of t0's was waiting
    else:  # failed, and closed: not retried, counted once as lost
        assert receivers["t0"].spans == []
        assert "spans_exported.langfuse:t0" not in stats
        assert stats.get("spans_dropped.tenant_retired") == 3
