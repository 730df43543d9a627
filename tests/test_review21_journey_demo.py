"""The demo on a machine already set up for autotrace: it stays offline and as installed whatever the
shell's ``AUTOTRACE_*`` settings (``AUTOTRACE_LANGFUSE_HOST`` with a tenant's keys sent its made-up
acme traces to that Langfuse project), and it writes the store its suggested commands read
(with ``AUTOTRACE_LOCAL_STORE_PATH`` set it wrote ``~/.autotrace/traces.db`` and ``autotrace traces``
then found no store; ``--db=~/...`` was taken literally)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autotrace import cli
from autotrace.demo import run_demo
from autotrace.export.local_store import LocalStore
from autotrace.testing.otlp_receiver import OtlpReceiver


def _tenants(db: Path) -> list[str]:
    return sorted(str(s["tenant"]) for s in LocalStore(db, read_only=True).traces())


def test_the_shell_settings_neither_export_nor_change_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "env store" / "traces.db"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AUTOTRACE_HOME", raising=False)
    monkeypatch.setenv("AUTOTRACE_LOCAL_STORE_PATH", str(store))
    with OtlpReceiver() as langfuse:
        monkeypatch.setenv("AUTOTRACE_LANGFUSE_HOST", langfuse.endpoint)
        monkeypatch.setenv("AUTOTRACE_TENANT_ACME_PUBLIC_KEY", "pk-lf-acme")
        monkeypatch.setenv("AUTOTRACE_TENANT_ACME_SECRET_KEY", "sk-lf-acme")
        monkeypatch.setenv("AUTOTRACE_REDACT", "none")
        monkeypatch.setenv("AUTOTRACE_CAPTURE_CONTENT", "false")
        assert run_demo() == 0
        assert langfuse.spans == []
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"stored in {store}. Try: autotrace traces   |")
    assert _tenants(store) == ["None", "acme", "globex"]
    acme = next(s for s in LocalStore(store, read_only=True).traces() if s["tenant"] == "acme")
    turn = LocalStore(store, read_only=True).trace(acme["trace_id"])[0]
    assert turn["input"] == "My card <CREDIT_CARD> was charged twice for order A-1001, please refund me."
    # the command the demo suggests reads that store
    assert cli.main(["traces", "--json"]) == 0
    assert sorted(str(t["tenant"]) for t in json.loads(capsys.readouterr().out)) == ["None", "acme", "globex"]
    assert not (tmp_path / "home" / ".autotrace").exists()


def test_a_db_with_a_tilde_is_the_one_the_cli_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--db=~/demo.db"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"stored in {tmp_path / 'home' / 'demo.db'}. ")
    assert _tenants(tmp_path / "home" / "demo.db") == ["None", "acme", "globex"]
    assert cli.main(["--db", "~/demo.db", "traces", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert not (tmp_path / "~").exists()
