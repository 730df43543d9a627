"""A batch Langfuse refused for revoked keys waits for the rotated ones, but the router looked keys
up again only when the tenant's next span came: a tenant that sent nothing more (a job's last
batch) had that batch dropped after the wait although its new keys were in the secret store."""

from __future__ import annotations

import pytest

import autotrace
import autotrace.export.destination as destination_module
import autotrace.export.router as router_module
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import basic_auth, ended_span


def test_a_tenants_last_batch_refused_goes_with_keys_looked_up_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router_module, "_RECHECK_CREDENTIALS", 60.0)  # no routine re-check meanwhile
    monkeypatch.setattr(destination_module, "_KEYS_WAIT", 60.0)
    asked: list[str] = []
    keys = {"current": ("pk-old", "sk-old")}

    def resolve(tenant: str) -> Credentials:
        asked.append(tenant)
        return Credentials(*keys["current"], host=rx.endpoint)

    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                          credentials=resolve)
        ended_span("before", "acme")
        assert [s.name for s in rx.wait_for_spans(1)] == ["before"]
        keys["current"] = ("pk-new", "sk-new")  # rotated in the secret store, the old key revoked
        rx.require_auth(basic_auth("pk-new", "sk-new"))
        ended_span("last", "acme")  # the tenant's last span: refused with the old keys
        assert sorted(s.name for s in rx.wait_for_spans(2)) == ["before", "last"]
        last = next(s for s in rx.spans if s.name == "last")
        assert last.headers["authorization"] == basic_auth("pk-new", "sk-new")
        assert asked == ["acme", "acme"]
    stats = autotrace.stats()
    assert "spans_dropped.export_failed" not in stats
    assert (stats["spans_exported.langfuse:acme"], stats["export_failures.langfuse:acme"]) == (2, 1)
