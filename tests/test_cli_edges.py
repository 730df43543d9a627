"""The CLI on hostile inputs, through the real command over real SQLite stores: read commands never
write, bad or busy stores are one-line errors, odd values and deep trees render, ids are exact."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

NOW = time.time_ns()


def _record(trace_id: str, span_id: str, parent: str | None = None, **fields: Any) -> dict[str, Any]:
    record = {"trace_id": trace_id, "id": span_id, "parent_id": parent, "name": "step", "type": "span",
              "tenant": "acme", "start_ns": NOW, "end_ns": NOW + 10**6, "level": "DEFAULT", "model": None,
              "usage": None, "cost": None, "duration_ms": 1.0}
    record.update(fields)
    return record


def _store(path: Path, records: list[dict[str, Any]], retention_days: float = 28.0) -> Path:
    store = LocalStore(path, retention_days)
    store.write(records)
    store.close()
    return path


def _cli(db: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = isolated_env(db.parent)
    return subprocess.run([sys.executable, "-m", "autotrace", "--db", str(db), *argv], capture_output=True,
                          text=True, env={**clean, **(env or {})}, timeout=60, check=False)


def _count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0])


def test_read_commands_never_delete_or_write(tmp_path: Path) -> None:
    old = NOW - 40 * 86400 * 10**9
    db = _store(tmp_path / "t.db", [_record("a" * 32, "1" * 16, start_ns=old, end_ns=old + 1),
                                    _record("b" * 32, "1" * 16)], retention_days=90)
    for argv in (["traces"], ["show", "a" * 32], ["query", "type=span"]):
        result = _cli(db, *argv, env={"AUTOTRACE_RETENTION_DAYS": "90"})
        assert result.returncode == 0, result.stderr
    assert _count(db) == 2


@pytest.mark.parametrize("kind", ["corrupt", "directory", "not-autotrace", "missing"])
def test_unreadable_stores_are_one_line_errors(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "t.db"
    if kind == "corrupt":
        db.write_bytes(b"this is not a sqlite database" * 100)
    elif kind == "directory":
        db.mkdir()
    elif kind == "not-autotrace":
        sqlite3.connect(db).execute("CREATE TABLE x (a)").connection.close()
    for argv in (["traces"], ["show", "abc"], ["query", "type=generation"]):
        result = _cli(db, *argv)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("autotrace: ")
    assert kind != "missing" or not db.exists()


def test_reading_while_a_writer_holds_the_store(tmp_path: Path) -> None:
    db = _store(tmp_path / "t.db", [_record("a" * 32, "1" * 16)])
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # an application's export thread mid-batch
    try:
        result = _cli(db, "traces", "--json")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert result.returncode == 0, result.stderr
    assert [s["trace_id"] for s in json.loads(result.stdout)] == ["a" * 32]


def test_non_numeric_cost_and_usage_render(tmp_path: Path) -> None:
    db = _store(tmp_path / "t.db", [_record("a" * 32, "1" * 16, type="generation", name="g",
                                            cost={"total": "0.25"}, usage={"total": "lots"})])
    result = _cli(db, "show", "a" * 32)
    assert result.returncode == 0, result.stderr
    assert "$0.25" in result.stdout and "lots tok" in result.stdout
    for argv in (["show", "a" * 32, "--json"], ["query", "type=generation"]):
        assert _cli(db, *argv).returncode == 0


def test_deep_and_wide_trees_are_capped_not_crashed(tmp_path: Path) -> None:
    deep = [_record("a" * 32, f"{i + 1:016x}", f"{i:016x}" if i else None, name=f"d{i}") for i in range(1200)]
    wide = [_record("b" * 32, "f" * 16, name="root")]
    wide += [_record("b" * 32, f"{i + 1:016x}", "f" * 16, name=f"w{i}") for i in range(3000)]
    db = _store(tmp_path / "t.db", deep + wide)
    result = _cli(db, "show", "a" * 32)
    assert result.returncode == 0, result.stderr
    assert "d0" in result.stdout and "not shown (1136 nested deeper than 64 levels" in result.stdout
    assert len(json.loads(_cli(db, "show", "a" * 32, "--json").stdout)) == 1200
    result = _cli(db, "show", "b" * 32, "--no-io")
    assert result.returncode == 0 and len(result.stdout.splitlines()) <= 2001
    assert "output capped at 2000 lines" in result.stdout.splitlines()[-1]


def test_trace_ids_are_hex_prefixes_and_ambiguity_is_reported(tmp_path: Path) -> None:
    db = _store(tmp_path / "t.db", [_record("ab" + "0" * 30, "1" * 16), _record("ac" + "0" * 30, "1" * 16)])
    for prefix in ("%", "_", "", "a%", "zz"):
        result = _cli(db, "show", prefix)
        assert result.returncode == 2 and "not a trace id" in result.stderr and not result.stdout
    result = _cli(db, "show", "a")
    assert result.returncode == 2 and "ambiguous" in result.stderr
    assert "ab" + "0" * 30 in result.stderr and "ac" + "0" * 30 in result.stderr
    assert _cli(db, "show", "AB").stdout.startswith("trace ab")


def test_query_streams_and_stops_at_the_limit(tmp_path: Path) -> None:
    db = _store(tmp_path / "t.db", [_record(f"{i:032x}", "1" * 16, start_ns=NOW + i, type="tool") for i in range(50)])
    with sqlite3.connect(db) as conn:  # the oldest row is never decoded when --limit is reached first
        conn.execute("UPDATE observations SET record = 'not json' WHERE start_ns = ?", (NOW,))
    result = _cli(db, "query", "type=tool", "--limit", "3", "--json")
    assert result.returncode == 0, result.stderr
    assert [r["trace_id"] for r in json.loads(result.stdout)] == [f"{i:032x}" for i in (49, 48, 47)]


def test_trace_list_counts_errors_as_show_does(tmp_path: Path) -> None:
    root = _record("a" * 32, "1" * 16, name="turn")
    failed = _record("a" * 32, "2" * 16, "1" * 16, name="http GET", error=True, status_message="503")
    db = _store(tmp_path / "t.db", [root, failed])
    assert json.loads(_cli(db, "traces", "--json").stdout)[0]["errors"] == 1
    assert "ERROR 503" in _cli(db, "show", "a" * 32).stdout


def test_control_characters_are_escaped(tmp_path: Path) -> None:
    db = _store(tmp_path / "t.db", [_record("a" * 32, "1" * 16, name="lookup\n└─ [TOOL] fake", model="m\x1b[2J\u202e",
                                            type="generation")])
    for argv in (["show", "a" * 32], ["traces"], ["query", "type=generation"]):
        out = _cli(db, *argv).stdout
        assert "\x1b" not in out and "\u202e" not in out and "fake" in out
    show = _cli(db, "show", "a" * 32).stdout.splitlines()
    assert len(show) == 2 and "lookup\\n└─ [TOOL] fake" in show[1] and "m\\x1b[2J\\u202e" in show[1]
    shown = json.loads(_cli(db, "show", "a" * 32, "--json").stdout)
    assert shown[0]["model"] == "m\x1b[2J\u202e"  # JSON keeps the value, escaped


@pytest.mark.parametrize("argv", [["traces", "--limit", "-1"], ["traces", "--limit", "0"],
                                  ["query", "type=span", "--limit", "-1"], ["query", "type=span", "--limit", "x"]])
def test_limit_must_be_positive(tmp_path: Path, argv: list[str]) -> None:
    result = _cli(_store(tmp_path / "t.db", [_record("a" * 32, "1" * 16)]), *argv)
    assert result.returncode == 2 and "must be a positive integer" in result.stderr


def test_out_of_range_integers_do_not_lose_the_batch(tmp_path: Path) -> None:
    db = _store(tmp_path / "t.db", [_record("a" * 32, "1" * 16, name="fine"),
                                    _record("a" * 32, "2" * 16, "1" * 16, usage={"total": 10**30})])
    store = LocalStore(db, read_only=True)
    records = store.trace("a" * 32)
    assert [r["name"] for r in records] == ["fine", "step"] and records[1]["usage"]["total"] == 10**30
    assert store.traces()[0]["tokens"] == pytest.approx(1e30)
    store.close()


def test_a_failed_span_of_another_library_is_an_error_everywhere(tmp_path: Path) -> None:
    """A span whose only sign of failure is its status (no Langfuse level) is level ERROR in the
    record, so ``traces``, ``show`` and ``query level=ERROR`` agree."""
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    import autotrace

    db = tmp_path / "t.db"
    autotrace.install(local_store="on", local_store_path=db, integrations=())
    with autotrace.start_chain("turn"), trace.get_tracer("other.library").start_as_current_span("http GET") as span:
        span.set_status(Status(StatusCode.ERROR, "503"))
    assert autotrace.flush(5)
    autotrace.uninstall()
    found = json.loads(_cli(db, "query", "level=ERROR", "--json").stdout)
    assert [(r["name"], r["level"], r["status_message"]) for r in found] == [("http GET", "ERROR", "503")]
    assert json.loads(_cli(db, "traces", "--json").stdout)[0]["errors"] == 1
