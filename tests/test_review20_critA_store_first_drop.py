"""A reader that found no ``dropping_traces`` table reads unfiltered. Before, the first drop ever made
in a store created that table in the transaction of its first chunk: a reader that had looked just
before (``autotrace show`` between its look and its read) showed the large trace half deleted. The
table is now made before the first drop. Real SQLite files: the drop's first chunk is committed by the
writer between two statements of the reader (SQLite's statement trace hook on the reader's connection)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from autotrace.export import store_retention
from autotrace.export.local_store import LocalStore
from tests.test_local_store_review3 import DAY_NS
from tests.test_review20_store_retention_chunks import BIG_ID, _big_store


def test_a_trace_whose_first_drop_starts_during_a_read_is_never_shown_half_deleted(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = _big_store(path, end_ns=time.time_ns() - 2 * DAY_NS)  # its first write purged: nothing expired then
    reader = LocalStore(path, read_only=True)
    dropped: list[int] = []

    def between(statement: str) -> None:  # the reader has looked for the table; it reads the trace next
        if statement.startswith("SELECT DISTINCT trace_id") and not dropped:
            with store._transaction() as db:  # another process's purge, one chunk in
                dropped.append(store_retention.drop(db, json.dumps([BIG_ID]))[1])

    reader._conn().set_trace_callback(between)
    shown = reader.trace(BIG_ID)
    reader._conn().set_trace_callback(None)
    assert dropped == [store_retention.CHUNK_ROWS]
    assert shown == []
