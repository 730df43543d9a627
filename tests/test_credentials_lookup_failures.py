"""A tenant whose credentials could not be looked up (the secret store is down, the credentials
file unreadable since start-up) is not an unknown tenant: it may well have a project of its own.
Old code took the failure for "no keys", and ``unknown_tenant="default"`` then sent that customer's
spans to the shared default project. Now they never go there: dropped and counted, or kept in the
local store under ``unknown_tenant="local"``; tracing to the tenant's own project resumes when the
lookup works again."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import autotrace
from autotrace import cli
from autotrace.export import router
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import basic_auth, ended_span


class SecretStore:
    """A tenant's keys, or an outage (raises) while ``down``."""

    def __init__(self, host: str) -> None:
        self.down, self.host = True, host

    def __call__(self, tenant: str) -> Credentials | None:
        if self.down:
            raise ConnectionError("secret store unreachable")
        return Credentials(f"pk-{tenant}", f"sk-{tenant}", host=self.host) if tenant == "acme" else None


def test_an_outage_never_sends_a_tenants_spans_to_the_default_project_and_tracing_resumes(
        rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router, "_RECHECK_CREDENTIALS", 0.2)
    with OtlpReceiver() as acme_rx:
        store = SecretStore(acme_rx.endpoint)
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-default", secret_key="sk-default",
                          unknown_tenant="default", credentials=store, integrations=(), export_interval=0.05)
        ended_span("during the outage", "acme")
        ended_span("no tenant")
        assert autotrace.flush(10)
        assert [s.name for s in rx.wait_for_spans(1)] == ["no tenant"]  # the default project's only
        assert autotrace.stats()["spans_dropped.credentials_failed"] == 1
        store.down = False
        time.sleep(0.3)  # past the recheck
        ended_span("after the outage", "acme")
        ended_span("a stranger", "globex")  # the store answers it has no keys: the default policy's
        assert autotrace.flush(10)
        assert [s.name for s in acme_rx.wait_for_spans(1)] == ["after the outage"]
        assert {r.headers["authorization"] for r in acme_rx.requests} == {basic_auth("pk-acme", "sk-acme")}
        assert sorted(s.name for s in rx.wait_for_spans(2)) == ["a stranger", "no tenant"]
        assert autotrace.stats()["spans_dropped.credentials_failed"] == 1


def test_under_unknown_tenant_local_such_spans_stay_in_the_local_store(rx: OtlpReceiver, tmp_path: Path) -> None:
    autotrace.install(langfuse_host=rx.endpoint, unknown_tenant="local", local_store_path=tmp_path / "s.db",
                      credentials=SecretStore(rx.endpoint), integrations=(), export_interval=0.05)
    ended_span("during the outage", "acme")
    assert autotrace.flush(10)
    store = autotrace.local_store()
    assert store is not None and [r["name"] for r in store.observations()] == ["during the outage"]
    assert rx.spans == [] and "spans_dropped.credentials_failed" not in autotrace.stats()


def test_a_credentials_file_unreadable_since_start_up_is_a_failed_lookup(
        rx: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "tenants.toml"  # not mounted yet
    autotrace.install(langfuse_host=rx.endpoint, public_key="pk-default", secret_key="sk-default",
                      unknown_tenant="default", credentials=missing, integrations=(), export_interval=0.05)
    ended_span("of acme", "acme")
    assert autotrace.flush(10)
    assert rx.spans == [] and autotrace.stats()["spans_dropped.credentials_failed"] == 1
    autotrace.uninstall()
    for name, value in (("LANGFUSE_HOST", rx.endpoint), ("AUTOTRACE_CREDENTIALS_FILE", str(missing))):
        monkeypatch.setenv(name, value)
    assert cli.main(["check", "--tenant", "acme", "--timeout", "2"]) == 1
    assert "the credentials lookup failed" in capsys.readouterr().out
