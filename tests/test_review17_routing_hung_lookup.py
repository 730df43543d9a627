"""A secret store that hangs on some tenants (a client without a timeout, a store slow on misses)
held every lookup place: as many hung lookups as export threads, and no new tenant was ever looked
up again, its spans parked until the hung calls returned (forever, without a timeout). A lookup
running for long now leaves its place to the next tenant (up to twice as many lookups at once:
exports keep their threads), so the new tenant's spans go out; known tenants were never held up."""

from __future__ import annotations

import threading

import pytest

import autotrace
import autotrace.export._lookups as lookups
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span, wait_for_stat


def test_hung_lookups_of_some_tenants_do_not_keep_a_new_tenant_from_being_looked_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lookups, "_STUCK_AFTER", 0.2, raising=False)
    release = threading.Event()
    asked: list[str] = []

    def lookup(tenant: str) -> Credentials:
        asked.append(tenant)
        if tenant.startswith("hung"):
            release.wait(20)
        return Credentials(f"pk-{tenant}", f"sk-{tenant}")

    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, credentials=lookup, integrations=(), local_store="off",
                          export_interval=0.05, export_workers=2)
        try:
            ended_span("of hung0", "hung0")
            ended_span("of hung1", "hung1")  # both lookup places taken, for good
            ended_span("of acme", "acme")
            assert [s.name for s in rx.wait_for_spans(1, timeout=10)] == ["of acme"]
            assert sorted(asked) == ["acme", "hung0", "hung1"]
        finally:
            release.set()
        assert autotrace.flush(10)
        assert sorted(s.name for s in rx.spans) == ["of acme", "of hung0", "of hung1"]
        wait_for_stat("spans_exported", 3)
