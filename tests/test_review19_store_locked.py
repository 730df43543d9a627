"""Review 19: another process holding the store's write lock past the busy timeout (a store opened in
the ``sqlite3`` shell inside a transaction, a writer stopped in a debugger). The batch failed as an
internal error of autotrace's, its log naming a line of autotrace's code rather than the lock. Real
processes and SQLite files; the busy timeout lowered on the application's connection (10 s as made)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autotrace

_HOLD = textwrap.dedent("""
    import sqlite3, sys
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    print("held", flush=True)
    sys.stdin.readline()
    db.execute("COMMIT")
""")
_COUNTERS = ("spans_dropped.export_failed", "export_failures.local", "spans_exported.local",
             "internal_errors.export.local")


def _trace(name: str) -> bool:
    with autotrace.start_span(name):
        pass
    return autotrace.flush(30)


def test_a_store_another_process_holds_is_said_to_be_locked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "traces.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=(), max_retries=0)
    assert _trace("before")
    store = autotrace.local_store()
    assert store is not None
    with store._lock:
        store._conn().execute("PRAGMA busy_timeout = 100")
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with caplog.at_level(logging.WARNING, logger="autotrace"):
            assert _trace("locked")
    finally:
        holder.communicate("\n", timeout=30)
    assert _trace("after")
    stats = autotrace.stats()
    assert {name: stats[name] for name in _COUNTERS if name in stats} == {
        "spans_dropped.export_failed": 1, "export_failures.local": 1, "spans_exported.local": 2}
    assert [r.getMessage() for r in caplog.records if "local" in r.getMessage()] == [
        f"autotrace: export to local failed (store locked: database is locked: {path}); batch dropped (counted)"]
    assert sorted(o["name"] for o in store.observations()) == ["after", "before"]
