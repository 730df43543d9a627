"""Tenant churn past ``max_tenants``: a new tenant takes the place of the least recently used
destination even while that one still holds unsent spans (it is retired: it sends them with its
own tenant's keys, then closes). Retiring destinations are bounded, and every span is counted."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator

import pytest

import autotrace
import autotrace.export.router as router_module
from autotrace.export.credentials import Credentials
from autotrace.runtime import state
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span

TENANTS = [f"t{i}" for i in range(6)]


def _auth(tenant: str) -> str:
    return "Basic " + base64.b64encode(f"pk-{tenant}:sk-{tenant}".encode()).decode()


@pytest.fixture
def receivers() -> Iterator[dict[str, OtlpReceiver]]:
    started = {tenant: OtlpReceiver().start() for tenant in TENANTS}
    for tenant, rx in started.items():
        rx.require_auth(_auth(tenant))  # another tenant's keys would be refused (and counted as failed)
    yield started
    for rx in started.values():
        rx.stop()


class Resolver:
    """Each tenant's keys for its own receiver; ``revoked`` tenants have none; a lookup of a
    ``held`` tenant waits until ``release`` is set."""

    def __init__(self, receivers: dict[str, OtlpReceiver]) -> None:
        self.receivers = receivers
        self.revoked: set[str] = set()
        self.held: set[str] = set()
        self.release = threading.Event()
        self.calls: list[str] = []

    def resolve(self, tenant: str) -> Credentials | None:
        self.calls.append(tenant)
        if tenant in self.held:
            self.release.wait(10)
        if tenant in self.revoked:
            return None
        return Credentials(f"pk-{tenant}", f"sk-{tenant}", host=self.receivers[tenant].endpoint)


def _install(resolver: Resolver, max_tenants: int) -> None:
    autotrace.install(langfuse_host="http://127.0.0.1:9", credentials=resolver, integrations=(), local_store="off",
                      export_interval=0.05, export_workers=2, max_tenants=max_tenants, max_retries=20)


def _wait(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _send(tenant: str, n: int = 3) -> None:
    for i in range(n):
        ended_span(f"{tenant}-{i}", tenant)


def _created(n: int) -> Callable[[], bool]:
    return lambda: autotrace.stats().get("tenant_destinations_created", 0) == n


def _dropped() -> dict[str, int]:
    return {k: v for k, v in autotrace.stats().items() if k.startswith("spans_dropped.")}


def _delivered(rx: OtlpReceiver, tenant: str, n: int = 3) -> None:
    """``rx`` received exactly ``tenant``'s ``n`` spans, each request with ``tenant``'s keys."""
    spans = rx.wait_for_spans(n)
    assert sorted(s.name for s in spans) == [f"{tenant}-{i}" for i in range(n)]
    assert {s.attributes["autotrace.tenant"] for s in spans} == {tenant}
    assert {r.headers["authorization"] for r in rx.requests} == {_auth(tenant)}


def test_new_tenants_are_served_while_the_destinations_in_place_hold_unsent_spans(
        receivers: dict[str, OtlpReceiver]) -> None:
    """Two tenants whose Langfuse is down hold every place (max_tenants=2): four more tenants
    arrive one after another and each is served (t0 retires, then idle destinations give their
    place); t0's retired destination keeps its spans and sends them, with t0's keys, when its
    Langfuse is back."""
    for tenant in ("t0", "t1"):
        receivers[tenant].fail_with(503)
    _install(Resolver(receivers), max_tenants=2)
    for n, tenant in enumerate(TENANTS, 1):
        _send(tenant)
        _wait(_created(n))
        if n > 2:
            _delivered(receivers[tenant], tenant)
    stats = autotrace.stats()
    assert (stats["tenant_destinations_retired"], stats["tenant_destinations_evicted"]) == (1, 3)
    assert state.pipeline.router.live_tenants() == 2 and not _dropped()
    for tenant in ("t0", "t1"):
        assert receivers[tenant].spans == []
        receivers[tenant].fail_with(None)
    assert autotrace.flush(20)
    for tenant in TENANTS:
        _delivered(receivers[tenant], tenant)
    assert autotrace.stats()["spans_exported"] == 3 * len(TENANTS) and not _dropped()
    _wait(lambda: len(state.pipeline.router.destinations()) == 2)  # the retired one closes once idle


def test_retiring_destinations_are_bounded_and_what_they_drop_is_counted(
        receivers: dict[str, OtlpReceiver]) -> None:
    """max_tenants=1: at most one destination is retiring; when another must retire, the oldest
    one is closed and its unsent spans are counted as ``spans_dropped.tenant_retired``."""
    for tenant in ("t0", "t1"):
        receivers[tenant].fail_with(503)
    _install(Resolver(receivers), max_tenants=1)
    for n, tenant in enumerate(("t0", "t1", "t2"), 1):
        _send(tenant)
        _wait(_created(n))
    _delivered(receivers["t2"], "t2")
    assert _dropped() == {"spans_dropped.tenant_retired": 3}  # t0's, when t1 had to retire too
    assert autotrace.stats()["tenant_destinations_retired"] == 2
    assert len(state.pipeline.router.destinations()) == 2  # t2, and t1 retiring
    for tenant in ("t0", "t1"):
        receivers[tenant].fail_with(None)
    assert autotrace.flush(20)
    _delivered(receivers["t1"], "t1")
    assert receivers["t0"].spans == []
    assert autotrace.stats()["spans_exported"] == 6 and _dropped() == {"spans_dropped.tenant_retired": 3}


def test_revoking_a_tenant_drops_the_spans_of_its_retiring_destination(
        receivers: dict[str, OtlpReceiver]) -> None:
    """Fail closed: a tenant found without credentials sends nothing more, not even the spans its
    retiring destination still holds."""
    receivers["t0"].fail_with(503)
    resolver = Resolver(receivers)
    _install(resolver, max_tenants=1)
    _send("t0")
    _wait(_created(1))
    _send("t1")
    _wait(_created(2))
    resolver.revoked.add("t0")
    _send("t0", 1)  # t0 left its place: its next span asks for its credentials again (revoked: dropped too)
    _wait(lambda: _dropped().get("spans_dropped.credentials_revoked") == 4)
    receivers["t0"].fail_with(None)
    assert autotrace.flush(20)
    assert receivers["t0"].spans == []
    _delivered(receivers["t1"], "t1")
    assert _dropped() == {"spans_dropped.credentials_revoked": 4}


def test_a_tenant_checked_again_after_it_left_takes_no_place(
        receivers: dict[str, OtlpReceiver], monkeypatch: pytest.MonkeyPatch) -> None:
    """A check of t0's credentials still running when t0 gives its place to t2 ends with nothing to
    send: it creates no destination, so t1 and t2 keep their places."""
    monkeypatch.setattr(router_module, "_RECHECK_CREDENTIALS", 0.0)
    resolver = Resolver(receivers)
    _install(resolver, max_tenants=2)
    _send("t0", 1)
    _wait(_created(1))
    resolver.held.add("t0")
    _send("t0", 1)  # known: checked again, and that lookup waits
    _wait(lambda: resolver.calls.count("t0") == 2)
    for n, tenant in enumerate(("t1", "t2"), 2):
        receivers["t0"].wait_for_spans(2)  # t0 is idle: the least recently used, it leaves for t2
        _send(tenant, 1)
        _wait(_created(n))
    resolver.release.set()
    _wait(lambda: not state.pipeline.router._checking)
    assert autotrace.flush(10)
    assert autotrace.stats()["tenant_destinations_created"] == 3
    assert list(state.pipeline.router._tenants) == ["t1", "t2"]
    assert [len(receivers[t].spans) for t in ("t0", "t1", "t2")] == [2, 1, 1] and not _dropped()
