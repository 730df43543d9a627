"""Review 19: retention over a trace of many observations (a batch job's root span over thousands of
calls). Each row deleted was tested for a row of its trace still kept by reading the whole trace again:
the work grew with the square of the trace's size (32,000 observations in traces of 8,000 took over
three minutes, the store's write lock held throughout: every other process writing the store timed
out, and the export thread purging stored nothing meanwhile). The work is measured as SQLite's own
count of virtual-machine steps (its progress handler), not by a clock. Real SQLite files."""

from __future__ import annotations

import time
from pathlib import Path

import autotrace
from autotrace.export.local_store import LocalStore
from tests.test_local_store_review3 import DAY_NS, record

STEPS = 100  # the progress handler is called every this many virtual-machine steps


def _purge_steps(path: Path, spans: int) -> tuple[int, int, list[int]]:
    """Store one expired trace of ``spans`` observations (a root and its children) and a recent one, purge
    as of now: SQLite's steps (in ``STEPS``), the rows deleted, and the traces left."""
    store = LocalStore(path, retention_days=1, max_mb=None)
    old = time.time_ns() - 2 * DAY_NS
    store.write([record(1, 1, old + spans)] + [record(1, span, old + span, 10, parent=1) for span in range(2, spans + 1)])
    store.write([record(2, 1, time.time_ns())])
    store.add_score({"id": "s1", "trace_id": f"{1:032x}", "name": "q", "value": 1.0})
    calls = [0]

    def step() -> int:
        calls[0] += 1
        return 0

    store._conn().set_progress_handler(step, STEPS)
    deleted = store.purge(now_ns=time.time_ns())
    left = sorted({int(o["trace_id"], 16) for o in store.observations()})
    store.close()
    return calls[0], deleted, left


def test_purging_a_large_trace_takes_work_in_proportion_to_its_size(tmp_path: Path) -> None:
    small, deleted_small, left_small = _purge_steps(tmp_path / "small.db", 1000)
    large, deleted_large, left_large = _purge_steps(tmp_path / "large.db", 4000)
    assert (deleted_small, left_small, deleted_large, left_large) == (1001, [2], 4001, [2])  # the score too
    assert large < 6 * small  # four times the rows: about four times the work (it was about sixteen)
    assert "internal_errors.local_store.purge" not in autotrace.stats()
