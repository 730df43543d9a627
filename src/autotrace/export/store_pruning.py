"""The local store's size cap: when its used pages pass the cap, the oldest whole traces go.

``LocalStore`` calls ``SizeCap.note`` after each write (on the export thread) and ``prune`` when the
cap may be passed. Used size is ``(page_count - freelist_count) * page_size``: the pages that hold
rows; the WAL is not counted (SQLite checkpoints it back into those pages). Deleted rows free pages
that later writes reuse, so the file stops growing; nothing here VACUUMs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from .._internal import count, log_once
from .store_retention import Transaction, drain, drop

#: Pruning stops once used size is under this share of the cap, so it does not run on every write.
TARGET = 0.9
#: Bytes a stored row takes beyond its record's JSON (columns, four index entries), as estimated.
ROW_OVERHEAD = 256
#: The estimate of bytes written since the last measure counts double: indexes and page slack.
_ESTIMATE_FACTOR = 2
#: Measure at least this often (seconds) while anything is written, whatever the estimate says.
CHECK_EVERY = 5.0
#: Most record bytes one round (one transaction) deletes: rounds stay short for other writers and the WAL.
ROUND_BYTES = 8 << 20
#: Observations (oldest ends first) read to find a round's candidate traces; doubled when none is settled.
WINDOW_ROWS = 4096
#: A trace with no root stored whose last observation ended this recently may still be written: others go first.
OPEN_GRACE_NS = 60 * 10**9
#: Rounds per prune at most (each deletes at least one trace, or the prune stops).
MAX_ROUNDS = 10_000
#: Scores whose trace is not stored, deleted (oldest first) per round once no trace is left.
ORPHAN_SCORES = 1000

class Pruned(NamedTuple):
    """What one round deleted: traces, their observations and scores, the traces' estimated bytes (0 when
    observations of theirs are left for ``drain``) and whether some are."""

    traces: int
    rows: int
    scores: int
    estimate: int = 0
    left: bool = False


@dataclass
class Candidate:
    """One trace among the oldest: its latest end, observations, record bytes and whether a root is stored."""

    trace_id: str
    last_end: int
    rows: int
    size: int
    rooted: bool


def used_bytes(db: sqlite3.Connection) -> int:
    """Bytes in pages holding rows (page_count - freelist_count, times page_size); the WAL not counted."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * db.execute("PRAGMA page_size").fetchone()[0])


