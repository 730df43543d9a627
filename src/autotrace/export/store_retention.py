"""The local store's retention: traces whose every observation ended before the cutoff go, whole,
with their scores, in short rounds (one transaction each), oldest ends first.

Whole traces: one straddling the cutoff is kept entire, never shown with part of its tree (and of its
tokens and cost) gone. A score goes with its trace (kept while the trace is, whenever it was added);
a score whose trace is not stored (never, or added after the trace went) expires by its creation time.

A round holds the store's write lock only for its own rows, so other processes writing the store
wait for one round, not for a whole purge, and the WAL grows by a round (SQLite's checkpoints reuse
it), not by the size of what expired. A trace of more observations than a round deletes (a batch job's
100,000 calls) is noted in ``DROPPING`` in the transaction that starts deleting it, and its rest deleted
``CHUNK_ROWS`` a transaction (``drain``): reads leave out the traces noted there (``HIDDEN``), so none
is seen half deleted, and a drop a crash cut short is finished by the next purge.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

#: The store's ``_transaction``: its connection inside one write transaction, committed on leaving.
Transaction = Callable[[], AbstractContextManager[sqlite3.Connection]]

#: Observations (oldest ends first) one round reads; it deletes those of their traces that expired.
ROUND_ROWS = 512
#: Most observations one transaction deletes.
CHUNK_ROWS = 2048
#: The traces being deleted: hidden from reads until their last observation is gone.
DROPPING = "CREATE TABLE IF NOT EXISTS dropping_traces (trace_id TEXT PRIMARY KEY)"
#: The condition on ``trace_id`` that leaves out the traces being deleted (for stores that have ``DROPPING``).
HIDDEN = "trace_id NOT IN (SELECT trace_id FROM dropping_traces)"
#: The traces of a round (a JSON list) that expired: none of their observations ends at the cutoff or later.
#: Found once per trace (each trace's rows read once): a condition on each row deleted that looked for a row
#: kept read the whole trace again for every row of it (a trace of 8,000 observations took minutes).
_EXPIRED = ("SELECT json_group_array(trace_id) FROM (SELECT trace_id FROM observations WHERE trace_id IN "
            "(SELECT value FROM json_each(?)) GROUP BY trace_id HAVING MAX(end_ns) < ?)")
_OF = "trace_id IN (SELECT value FROM json_each(?))"


def purge(transaction: Transaction, cutoff: int) -> int:
    """Delete the traces that expired before ``cutoff`` with their scores, then the scores whose trace
    is not stored created before it; returns the rows deleted. A failure leaves the earlier rounds done."""
    deleted = drain(transaction)  # one a crash left
    after = (-(2**63), -(2**63))  # (end_ns, rowid) of the last observation read
    while True:
        with transaction() as db:
            rows = db.execute(
                "SELECT end_ns, rowid, trace_id FROM observations WHERE end_ns < ? AND (end_ns, rowid) > (?, ?) "
                "ORDER BY end_ns, rowid LIMIT ?", (cutoff, *after, ROUND_ROWS),
            ).fetchall()
            expired = db.execute(_EXPIRED, (json.dumps(sorted({trace_id for _, _, trace_id in rows})), cutoff)
                                 ).fetchone()[0]
            scores, observations, left = drop(db, expired)
        deleted += scores + observations + (drain(transaction) if left else 0)
        if len(rows) < ROUND_ROWS:
            break
        after = rows[-1][:2]
    with transaction() as db:
        deleted += db.execute(
            "DELETE FROM scores WHERE created_ns < ? AND NOT EXISTS (SELECT 1 FROM observations AS o "
            "WHERE o.trace_id = scores.trace_id)", (cutoff,),
        ).rowcount
    return deleted


def drop(db: sqlite3.Connection, trace_ids: str) -> tuple[int, int, bool]:
    """Inside the caller's transaction: delete the traces ``trace_ids`` (a JSON list) names, with their
    scores, ``CHUNK_ROWS`` observations at most; (scores and observations deleted, whether observations
    are left for ``drain``)."""
    scores = db.execute(f"DELETE FROM scores WHERE {_OF}", (trace_ids,)).rowcount
    gone = db.execute(f"DELETE FROM observations WHERE rowid IN (SELECT rowid FROM observations WHERE {_OF} "
                      "LIMIT ?)", (trace_ids, CHUNK_ROWS)).rowcount
    if gone < CHUNK_ROWS:
        return scores, gone, False
    db.execute(DROPPING)
    db.execute("INSERT OR IGNORE INTO dropping_traces SELECT value FROM json_each(?)", (trace_ids,))
    return scores, gone, True


def drain(transaction: Transaction) -> int:
    """Delete the observations of the traces noted in ``dropping_traces``, ``CHUNK_ROWS`` a transaction,
    and each note once its trace is gone; returns the rows deleted. Creates the table first (purge and
    prune drain before they drop): a reader that found none (``LocalStore._shown``) reads unfiltered, so
    it must exist before the first drop, not come with that drop's first chunk."""
    deleted = 0
    while True:
        with transaction() as db:
            db.execute(DROPPING)
            gone = db.execute(
                "DELETE FROM observations WHERE rowid IN (SELECT o.rowid FROM dropping_traces AS d JOIN "
                "observations AS o ON o.trace_id = d.trace_id LIMIT ?)", (CHUNK_ROWS,)).rowcount
            if gone < CHUNK_ROWS:
                db.execute("DELETE FROM dropping_traces WHERE NOT EXISTS (SELECT 1 FROM observations AS o "
                           "WHERE o.trace_id = dropping_traces.trace_id)")
        deleted += gone
        if gone < CHUNK_ROWS:
            return deleted
