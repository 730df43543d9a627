"""A tenant whose keys disappear (removed from the credentials file, deleted from the secret store).

Its spans went to the default project as those of a tenant never known (``unknown_tenant="default"``):
a credentials file rewritten without one customer, even for a moment (a half-written file, a botched
deploy), sent that customer's traces into the operator's default project. A tenant once known with
keys is now revoked: its spans are dropped, counted as ``spans_dropped.credentials_revoked`` (kept in
the local store under ``unknown_tenant="local"``), and flow to its own project again once its keys
are back. A tenant never known still follows the policy.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import autotrace
import autotrace.export.router as router
from autotrace.export.credentials import Credentials
from autotrace.export.credentials_file import FileCredentials
from autotrace.runtime import state
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span


def _wait(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _write(path: Path, acme_host: str | None) -> None:
    """The credentials file, rewritten as a secret manager does (a new file renamed over it)."""
    body = '[tenants.globex_corp]\npublic_key = "pk-g"\nsecret_key = "sk-g"\n'
    if acme_host is not None:
        body += f'[tenants.acme]\npublic_key = "pk-a"\nsecret_key = "sk-a"\nhost = "{acme_host}"\n'
    (path.parent / "next.toml").write_text(body)
    os.replace(path.parent / "next.toml", path)


def _acme_known() -> bool:
    """Whether acme has a destination (its removal, found by a check of its keys, takes it away)."""
    return "acme" in state.pipeline.router._tenants


def test_a_tenant_removed_from_the_credentials_file_never_goes_to_the_default_project(
        rx: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router, "_RECHECK_CREDENTIALS", 0.0)
    path = tmp_path / "tenants.toml"
    with OtlpReceiver() as acme:
        _write(path, acme.endpoint)
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-default", secret_key="sk-default",
                          unknown_tenant="default", credentials=FileCredentials(path, reload_interval=0),
                          integrations=(), local_store="off", export_interval=0.05)
        ended_span("a1", "acme")
        assert autotrace.flush(10)
        assert [s.name for s in acme.wait_for_spans(1)] == ["a1"]
        _write(path, None)
        ended_span("a2", "acme")  # known: goes on with its own keys while they are checked again
        _wait(lambda: not _acme_known())
        ended_span("a3", "acme")
        ended_span("a4", "acme")
        ended_span("stranger", "initech")  # never known: the policy's (the default project)
        assert autotrace.flush(10)
        assert [s.name for s in rx.wait_for_spans(1)] == ["stranger"]
        stats = autotrace.stats()
        sent_to_acme = [s.name for s in acme.spans]
        assert sent_to_acme in (["a1"], ["a1", "a2"])
        assert stats["spans_dropped.credentials_revoked"] == 4 - len(sent_to_acme)
        assert "spans_dropped.unknown_tenant" not in stats

        _write(path, acme.endpoint)  # its keys are back: its spans flow to its project again
        ended_span("a5", "acme")  # waits for its keys, looked up again
        assert autotrace.flush(10)
        assert [s.name for s in acme.wait_for_spans(len(sent_to_acme) + 1)][len(sent_to_acme):] == ["a5"]
        assert [s.name for s in rx.spans] == ["stranger"]
        assert autotrace.stats()["spans_dropped.credentials_revoked"] == 4 - len(sent_to_acme)


class Store:
    """A secret store: acme's keys unless ``revoked``; no keys for anyone else."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.revoked = False

    def resolve(self, tenant: str) -> Credentials | None:
        if tenant != "acme" or self.revoked:
            return None
        return Credentials("pk-a", "sk-a", host=self.host)


def test_a_tenant_revoked_after_its_idle_destination_closed_is_still_revoked(
        rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its destination closed as idle, nothing held the tenant's place: the revocation found at its
    next span is still one."""
    monkeypatch.setattr(router, "_RECHECK_CREDENTIALS", 0.0)
    with OtlpReceiver() as acme:
        store = Store(acme.endpoint)
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-default", secret_key="sk-default",
                          unknown_tenant="default", credentials=store, integrations=(), local_store="off",
                          export_interval=0.05, tenant_idle_seconds=0.1)
        ended_span("a1", "acme")
        assert autotrace.flush(10)
        _wait(lambda: not _acme_known() and autotrace.stats().get("tenant_destinations_evicted") == 1)
        store.revoked = True
        ended_span("a2", "acme")
        ended_span("stranger", "initech")
        assert autotrace.flush(10)
        assert [s.name for s in rx.wait_for_spans(1)] == ["stranger"]
        assert [s.name for s in acme.spans] == ["a1"]
        stats = autotrace.stats()
        assert stats["spans_dropped.credentials_revoked"] == 1 and "spans_dropped.unknown_tenant" not in stats
