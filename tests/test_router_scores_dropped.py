"""Scores a destination drops when it closes (revocation) or at a shutdown past its deadline are
counted as scores (``scores_dropped.<why>``), not as spans: the counts said spans were lost that
never existed, and no score was counted lost. Real router, loopback receivers answering 503."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.test_router_churn import Resolver, _created, _install, _send, _wait

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def receivers() -> Iterator[dict[str, OtlpReceiver]]:
    started = {tenant: OtlpReceiver().start() for tenant in ("t0", "t1")}
    yield started
    for rx in started.values():
        rx.stop()


def _dropped() -> dict[str, int]:
    return {k: v for k, v in autotrace.stats().items() if k.startswith(("spans_dropped.", "scores_dropped."))}


def _send_with_score(tenant: str) -> None:
    _send(tenant)
    assert autotrace.score("helpful", 1.0, trace_id=TRACE, tenant=tenant) is not None


def test_a_revoked_tenants_retiring_destination_counts_its_scores_as_scores(
        receivers: dict[str, OtlpReceiver]) -> None:
    receivers["t0"].fail_with(503)
    resolver = Resolver(receivers)
    _install(resolver, max_tenants=1)
    _send_with_score("t0")
    _wait(_created(1))
    _send("t1")
    _wait(_created(2))  # t0 retires, holding its three spans and its score
    resolver.revoked.add("t0")
    _send("t0", 1)
    _wait(lambda: _dropped().get("spans_dropped.credentials_revoked") == 4)  # with the span that found it out
    assert _dropped() == {"spans_dropped.credentials_revoked": 4, "scores_dropped.credentials_revoked": 1}


def test_a_shutdown_past_its_deadline_counts_the_scores_it_drops_as_scores(
        receivers: dict[str, OtlpReceiver]) -> None:
    receivers["t0"].fail_with(503)
    _install(Resolver(receivers), max_tenants=2)
    _send_with_score("t0")
    _wait(_created(1))
    autotrace.shutdown(0.5)
    assert _dropped() == {"spans_dropped.shutdown": 3, "scores_dropped.shutdown": 1}
