"""The CLI over the embedded store: traces, show, query (text and JSON), retention, and the demo."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import autotrace
from autotrace import cli
from autotrace.export.local_store import LocalStore
from tests.helpers import Traced


def _pipeline() -> str:
    with autotrace.tenant("acme"), autotrace.trace_attributes(name="turn", user_id="u1"):
        with autotrace.start_chain("root") as root:
            with autotrace.start_generation("big", model="m") as gen:
                gen.update(usage={"input": 2000, "output": 500, "total": 2500}, cost={"total": 0.25})
            with autotrace.start_generation("small", model="m") as gen:
                gen.update(usage={"input": 10, "output": 5, "total": 15})
            with autotrace.start_retrieval("empty-search", query="q") as ret:
                ret.update(documents=[], doc_count=0)
            with pytest.raises(RuntimeError), autotrace.start_tool("broken"):
                raise RuntimeError("tool down")
            return root.trace_id


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().out


def test_traces_show_and_query(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    trace_id = _pipeline()
    traced.records()
    db = str(traced.path)

    code, out = _run(capsys, "--db", db, "traces", "--json")
    (summary,) = json.loads(out)
    assert code == 0
    assert summary["trace_id"] == trace_id and summary["name"] == "turn" and summary["tenant"] == "acme"
    assert summary["tokens"] == 2515 and summary["cost"] == pytest.approx(0.25) and summary["errors"] == 1
    assert summary["observations"] == 5

    code, out = _run(capsys, "--db", db, "show", trace_id[:10])
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"trace {trace_id}  tenant=acme  name=turn  user=u1"
    assert lines[1].startswith("└─ [CHAIN] root")
    assert any("[GEN] big" in line and "2500 tok" in line and "$0.250000" in line for line in lines)
    assert any("[TOOL] broken" in line and "ERROR RuntimeError: tool down" in line for line in lines)

    code, out = _run(capsys, "--db", db, "show", trace_id, "--json")
    assert [r["name"] for r in json.loads(out)] == ["root", "big", "small", "empty-search", "broken"]


def test_query_language(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("autotrace.query")
    _pipeline()
    traced.records()
    db = str(traced.path)
    code, out = _run(capsys, "--db", db, "query", "type=generation and usage.total>2000", "--json")
    assert code == 0 and [r["name"] for r in json.loads(out)] == ["big"]
    code, out = _run(capsys, "--db", db, "query", "type=retriever and doc_count<1", "--json")
    assert [r["name"] for r in json.loads(out)] == ["empty-search"]
    code, out = _run(capsys, "--db", db, "query", "level=ERROR", "--json")
    assert [r["name"] for r in json.loads(out)] == ["broken"]
    code, _ = _run(capsys, "--db", db, "query", "type=(")
    assert code == 2


def test_show_unknown_trace_and_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    LocalStore(tmp_path / "t.db").close()
    assert cli.main(["--db", str(tmp_path / "t.db"), "show", "abc"]) == 1
    capsys.readouterr()
    assert cli.main(["--db", str(tmp_path / "missing.db"), "traces"]) == 1
    assert "no local store at" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()


def test_retention_deletes_old_observations(traced: Traced) -> None:
    _pipeline()
    traced.records()
    store = LocalStore(traced.path, retention_days=1)
    assert store.purge(now_ns=time.time_ns()) == 0
    assert store.purge(now_ns=time.time_ns() + 2 * 86400 * 10**9) == 5
    assert store.traces() == []


def test_demo_command_prints_both_tenants(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "autotrace", "--db", str(tmp_path / "demo.db"), "demo"],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "=== tenant acme: one trace across agent-service, rag-service; tenants in it: acme" in result.stdout
    assert "=== tenant globex: one trace across agent-service, rag-service; tenants in it: globex" in result.stdout
    assert "[TOOL] issue_refund" in result.stdout and "[GUARD] card-number-guard" in result.stdout
    assert "autotrace:" not in result.stderr  # no integration warnings on a clean install
