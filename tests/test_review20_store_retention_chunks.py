"""Review 20: a trace of very many observations (a batch job's root span over 100,000 calls) was deleted,
by retention and by the size cap, in one transaction: every other process writing the store waited for
all of it (seconds; its batches then met the lock and were retried), and the WAL grew by the whole trace.
It now goes ``CHUNK_ROWS`` observations a transaction, hidden from reads from the first (never shown half
deleted), and a drop a crash cut short is finished by the next process's first write. The transactions are
counted and read between, not timed. Real SQLite files; the crash is a real SIGKILL."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import autotrace
from autotrace.export import store_retention
from autotrace.export.local_store import LocalStore
from tests.test_local_store_review3 import DAY_NS, record

CHUNK = getattr(store_retention, "CHUNK_ROWS", 2048)
BIG = 2 * CHUNK + CHUNK // 2  # observations of the large trace: two full chunks and a part
BIG_ID = f"{1:032x}"


def _big_store(path: Path, *, end_ns: int, max_mb: float | None = None, size: int = 10) -> LocalStore:
    """A store holding the large trace (a root, ``BIG - 1`` children) ending at ``end_ns``, and a score of it."""
    store = LocalStore(path, retention_days=1, max_mb=max_mb)
    store.write([record(1, 1, end_ns + BIG)] + [record(1, s, end_ns + s, size, parent=1) for s in range(2, BIG + 1)])
    store.add_score({"id": "s1", "trace_id": BIG_ID, "name": "q", "value": 1.0})
    return store


def _watch(store: LocalStore, reader: LocalStore) -> list[tuple[int, int, int, int, int]]:
    """Wrap ``store``'s transactions; for each committed one: (observations it deleted, and then, as the CLI
    reads them through ``reader``: the large trace's observations in ``traces``, in ``trace``, in
    ``iter_observations``, and its scores)."""
    seen: list[tuple[int, int, int, int, int]] = []
    transaction = store._transaction

    def count(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT COUNT(*) FROM observations").fetchone()[0])

    @contextmanager
    def watched() -> Iterator[sqlite3.Connection]:
        with transaction() as db:
            before = count(db)
            yield db
            deleted = before - count(db)
        summary = [t["observations"] for t in reader.traces(limit=100) if t["trace_id"] == BIG_ID]
        listed = sum(o["trace_id"] == BIG_ID for o in reader.iter_observations())
        seen.append((deleted, sum(summary), len(reader.trace(BIG_ID)), listed, len(reader.scores(BIG_ID))))

    store._transaction = watched  # type: ignore[method-assign]
    return seen


def _shown_whole_or_not_at_all(seen: list[tuple[int, int, int, int, int]]) -> bool:
    """Whole (with its score) until the first transaction that deleted some of it, then not at all."""
    first = next(i for i, s in enumerate(seen) if s[0] > 0)
    return {s[1:] for s in seen[:first]} <= {(BIG, BIG, BIG, 1)} and {s[1:] for s in seen[first:]} == {(0, 0, 0, 0)}


def test_retention_deletes_a_large_trace_in_bounded_transactions_never_half_shown(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = _big_store(path, end_ns=time.time_ns() - 2 * DAY_NS)
    store.write([record(2, 1, time.time_ns())])
    reader = LocalStore(path, read_only=True)
    seen = _watch(store, reader)
    assert store.purge(now_ns=time.time_ns()) == BIG + 1  # its observations and its score
    deleting = [s for s in seen if s[0] > 0]
    assert [s[0] for s in deleting] == [CHUNK, CHUNK, BIG - 2 * CHUNK]
    assert _shown_whole_or_not_at_all(seen)
    assert [int(o["trace_id"], 16) for o in reader.observations()] == [2]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM dropping_traces").fetchone()[0] == 0
    assert "internal_errors.local_store.purge" not in autotrace.stats()


def test_the_size_cap_deletes_a_large_trace_in_bounded_transactions(tmp_path: Path) -> None:
    """The cap's rounds are bounded in bytes but each takes one trace at least: the large trace went whole."""
    path = tmp_path / "t.db"
    before = autotrace.stats().get("local_store_pruned_observations", 0)
    store = _big_store(path, end_ns=time.time_ns() - 3600 * 10**9, max_mb=None, size=1000)
    store.close()
    store = LocalStore(path, retention_days=1, max_mb=1.0)
    reader = LocalStore(path, read_only=True)
    seen = _watch(store, reader)
    store.write([record(2, 1, time.time_ns())])  # measures the store: over the cap
    deleting = [s for s in seen if s[0] > 0]
    assert [s[0] for s in deleting] == [CHUNK, CHUNK, BIG - 2 * CHUNK]
    assert _shown_whole_or_not_at_all(seen)
    assert [int(o["trace_id"], 16) for o in reader.observations()] == [2]
    assert autotrace.stats()["local_store_pruned_observations"] - before == BIG


_KILLED = textwrap.dedent("""
    import os, signal, sys, time
    from contextlib import contextmanager
    from autotrace.export.local_store import LocalStore
    from tests.test_review20_store_retention_chunks import _big_store, DAY_NS

    store = _big_store(sys.argv[1], end_ns=time.time_ns() - 2 * DAY_NS)
    transaction, done = store._transaction, []

    @contextmanager
    def crashing():
        with transaction() as db:
            yield db
        done.append(1)
        if len(done) == 3:  # the drop begun, and one more chunk: killed between two of its transactions
            os.kill(os.getpid(), signal.SIGKILL)

    store._transaction = crashing
    store.purge(now_ns=time.time_ns())
""")


def test_a_drop_a_crash_cut_short_stays_hidden_and_the_next_process_finishes_it(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    done = subprocess.run([sys.executable, "-c", _KILLED, str(path)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[1], env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.returncode == -9, done.stderr
    with sqlite3.connect(path) as db:  # part of it is still there
        assert db.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == BIG - 2 * CHUNK
    reader = LocalStore(path, read_only=True)
    assert (reader.traces(), reader.trace(BIG_ID), reader.observations()) == ([], [], [])
    store = LocalStore(path, retention_days=28)  # nothing expired for it: the drop is finished all the same
    store.write([record(2, 1, time.time_ns())])
    assert [int(o["trace_id"], 16) for o in reader.observations()] == [2]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT trace_id) FROM observations").fetchone() == (1, 1)
        assert db.execute("SELECT COUNT(*) FROM dropping_traces").fetchone()[0] == 0
