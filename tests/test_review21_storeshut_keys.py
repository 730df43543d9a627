"""Keys refused (401) while the secret store is behind, against loopback receivers: a retired
destination's batch, and the lookup at the refusal.

A destination retired at the ``max_tenants`` cap whose batch waits for new keys had them looked up
once, at the refusal: a store still behind then answered the revoked keys, no check followed (its
tenant sends no more spans and is in no place), and the batch went again with the revoked keys and
was dropped. And the lookup at the refusal did not mark its tenant as being checked: the next
dispatch asked the store once more meanwhile.
"""

from __future__ import annotations

import threading
import time

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.runtime import state
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import basic_auth

# (the same receivers, shortened waits and helpers as the tests of a store behind at a refusal)
from tests.test_review21_export2_keys_store_behind import _short_waits, _spans, _wait, receivers  # noqa: F401


class _Store:
    """A secret store (a resolver asked directly: no cache of autotrace's in between) answering tenant
    ``behind``'s revoked key to its first ``stale`` lookups, the new key after; its lookup number
    ``slow`` of that tenant takes ``pause`` seconds."""

    def __init__(self, hosts: dict[str, str], behind: str, stale: int, slow: int = 0, pause: float = 0.0) -> None:
        self.hosts, self.behind, self.stale, self.slow, self.pause = hosts, behind, stale, slow, pause
        self.asked: list[str] = []
        self._lock = threading.Lock()

    def resolve(self, tenant: str) -> Credentials:
        with self._lock:
            self.asked.append(tenant)
            n = self.asked.count(tenant)
        if tenant == self.behind and n == self.slow:
            time.sleep(self.pause)
        secret = "sk-revoked" if tenant == self.behind and n <= self.stale else "sk-new"
        return Credentials(f"pk-{tenant}", secret, host=self.hosts[tenant])


def _install(store: _Store, **settings: object) -> None:
    autotrace.install(local_store="off", integrations=(), langfuse_host="http://127.0.0.1:9",
                      credentials=store, export_interval=0.05, **settings)


def test_a_retired_destination_waiting_for_keys_gets_them_from_the_store(
        receivers: tuple[OtlpReceiver, OtlpReceiver]) -> None:  # noqa: F811
    a, b = receivers
    store = _Store({"b": b.endpoint, "c": a.endpoint}, behind="b", stale=2)
    _install(store, max_tenants=1)
    router = state.pipeline.router  # type: ignore[union-attr]
    b.delay(1.5)  # b's batch is under way while tenant c takes its place
    _spans("b", 5)
    assert _wait(lambda: any(d.in_flight for d in router.destinations()))  # sent, the answer 1.5 s away
    _spans("c", 2)
    assert _wait(lambda: [t for t, _ in router._retired] == ["b"])  # retired, its batch under way
    assert _wait(lambda: store.asked.count("b") >= 2)  # refused; looked up at once: the store is behind
    assert "b" not in router._tenants
    # the old code asked no more: the batch went again with the revoked key after 4 s, and was dropped
    assert _wait(lambda: len(b.spans) >= 5)
    assert autotrace.flush(5)
    assert store.asked.count("b") == 3
    assert sorted(s.name for s in b.spans) == [f"b-{i}" for i in range(5)]
    assert {s.headers["authorization"] for s in b.spans} == {basic_auth("pk-b", "sk-new")}
    assert sorted(s.name for s in a.spans) == ["c-0", "c-1"]
    stats = autotrace.stats()
    assert stats.get("spans_exported.langfuse:b") == 5 and stats.get("spans_exported.langfuse:c") == 2
    assert stats.get("spans_dropped.export_failed", 0) == 0 and stats.get("export_failures.langfuse:b") == 1
    assert stats.get("tenant_destinations_retired") == 1


def test_the_lookup_at_a_refusal_is_the_only_one_while_it_runs(
        receivers: tuple[OtlpReceiver, OtlpReceiver]) -> None:  # noqa: F811
    _, b = receivers
    store = _Store({"b": b.endpoint}, behind="b", stale=1, slow=2, pause=0.8)  # the lookup at the refusal is slow
    _install(store)
    b.delay(0.5)  # refused past a check's interval after the tenant's keys were found
    _spans("b", 4)
    assert _wait(lambda: len(b.spans) >= 4)
    assert autotrace.flush(5)
    assert {s.headers["authorization"] for s in b.spans} == {basic_auth("pk-b", "sk-new")}
    assert store.asked == ["b", "b"]  # the old code asked a third time while the second lookup ran
    stats = autotrace.stats()
    assert stats.get("spans_exported.langfuse:b") == 4 and stats.get("spans_dropped.export_failed", 0) == 0
