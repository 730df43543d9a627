"""Faults at scale: what shutdown counts of a batch in flight and how long it takes, backpressure
that must stay with the tenant whose export falls behind, a credentials resolver that raises or
hangs while many tenants are known, and how much an outage of many tenants logs."""

from __future__ import annotations

import logging
import threading
import time

import pytest

import autotrace
import autotrace.export.router as router_module
from autotrace import _internal
from autotrace.export.credentials import Credentials
from autotrace.runtime import state
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span


def _accounted() -> int:
    stats = autotrace.stats()
    return stats.get("spans_exported", 0) + sum(v for k, v in stats.items() if k.startswith("spans_dropped."))


def _wait(condition, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(condition())


@pytest.mark.parametrize("status", [200, 400])
def test_a_batch_in_flight_at_shutdown_is_counted_once(status: int) -> None:
    """Shutdown counts the batch still in flight as lost; when its request ends later, it is not
    counted again (as exported or failed): every span is counted exactly once."""
    with OtlpReceiver() as rx:
        rx.delay(0.6)
        if status != 200:
            rx.fail_with(status)
        autotrace.install(local_store="off", integrations=(), langfuse_host=rx.endpoint, public_key="pk",
                          secret_key="sk", unknown_tenant="default", export_interval=0.05, max_retries=0)
        for _ in range(10):
            ended_span()
        assert _wait(lambda: len(rx.requests) == 0 and state.pipeline.router.pending() == 10)
        time.sleep(0.2)  # the request is under way
        autotrace.shutdown(0.1)
        time.sleep(1.0)  # the request has ended by now
        assert autotrace.stats()["spans_dropped.shutdown"] == 10
        assert _accounted() == 10


def test_shutdown_returns_within_its_timeout_while_the_endpoint_hangs() -> None:
    with OtlpReceiver() as rx:
        rx.delay(5.0)
        autotrace.install(local_store="off", integrations=(), langfuse_host=rx.endpoint, public_key="pk",
                          secret_key="sk", unknown_tenant="default", export_interval=0.05)
        for _ in range(50):
            ended_span()
        time.sleep(0.3)  # exports are stuck on the endpoint
        started = time.monotonic()
        autotrace.shutdown(0.2)
        assert time.monotonic() - started < 0.6
        assert autotrace.stats()["spans_dropped.shutdown"] == 50


def test_a_slow_tenant_endpoint_never_slows_another_tenants_calls() -> None:
    """Tenant a's endpoint is healthy but slow, its buffer past a quarter full: a's callers may
    pause, b's never do."""
    with OtlpReceiver() as fast, OtlpReceiver() as slow:
        slow.delay(2.0)
        credentials = {"a": ("pk-a", "sk-a", slow.endpoint), "b": ("pk-b", "sk-b", fast.endpoint)}
        autotrace.install(local_store="off", integrations=(), langfuse_host=fast.endpoint, credentials=credentials,
                          export_interval=0.05, max_export_batch=50, max_destination_queue=400)
        ended_span(tenant="b")
        for _ in range(300):
            ended_span(tenant="a")
        pipeline = state.pipeline
        assert _wait(lambda: not pipeline._queue and pipeline.router.pressured)
        autotrace.reset_stats()
        for _ in range(200):
            ended_span(tenant="b")
        assert "backpressure_pauses" not in autotrace.stats()
        ended_span(tenant="a")
        assert autotrace.stats()["backpressure_pauses"] == 1
        autotrace.shutdown(0.2)


def test_a_credentials_resolver_that_raises_once_keeps_a_known_tenants_spans(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolver that raises when a known tenant is checked again says nothing about revoked keys:
    the tenant keeps its destination and queued spans (only ``None`` revokes)."""
    monkeypatch.setattr(router_module, "_RECHECK_CREDENTIALS", 0.2)
    calls = []

    class Flaky:
        def resolve(self, tenant: str) -> Credentials | None:
            calls.append(tenant)
            if len(calls) == 2:
                raise ConnectionError("secret store unreachable")
            return Credentials("pk", "sk")

    with OtlpReceiver() as rx:
        rx.delay(0.3)  # spans queue up while a request is under way
        autotrace.install(local_store="off", integrations=(), langfuse_host=rx.endpoint, credentials=Flaky(),
                          export_interval=0.05)
        for round_ in range(8):
            for i in range(10):
                ended_span(f"{round_}-{i}", "acme")
            time.sleep(0.1)
        assert autotrace.flush(10)
        assert len(calls) >= 3 and len(rx.spans) == 80
        stats = autotrace.stats()
        assert stats["internal_errors.credentials"] == 1
        assert not [k for k in stats if k.startswith("spans_dropped.")]


def test_a_hung_secret_store_never_stops_known_tenants_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forty known tenants are checked again while the secret store hangs: lookups take at most
    as many threads as the pool replaces when stuck, so the tenants' spans still go out."""
    monkeypatch.setattr(router_module, "_RECHECK_CREDENTIALS", 0.2)
    hang, release = threading.Event(), threading.Event()

    class Store:
        def resolve(self, tenant: str) -> Credentials:
            if hang.is_set():
                release.wait(30)
            return Credentials(f"pk-{tenant}", "sk")

    tenants = [f"t{i}" for i in range(40)]
    with OtlpReceiver() as rx:
        autotrace.install(local_store="off", integrations=(), langfuse_host=rx.endpoint, credentials=Store(),
                          export_interval=0.05)
        try:
            for tenant in tenants:
                ended_span("before", tenant)
            assert autotrace.flush(5)
            hang.set()
            time.sleep(0.3)
            for round_ in range(3):
                for tenant in tenants:
                    ended_span(f"during-{round_}", tenant)
                time.sleep(0.3)
            assert autotrace.flush(4)
            assert len(rx.spans) == 4 * len(tenants)
        finally:
            release.set()


def test_an_outage_of_many_tenants_logs_a_few_lines_and_leaves_room_for_other_warnings(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """One warning per failing destination would log a line per tenant and use up the log-once
    budget, silencing every later new warning: a few are logged, then one line, then counts."""
    monkeypatch.setattr(_internal, "_MAX_LOG_KEYS", 50)
    caplog.set_level(logging.WARNING, logger="autotrace")
    credentials = {f"t{i}": (f"pk-{i}", "sk") for i in range(100)}
    autotrace.install(local_store="off", integrations=(), langfuse_host="http://127.0.0.1:9",
                      credentials=credentials, export_interval=0.05)
    for tenant in credentials:
        ended_span(tenant=tenant)
    assert _wait(lambda: autotrace.stats().get("export_failures", 0) >= 100, timeout=10)
    export_lines = [r.getMessage() for r in caplog.records if "export to" in r.getMessage()]
    assert len(export_lines) == _internal._MAX_KEYS_PER_KIND
    assert any("later ones are only counted" in r.getMessage() for r in caplog.records)
    _internal.log_once("later", "autotrace: a later, different warning")
    assert caplog.records[-1].getMessage() == "autotrace: a later, different warning"
    autotrace.shutdown(0.2)


def test_an_outage_of_the_shared_langfuse_holds_at_most_max_buffered_spans() -> None:
    """Every tenant's destination buffers while the one Langfuse is down: together they hold at
    most ``max_buffered_spans``; the rest are dropped and counted, and every span is accounted for."""
    credentials = {f"t{i}": (f"pk-{i}", "sk") for i in range(40)}
    autotrace.install(local_store="off", integrations=(), langfuse_host="http://127.0.0.1:9",
                      credentials=credentials, export_interval=0.05, max_buffered_spans=300,
                      max_destination_queue=1_000, backpressure=False)
    router = state.pipeline.router
    for _ in range(25):
        for tenant in credentials:
            ended_span(tenant=tenant)
    autotrace.flush(0.5)  # routes every span; the endpoint being down, none is sent

    def held() -> int:
        return sum(d.held for d in router.destinations()) + sum(len(w) for w in router._waiting.values())

    assert held() <= 300 and autotrace.stats()["spans_dropped.buffer_limit"] >= 1_000 - 300
    # every span is held or counted (a batch failing meanwhile moves from one to the other)
    assert _wait(lambda: held() + _accounted() == 1_000)
    autotrace.shutdown(0.2)