class SizeCap:
    """When to measure the store, and the pruning of its oldest whole traces down to ``TARGET``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._last_used: int | None = None  # unknown: the first write measures
        self._unmeasured = 0  # estimated bytes written since the last measure
        self._last_check = time.monotonic()
        self._busy = threading.Lock()  # one prune at a time; another writer skips it
        #: Bytes a round freed per estimated byte (page slack: a 3 KB row fills a 4 KB page); None
        #: until a round has shown it, when a round takes half the excess so it cannot overshoot much.
        self._scale: float | None = None

    def after_fork(self) -> None:
        """In a forked child: a prune another thread of the parent was running is not ours to wait for."""
        self._busy = threading.Lock()

    def note(self, written: int) -> bool:
        """Add ``written`` estimated bytes; True when the store should be measured now."""
        self._unmeasured += written * _ESTIMATE_FACTOR
        if self._last_used is None or self._last_used + self._unmeasured >= self.max_bytes:
            return True
        return self._unmeasured > 0 and time.monotonic() - self._last_check >= CHECK_EVERY

    def enforce(self, measure: Callable[[], int], transaction: Transaction, where: str) -> None:
        """Measure; over the cap, delete the oldest whole traces until under ``TARGET`` of it."""
        if not self._busy.acquire(blocking=False):
            return
        try:
            self._unmeasured = 0
            self._last_check = time.monotonic()
            self._last_used = used = measure()
            if used > self.max_bytes:
                log_once("local_store_cap", "autotrace: local store %s over its size cap (%.1f MiB); oldest traces "
                         "removed (counted as local_store_pruned_traces)", where, self.max_bytes / 2**20)
                self._last_used = self._prune(used, transaction)
        finally:
            self._busy.release()

    def _prune(self, used: int, transaction: Transaction) -> int:
        """Rounds until under ``TARGET``; each measures the store under the write lock it deletes with, before
        and after: other processes prune (and write) the same store, and a size measured before waiting for
        that lock could be long gone (its budget took every finished trace, then those still written)."""
        target = int(self.max_bytes * TARGET)
        _count(Pruned(0, drain(transaction), 0))  # a drop a crash cut short; and ``DROPPING`` made before any
        for _ in range(MAX_ROUNDS):
            with transaction() as db:
                before = used_bytes(db)
                if before <= target:
                    return before
                budget = (before - target) / (self._scale or 2)
                pruned = prune_round(db, int(min(budget, ROUND_BYTES)) + 1)
                used = used_bytes(db)  # what this round freed, not what others did meanwhile
            _count(pruned)  # once committed
            if pruned.left:  # the rest of a large trace, in transactions of their own
                _count(Pruned(0, drain(transaction), 0))
            if not pruned.traces and not pruned.scores:
                break
            if pruned.estimate and before > used:
                self._scale = min(max((before - used) / pruned.estimate, 0.25), 4.0)
        return used


def prune_round(db: sqlite3.Connection, budget: int, now_ns: int | None = None) -> Pruned:
    """Delete the oldest whole traces (by their latest end) of about ``budget`` estimated bytes (at
    least one), with their scores, inside the caller's transaction, and the scores whose trace is not
    stored that are older than those traces (a score ages by its creation time, as in ``purge``, and
    one added in the last ``OPEN_GRACE_NS`` may be waiting for its trace); once no trace is left, the
    oldest scores."""
    now_ns = now_ns or time.time_ns()
    chosen = _choose(_settled(db), budget, now_ns)
    if not chosen:
        return Pruned(0, 0, _prune_orphan_scores(db))
    scores, rows, left = drop(db, json.dumps([c.trace_id for c in chosen]))
    scores += _prune_orphan_scores(db, before_ns=min(max(c.last_end for c in chosen), now_ns - OPEN_GRACE_NS))
    return Pruned(len(chosen), rows, scores, 0 if left else sum(c.size for c in chosen), left)


def _count(pruned: Pruned) -> None:
    for name, n in (("traces", pruned.traces), ("observations", pruned.rows), ("scores", pruned.scores)):
        if n:
            count(f"local_store_pruned_{name}", n)


def _settled(db: sqlite3.Connection) -> list[Candidate]:
    """The traces provably oldest by their latest end: among those with an observation in the oldest
    window (by end), the ones whose latest end is no later than the window's last (every other trace
    ends after it). The window doubles until one is settled or it holds the whole store."""
    window = WINDOW_ROWS
    while True:
        ends = db.execute("SELECT trace_id, end_ns FROM observations ORDER BY end_ns LIMIT ?", (window,)).fetchall()
        if not ends:
            return []
        found = _candidates(db, {trace_id for trace_id, _ in ends})
        if len(ends) < window:  # the whole store: every trace is settled
            return found
        edge = ends[-1][1]
        settled = [c for c in found if c.last_end <= edge]
        if settled:
            return settled
        window *= 2


def _candidates(db: sqlite3.Connection, trace_ids: set[str]) -> list[Candidate]:
    rows = db.execute(
        "SELECT trace_id, MAX(end_ns), COUNT(*), SUM(length(CAST(record AS BLOB))), MAX(parent_id IS NULL) "
        "FROM observations WHERE trace_id IN (SELECT value FROM json_each(?)) GROUP BY trace_id",
        (json.dumps(sorted(trace_ids)),),
    ).fetchall()
    return [Candidate(t, end, n, int(size or 0) + n * ROW_OVERHEAD, bool(root)) for t, end, n, size, root in rows]


def _choose(settled: list[Candidate], budget: int, now_ns: int) -> list[Candidate]:
    """The oldest settled traces (by latest end) worth ``budget`` bytes; traces that may still be
    written (no root stored, active within ``OPEN_GRACE_NS``) only when no other is settled."""
    finished = [c for c in settled if c.rooted or c.last_end < now_ns - OPEN_GRACE_NS]
    chosen: list[Candidate] = []
    total = 0
    for candidate in sorted(finished or settled, key=lambda c: (c.last_end, c.trace_id)):
        chosen.append(candidate)
        total += candidate.size
        if total >= budget:
            break
    return chosen


def _prune_orphan_scores(db: sqlite3.Connection, before_ns: int | None = None) -> int:
    """The oldest scores whose trace is not stored, ``ORPHAN_SCORES`` at most: those created before
    ``before_ns``, or (with no trace left, when every score is such) any."""
    if before_ns is None:
        sql, args = "SELECT id FROM scores ORDER BY created_ns LIMIT ?", (ORPHAN_SCORES,)
    else:
        sql = ("SELECT id FROM scores AS s WHERE created_ns < ? AND NOT EXISTS (SELECT 1 FROM observations AS o "
               "WHERE o.trace_id = s.trace_id) ORDER BY created_ns LIMIT ?")
        args = (before_ns, ORPHAN_SCORES)
    return int(db.execute(f"DELETE FROM scores WHERE id IN ({sql})", args).rowcount)
