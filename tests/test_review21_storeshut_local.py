"""What shutdown counts of a local store write under way (real SQLite store, real pipeline).

A store write still running when a shutdown's timeout ran out finished (closing the store waits for
it), yet its whole batch was counted ``spans_dropped.shutdown``: with ``shutdown(0)`` 1,024 of 3,000
spans were counted exported and 1,536 stored. A score of that batch written after the store closed
failed as an internal error. Now what the store wrote counts as exported, the rest as dropped, and a
store closed under a batch writes nothing more (no internal error).
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from pathlib import Path

import autotrace
from autotrace.export.local_sink import LocalStoreSink
from autotrace.export.local_store import LocalStore
from autotrace.runtime import state
from autotrace.scores import ScoreItem
from tests.helpers import ended_span

TRACE = "0af7651916cd43dd8448eb211c80319c"


def _wait(condition, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    return bool(condition())


def _in_store(function: str, ident: int | None = None) -> bool:
    """Whether a thread (``ident``, else any) runs ``LocalStore.<function>`` now."""
    frames = sys._current_frames()
    for thread_id, frame in frames.items():
        if ident is not None and thread_id != ident:
            continue
        walk = frame
        while walk is not None:
            code = walk.f_code
            if code.co_name == function and code.co_filename.endswith("local_store.py"):
                return True
            walk = walk.f_back
    return False


def _rows(path: Path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


def _installed_and_held(path: Path) -> sqlite3.Connection:
    """Install with the local store at ``path``, written once, then held by another writer (the next
    write waits for it: SQLite's busy wait, 10 s): that writer's connection."""
    autotrace.install(local_store="on", local_store_path=path, integrations=(), export_interval=60.0)
    ended_span("warm")  # the first write purges and indexes: done before the store is held
    assert autotrace.flush(5.0)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_store_write_under_way_at_shutdown_counts_as_what_it_stored(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    holder = _installed_and_held(path)
    try:
        for _ in range(5):
            ended_span()
        for _ in range(3):
            assert autotrace.score("helpful", 1.0, trace_id=TRACE) is not None
        autotrace.flush(0.01)  # one batch of all eight goes (and waits on the store)
        assert _wait(lambda: _in_store("_transaction"))
        shutting = threading.Thread(target=autotrace.shutdown, args=(0,), daemon=True)
        shutting.start()
        assert _wait(lambda: _in_store("close", shutting.ident))  # its timeout is over: closing the store
    finally:
        holder.execute("COMMIT")  # the write goes on, then the store closes
        holder.close()
    shutting.join(timeout=10.0)
    assert not shutting.is_alive()
    stats = autotrace.stats()
    assert _rows(path, "observations") == 6
    assert stats.get("spans_exported") == 6 and "spans_dropped.shutdown" not in stats  # the old code: 1 and 5
    scores = _rows(path, "scores")  # each in a transaction of its own: those before the store closed
    assert stats.get("scores_exported", 0) == scores and scores + stats.get("scores_dropped.shutdown", 0) == 3
    assert not [name for name in stats if name.startswith(("internal_errors", "export_failures"))]


def test_a_closed_store_sink_writes_nothing_and_says_so(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store.db")
    sink = LocalStoreSink(store)
    sink.close()
    score = ScoreItem(tenant=None, body={"id": "s1", "name": "q", "value": 1.0, "traceId": TRACE})
    result = sink.export([score])  # the old code raised ProgrammingError (an internal error)
    assert (result.ok, result.retryable, result.reason, result.settled) == (False, False, "closed", ())
    assert _rows(tmp_path / "store.db", "scores") == 0


def test_shutdown_counts_every_span_once_as_stored_or_dropped(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=(), export_interval=0.05)
    for _ in range(3000):
        ended_span()
    autotrace.shutdown(0)
    stats = autotrace.stats()
    stored = _rows(path, "observations")
    assert stats.get("spans_exported", 0) == stored
    assert stored + stats.get("spans_dropped.shutdown", 0) == 3000
    assert state.pipeline is None
