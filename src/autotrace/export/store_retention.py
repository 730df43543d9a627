"""The local store's retention: traces whose every observation ended before the cutoff go, whole,
with their scores, in short rounds (one transaction each), oldest ends first.

Whole traces: one straddling the cutoff is kept entire, never shown with part of its tree (and of its
tokens and cost) gone. A score goes with its trace (kept while the trace is, whenever it was added);
a score whose trace is not stored (never, or added after the trace went) expires by its creation time.

A round holds the store's write lock only for its own rows, so other processes writing the store
wait for one round, not for a whole purge, and the WAL grows by a round (SQLite's checkpoints reuse
it), not by the size of what expired.
"""

from __future__ import annotations

import json

from .store_pruning import Transaction

#: Observations (oldest ends first) one round reads; it deletes those of their traces that expired.
ROUND_ROWS = 512
#: The traces of a round (a JSON list) that expired: none of their observations ends at the cutoff or later.
#: Found once per trace (each trace's rows read once): a condition on each row deleted that looked for a row
#: kept read the whole trace again for every row of it (a trace of 8,000 observations took minutes).
_EXPIRED = ("SELECT json_group_array(trace_id) FROM (SELECT trace_id FROM observations WHERE trace_id IN "
            "(SELECT value FROM json_each(?)) GROUP BY trace_id HAVING MAX(end_ns) < ?)")
_OF_EXPIRED = "trace_id IN (SELECT value FROM json_each(?))"


def purge(transaction: Transaction, cutoff: int) -> int:
    """Delete the traces that expired before ``cutoff`` with their scores, then the scores whose trace
    is not stored created before it; returns the rows deleted. A failure leaves the earlier rounds done."""
    deleted = 0
    after = (-(2**63), -(2**63))  # (end_ns, rowid) of the last observation read
    while True:
        with transaction() as db:
            rows = db.execute(
                "SELECT end_ns, rowid, trace_id FROM observations WHERE end_ns < ? AND (end_ns, rowid) > (?, ?) "
                "ORDER BY end_ns, rowid LIMIT ?", (cutoff, *after, ROUND_ROWS),
            ).fetchall()
            expired = db.execute(_EXPIRED, (json.dumps(sorted({trace_id for _, _, trace_id in rows})), cutoff)
                                 ).fetchone()[0]
            deleted += db.execute(f"DELETE FROM scores WHERE {_OF_EXPIRED}", (expired,)).rowcount
            deleted += db.execute(f"DELETE FROM observations WHERE {_OF_EXPIRED}", (expired,)).rowcount
        if len(rows) < ROUND_ROWS:
            break
        after = rows[-1][:2]
    with transaction() as db:
        deleted += db.execute(
            "DELETE FROM scores WHERE created_ns < ? AND NOT EXISTS (SELECT 1 FROM observations AS o "
            "WHERE o.trace_id = scores.trace_id)", (cutoff,),
        ).rowcount
    return deleted
