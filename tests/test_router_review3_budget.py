"""The shared span budget (``max_buffered_spans``) is charged only for spans something holds: a span
dropped because its tenant's waiting list or destination is full holds nothing. Old code charged it
anyway, so until the next dispatch (up to ``max_export_batch`` spans later) another tenant's spans
were dropped as ``buffer_limit`` while far fewer than the budget were held."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

import autotrace
from autotrace.config import load_settings
from autotrace.export.credentials import Credentials
from autotrace.export.router import Router
from autotrace.export.workers import WorkerPool


class Resolver:
    """``acme`` and ``globex`` have keys; a lookup of ``slow`` waits until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def resolve(self, tenant: str) -> Credentials | None:
        if tenant == "slow":
            self.release.wait(10)
        return Credentials(f"pk-{tenant}", f"sk-{tenant}")


@pytest.fixture
def router() -> Iterator[Router]:
    resolver = Resolver()
    settings = load_settings({"langfuse_host": "http://127.0.0.1:9", "max_buffered_spans": 10,
                              "max_destination_queue": 4}, env={})
    made = Router(settings, resolver, None, WorkerPool(2))
    yield made
    resolver.release.set()
    made.close()


def looked_up(router: Router, tenant: str) -> None:
    """Wait until ``tenant``'s credentials lookup has given it a destination."""
    for _ in range(1000):
        router.apply_lookups()
        if tenant in router._tenants:
            return
        time.sleep(0.01)
    raise AssertionError(f"{tenant} was not looked up")


def _settled(router: Router, tenant: str) -> None:
    router.route(tenant, f"{tenant} 0")
    looked_up(router, tenant)


def _dropped() -> dict[str, int]:
    return {k: v for k, v in autotrace.stats().items() if k.startswith("spans_dropped.")}


def test_spans_past_a_full_waiting_list_hold_no_budget(router: Router) -> None:
    _settled(router, "acme")
    for i in range(20):
        router.route("slow", f"slow {i}")  # 4 wait for the lookup, 16 are past the list
    router.route("acme", "acme 1")
    assert router._tenants["acme"][0].pending == 2
    assert _dropped() == {"spans_dropped.credentials_pending": 16}


def test_spans_refused_by_a_full_destination_hold_no_budget(router: Router) -> None:
    _settled(router, "acme")
    _settled(router, "globex")
    for i in range(1, 20):
        router.route("acme", f"acme {i}")  # 3 more fit the destination of 4, 16 do not
    router.route("globex", "globex 1")
    assert [router._tenants[t][0].pending for t in ("acme", "globex")] == [4, 2]
    assert _dropped() == {"spans_dropped.destination_full": 16}
