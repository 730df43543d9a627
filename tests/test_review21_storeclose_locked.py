"""Shutdown stays bounded while another connection holds the local store (real SQLite, real pipeline).

While another process held the store's write lock, ``shutdown(0.1)`` took ~10 s: closing the store
waited for the export thread's write, itself waiting out SQLite's busy timeout. Now closing gives a
write under way at most the shutdown's time left plus a small constant; one given up is rolled back
when it gets the store (not committed after shutdown counted it dropped), so counts stay exact.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import autotrace
from autotrace.export import local_store
from autotrace.export.local_sink import LocalStoreSink
from autotrace.export.local_store import LocalStore
from autotrace.scores import ScoreItem
from tests.helpers import ended_span
from tests.test_review21_storeshut_local import _in_store, _installed_and_held, _rows, _wait

TRACE = "0af7651916cd43dd8448eb211c80319c"


def test_shutdown_returns_while_another_connection_holds_the_store(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    holder = _installed_and_held(path)
    shutting = threading.Thread(target=autotrace.shutdown, args=(0.1,), daemon=True)
    try:
        for _ in range(5):
            ended_span()
        assert autotrace.score("helpful", 1.0, trace_id=TRACE) is not None
        autotrace.flush(0.01)  # one batch of all six goes, and waits on the store
        assert _wait(lambda: _in_store("_transaction"))
        shutting.start()
        shutting.join(timeout=6.0)  # the old code: ~10 s, until SQLite's busy wait ran out
        returned_while_held = not shutting.is_alive()
    finally:
        holder.execute("COMMIT")  # the write given up goes on: it must not store what was counted dropped
        holder.close()
    assert returned_while_held
    assert _wait(lambda: not _in_store("_transaction"))  # the write given up has ended
    stats = autotrace.stats()
    assert (_rows(path, "observations"), _rows(path, "scores")) == (1, 0)  # the warm span only
    assert stats.get("spans_exported") == 1 and stats.get("spans_dropped.shutdown") == 5
    assert stats.get("scores_dropped.shutdown") == 1 and "scores_exported" not in stats
    assert not [name for name in stats if name.startswith(("internal_errors", "export_failures"))]


def test_a_store_close_that_gives_up_rolls_the_write_back_and_closes_its_connection(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = LocalStore(path)
    store.write([])  # purge and indexes first
    sink = LocalStoreSink(store)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    score = ScoreItem(tenant=None, body={"id": "s1", "name": "q", "value": 1.0, "traceId": TRACE})
    results: list[object] = []
    writing = threading.Thread(target=lambda: results.append(sink.export([score])), daemon=True)
    writing.start()
    try:
        assert _wait(lambda: _in_store("_insert_score", writing.ident))
        closed_at = time.monotonic()
        sink.close(0.05)  # the old ``close()`` took no wait: it blocked until the write ended
        assert time.monotonic() - closed_at < local_store._BUSY_TIMEOUT / 2
        assert writing.is_alive()  # still waiting on the holder
    finally:
        holder.execute("COMMIT")
        holder.close()
    writing.join(timeout=15.0)
    assert not writing.is_alive()
    result = results[0]
    assert (result.ok, result.reason, result.settled) == (False, "closed", ())  # type: ignore[attr-defined]
    assert _rows(path, "scores") == 0  # rolled back, not committed after the close gave up
    assert store._db is None  # its connection closed as the write ended
