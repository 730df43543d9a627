"""Review 18: a store whose pages are damaged (a disk fault, another program writing into it) after
``install()`` opened it. Every batch failed with SQLITE_CORRUPT, was retried with backoff and only
then dropped: seconds of retries per batch that no retry could get past, while later spans waited.
Real SQLite files, damaged on disk; the real export pipeline."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

import autotrace
from autotrace.export.local_store import LocalStore
from tests.test_local_store_review3 import record

PAGE = 4096


def _damaged_store(path: Path) -> None:
    """A store of 50 traces, closed cleanly, whose pages after the first (the schema's) are garbage."""
    store = LocalStore(path)
    store.write([record(trace, 1, time.time_ns(), 2000) for trace in range(1, 51)])
    store.close()
    size = path.stat().st_size
    assert size > 4 * PAGE
    with open(path, "r+b") as file:
        file.seek(PAGE)
        file.write(b"\xde\xad" * ((size - PAGE) // 2))


def test_a_damaged_store_drops_each_batch_at_once_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="autotrace")
    path = tmp_path / "t.db"
    _damaged_store(path)
    autotrace.install(local_store="on", local_store_path=path, integrations=())
    assert autotrace.local_store() is not None  # the damage is past what opening reads
    with autotrace.start_span("work"):
        pass
    assert autotrace.flush(30.0)
    stats = autotrace.stats()
    assert {name: stats[name] for name in stats if "export" in name} == {
        "export_failures": 1, "export_failures.local": 1, "spans_dropped.export_failed": 1}
    drops = [r.getMessage() for r in caplog.records if "batch dropped" in r.getMessage()]
    assert drops == [f"autotrace: export to local failed (damaged store: database disk image is malformed; move "
                     f"{path} away to start a new store); batch dropped (counted)"]
