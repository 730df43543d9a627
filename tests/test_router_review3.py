"""A tenant whose destination was retired (it gave its place under ``max_tenants``) still holds
spans bound with keys that were good. A failed credentials lookup says nothing of revocation: those
spans are still sent, with those keys, to that project alone, and the tenant's new spans follow them
(its last known keys, as for a tenant in place). A lookup that finds new keys or a new host for the
tenant sends them with those, as it does for a tenant in place."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

import autotrace
from autotrace.export import router as router_module
from autotrace.export.credentials import Credentials
from autotrace.runtime import state
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import basic_auth, ended_span


class Store:
    """A secret store: each tenant's keys (``keys``) for its host (``hosts``); raises while ``down``."""

    def __init__(self, hosts: dict[str, str]) -> None:
        self.hosts = hosts
        self.keys = {tenant: (f"pk-{tenant}", f"sk-{tenant}") for tenant in hosts}
        self.down = False

    def resolve(self, tenant: str) -> Credentials | None:
        if self.down:
            raise ConnectionError("secret store unreachable")
        return Credentials(*self.keys[tenant], host=self.hosts[tenant])


@pytest.fixture
def rxs() -> Iterator[dict[str, OtlpReceiver]]:
    started = {name: OtlpReceiver().start() for name in ("t0", "t1", "t0-new")}
    yield started
    for rx in started.values():
        rx.stop()


def _install(store: Store) -> None:
    autotrace.install(langfuse_host="http://127.0.0.1:9", credentials=store, integrations=(), local_store="off",
                      export_interval=0.05, export_workers=2, max_tenants=1, max_retries=50)


def _wait(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _stat(name: str) -> int:
    return autotrace.stats().get(name, 0)


def _dropped() -> dict[str, int]:
    return {k: v for k, v in autotrace.stats().items() if k.startswith("spans_dropped.")}


def _retire_t0(rxs: dict[str, OtlpReceiver], store: Store) -> None:
    """t0's Langfuse is down: its destination holds t0-0..2 when t1 takes its place (retired)."""
    rxs["t0"].fail_with(503)
    _install(store)
    for i in range(3):
        ended_span(f"t0-{i}", "t0")
    _wait(lambda: _stat("tenant_destinations_created") == 1)
    ended_span("t1-0", "t1")
    _wait(lambda: _stat("tenant_destinations_retired") == 1)
    assert [s.name for s in rxs["t1"].wait_for_spans(1)] == ["t1-0"]


def test_a_failed_lookup_of_a_retired_tenant_keeps_its_spans_and_its_known_keys(
        rxs: dict[str, OtlpReceiver]) -> None:
    """Old code took the failed lookup for a revocation: it closed t0's retired destination, counted
    its three spans as ``credentials_revoked``, and dropped t0's next span as ``credentials_failed``."""
    store = Store({"t0": rxs["t0"].endpoint, "t1": rxs["t1"].endpoint})
    _retire_t0(rxs, store)
    store.down = True
    ended_span("t0-3", "t0")  # t0 left its place: its credentials are looked up, and that fails
    _wait(lambda: _stat("internal_errors.credentials") == 1 and "t0" not in state.pipeline.router._waiting)
    rxs["t0"].fail_with(None)
    assert autotrace.flush(20)
    spans = rxs["t0"].wait_for_spans(4)
    assert sorted(s.name for s in spans) == ["t0-0", "t0-1", "t0-2", "t0-3"]
    assert {r.headers["authorization"] for r in rxs["t0"].requests} == {basic_auth("pk-t0", "sk-t0")}
    assert [s.name for s in rxs["t1"].spans] == ["t1-0"]
    assert _dropped() == {}
    assert _stat("spans_exported") == 5
    assert _stat("tenant_destinations_reinstated") == 1 and _stat("tenant_destinations_created") == 2
    assert list(state.pipeline.router._tenants) == ["t0"]  # t1, idle, gave its place back


def test_a_retired_tenant_found_with_rotated_keys_sends_what_it_held_with_the_new_keys(
        rxs: dict[str, OtlpReceiver]) -> None:
    """Old code kept sending the retired destination's spans with the revoked keys: refused (401),
    dropped as ``export_failed``; a tenant in place has its held spans sent with the new keys."""
    store = Store({"t0": rxs["t0"].endpoint, "t1": rxs["t1"].endpoint})
    _retire_t0(rxs, store)
    store.keys["t0"] = ("pk-t0", "sk-t0-rotated")
    rxs["t0"].require_auth(basic_auth("pk-t0", "sk-t0-rotated"))  # the old secret is revoked
    ended_span("t0-3", "t0")
    _wait(lambda: _stat("tenant_destinations_created") == 2)
    rxs["t0"].fail_with(None)
    assert autotrace.flush(20)
    assert sorted(s.name for s in rxs["t0"].wait_for_spans(4)) == ["t0-0", "t0-1", "t0-2", "t0-3"]
    assert _dropped() == {} and _stat("spans_exported") == 5


def test_a_retired_tenant_found_on_a_new_host_takes_what_it_held_there(rxs: dict[str, OtlpReceiver]) -> None:
    """As for a tenant in place, the spans waiting for the old host move with the tenant: old code
    sent them to the old host once it was back."""
    store = Store({"t0": rxs["t0"].endpoint, "t1": rxs["t1"].endpoint})
    _retire_t0(rxs, store)
    store.hosts["t0"], store.keys["t0"] = rxs["t0-new"].endpoint, ("pk-t0b", "sk-t0b")
    ended_span("t0-3", "t0")
    _wait(lambda: _stat("tenant_destinations_created") == 2)
    rxs["t0"].fail_with(None)
    assert autotrace.flush(20)
    assert sorted(s.name for s in rxs["t0-new"].wait_for_spans(4)) == ["t0-0", "t0-1", "t0-2", "t0-3"]
    assert {r.headers["authorization"] for r in rxs["t0-new"].requests} == {basic_auth("pk-t0b", "sk-t0b")}
    assert rxs["t0"].spans == [] and _dropped() == {} and _stat("spans_exported") == 5


def test_a_host_move_lets_the_batch_under_way_to_the_old_host_finish(
        rxs: dict[str, OtlpReceiver], monkeypatch: pytest.MonkeyPatch) -> None:
    """Old code closed the old destination at once: the request under way was cut short and its span
    counted as ``credentials_revoked``, though no key was revoked. The old host sees only the old keys."""
    monkeypatch.setattr(router_module, "_RECHECK_CREDENTIALS", 0.0)
    store = Store({"t0": rxs["t0"].endpoint})
    _install(store)
    rxs["t0"].delay(1.0)
    ended_span("t0-0", "t0")
    _wait(lambda: _stat("tenant_destinations_created") == 1 and state.pipeline.router.destinations()[0].in_flight)
    store.hosts["t0"], store.keys["t0"] = rxs["t0-new"].endpoint, ("pk-t0b", "sk-t0b")
    ended_span("t0-1", "t0")  # known: its credentials are checked again, and found on the new host
    _wait(lambda: _stat("tenant_destinations_moved") == 1)
    assert autotrace.flush(20)
    assert [s.name for s in rxs["t0"].wait_for_spans(1)] == ["t0-0"]
    assert {r.headers["authorization"] for r in rxs["t0"].requests} == {basic_auth("pk-t0", "sk-t0")}
    assert [s.name for s in rxs["t0-new"].wait_for_spans(1)] == ["t0-1"]
    assert {r.headers["authorization"] for r in rxs["t0-new"].requests} == {basic_auth("pk-t0b", "sk-t0b")}
    assert _dropped() == {} and _stat("spans_exported") == 2
