"""The budget of spans waiting in all destinations (``max_buffered_spans``) is shared fairly: once a
few tenants backed up behind a slow or down Langfuse have spent it, another tenant's span takes the
place of the newest span of the tenant holding most, rather than being dropped while that tenant
holds everything. Old code dropped every other tenant's spans (and never even looked a new one up)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import autotrace
from autotrace.config import load_settings
from autotrace.export.credentials import Credentials, coerce_resolver
from autotrace.export.router import Router
from autotrace.export.workers import WorkerPool
from tests.test_router_review3_budget import looked_up


@pytest.fixture
def router() -> Iterator[Router]:
    settings = load_settings({"langfuse_host": "http://127.0.0.1:9", "max_buffered_spans": 6,
                              "max_destination_queue": 10}, env={})
    resolver = coerce_resolver(lambda tenant: Credentials(f"pk-{tenant}", f"sk-{tenant}"))
    made = Router(settings, resolver, None, WorkerPool(1))
    yield made
    made.close()


def _buffered(router: Router, tenant: str) -> list[str]:
    return list(router._tenants[tenant][0]._buffer)


def test_a_tenant_holding_little_gets_spans_in_past_the_budget_a_noisy_one_spent(router: Router) -> None:
    router.route("noisy", "noisy 0")
    looked_up(router, "noisy")
    for i in range(1, 10):
        router.route("noisy", f"noisy {i}")  # 5 more fit the budget of 6; the noisy tenant's own 4 newer are dropped
    router.route("quiet", "quiet 0")  # waits for its lookup in the place of the noisy tenant's newest
    looked_up(router, "quiet")
    for i in range(1, 4):
        router.route("quiet", f"quiet {i}")  # 2 more take the noisy tenant's newest; then both hold 3
    assert _buffered(router, "noisy") == ["noisy 0", "noisy 1", "noisy 2"]
    assert _buffered(router, "quiet") == ["quiet 0", "quiet 1", "quiet 2"]
    assert {k: v for k, v in autotrace.stats().items() if k.startswith("spans_dropped.")} == {
        "spans_dropped.buffer_limit": 8}
