"""A tenant's keys refused (401) while its secret store is still behind, against loopback receivers.

At the refusal the router has the resolver's cache forget the keys and looks them up at once; a store
still behind answers the revoked keys, cached again for the cache's TTL (5 minutes). The batch waits
10 s for new keys, but the checks meanwhile (every 5 s) read that cache: the store, rotated a second
later, was never asked, the batch went again with the revoked keys and was dropped with every span
behind it. Now, while a batch waits for keys, each check asks the store, also when no span comes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import autotrace
from autotrace.export import destination as destination_module
from autotrace.export import router as router_module
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import basic_auth


class _StoreBehind:
    """A secret store that answers the revoked key of ``behind`` for its first ``stale`` lookups of
    it (its first one, and the one at the refusal), the new key after."""

    def __init__(self, hosts: dict[str, str], behind: str, stale: int = 2) -> None:
        self.hosts, self.behind, self.stale = hosts, behind, stale
        self.asked: list[str] = []

    def __call__(self, tenant: str) -> Credentials:
        self.asked.append(tenant)
        rotated = tenant == self.behind and self.asked.count(tenant) > self.stale
        secret = "sk-new" if rotated or tenant != self.behind else "sk-revoked"
        return Credentials(f"pk-{tenant}", secret, host=self.hosts[tenant])


@pytest.fixture
def receivers() -> Iterator[tuple[OtlpReceiver, OtlpReceiver]]:
    with OtlpReceiver() as a, OtlpReceiver() as b:
        b.require_auth(basic_auth("pk-b", "sk-new"))  # the revoked key is refused
        yield a, b


@pytest.fixture(autouse=True)
def _short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same sequence, faster: checks every 0.3 s, a refused batch waiting 4 s for new keys."""
    monkeypatch.setattr(router_module, "_RECHECK_CREDENTIALS", 0.3)
    monkeypatch.setattr(destination_module, "_KEYS_WAIT", 4.0)


def _spans(tenant: str, n: int, first: int = 0) -> None:
    with autotrace.tenant(tenant):
        for i in range(first, first + n):
            with autotrace.start_span(f"{tenant}-{i}"):
                pass


def _wait(condition, timeout: float = 8.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(condition())


def _install(store: _StoreBehind) -> None:
    autotrace.install(local_store="off", integrations=(), langfuse_host="http://127.0.0.1:9",
                      credentials=store, export_interval=0.05)


def test_a_batch_waiting_for_keys_gets_them_from_the_store_though_no_span_comes(
        receivers: tuple[OtlpReceiver, OtlpReceiver]) -> None:
    a, b = receivers
    store = _StoreBehind({"a": a.endpoint, "b": b.endpoint}, behind="b")
    _install(store)
    _spans("a", 5)
    _spans("b", 5)
    assert _wait(lambda: store.asked.count("b") >= 2)  # refused, and looked up again: still the revoked key
    # the old code asked the store again only after the batch had gone with the revoked key and was dropped
    assert _wait(lambda: len(b.spans) >= 5)
    assert store.asked.count("b") == 3
    autotrace.flush(5)
    assert sorted(s.name for s in b.spans) == [f"b-{i}" for i in range(5)]
    assert {s.headers["authorization"] for s in b.spans} == {basic_auth("pk-b", "sk-new")}
    assert sorted(s.name for s in a.spans) == [f"a-{i}" for i in range(5)]
    stats = autotrace.stats()
    assert stats.get("spans_exported.langfuse:b") == 5 and stats.get("spans_exported.langfuse:a") == 5
    assert stats.get("spans_dropped.export_failed", 0) == 0
    assert stats.get("export_failures.langfuse:b") == 1  # the one refusal


def test_spans_coming_while_a_batch_waits_for_keys_all_go_with_the_new_ones(
        receivers: tuple[OtlpReceiver, OtlpReceiver]) -> None:
    a, b = receivers
    store = _StoreBehind({"a": a.endpoint, "b": b.endpoint}, behind="b")
    _install(store)
    _spans("b", 3)
    assert _wait(lambda: store.asked.count("b") >= 2)
    for round_ in range(10):  # the tenant keeps tracing: each span's check read the cache (revoked key)
        _spans("b", 3, first=3 + 3 * round_)
        _spans("a", 1, first=round_)
        time.sleep(0.1)
    assert _wait(lambda: len(b.spans) >= 33)
    autotrace.flush(5)
    assert sorted(int(s.name.split("-")[1]) for s in b.spans) == list(range(33))
    assert len(a.spans) == 10
    stats = autotrace.stats()
    assert stats.get("spans_dropped.export_failed", 0) == 0
    assert stats.get("spans_exported.langfuse:b") == 33
