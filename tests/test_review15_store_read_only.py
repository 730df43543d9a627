"""Review 15: a store file this process may not write, in a directory it may. SQLite opened it
read-only without a word, so ``install()`` kept it and every batch failed, was retried with backoff
and only then dropped, and a WAL was left beside it. Real SQLite files; the process without write
permission a forked child running as ``nobody`` (the tests run as root, who writes through
permissions)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import autotrace
from autotrace.export.local_store import LocalStore
from tests.test_local_store_review3 import record
from tests.test_local_store_review4 import _directory_others_may_read, _in_child_that_cannot_write

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
_COUNTERS = ("local_store_unavailable", "spans_dropped.no_destination", "spans_dropped.export_failed",
             "export_failures.local", "spans_exported.local", "internal_errors.export.local")


def _store_of_root(directory: Path) -> Path:
    """A store with one trace, closed cleanly, that only root may write, in a directory anyone may."""
    path = directory / "t.db"
    store = LocalStore(path)
    store.write([record(1, 1, time.time_ns())])
    store.close()
    path.chmod(0o644)
    directory.chmod(0o777)
    return path


def _traced(flush_within: float = 30.0) -> object:
    """Trace one span, flush; the counters of this test and what ``flush`` said."""
    with autotrace.start_span("work"):
        pass
    flushed = autotrace.flush(flush_within)
    stats = autotrace.stats()
    return [flushed, {name: stats[name] for name in _COUNTERS if name in stats}]


def test_a_store_file_the_process_may_not_write_is_found_at_install() -> None:
    """As for a directory it may not write: no store, the spans dropped (counted), nothing created."""
    autotrace.install(local_store="off", integrations=())  # the child cannot import as nobody
    with _directory_others_may_read() as top:
        directory = top / "service"
        directory.mkdir()
        path = _store_of_root(directory)

        def install_and_trace() -> object:
            autotrace.install(local_store="on", local_store_path=path, integrations=())
            return [autotrace.local_store() is None, _traced()]

        assert json.loads(_in_child_that_cannot_write(install_and_trace)) == [
            True, [True, {"local_store_unavailable": 1, "spans_dropped.no_destination": 1}]]
        assert sorted(os.listdir(directory)) == ["t.db"]  # no WAL of nobody's left beside it
        assert [t["observations"] for t in LocalStore(path, read_only=True).traces()] == [1]


def test_a_worker_that_dropped_privileges_drops_its_batches_at_once_counted() -> None:
    """A server forks workers that switch to another user: the store, opened by the parent, is
    reopened in each worker, which cannot write it. Each batch is dropped (counted, logged once),
    not retried with backoff for a store no retry can write."""
    with _directory_others_may_read() as top:
        directory = top / "service"
        directory.mkdir()
        path = _store_of_root(directory)
        autotrace.install(local_store="on", local_store_path=path, integrations=())
        assert autotrace.local_store() is not None
        assert json.loads(_in_child_that_cannot_write(_traced)) == [
            True, {"spans_dropped.export_failed": 1, "export_failures.local": 1}]
        assert sorted(os.listdir(directory)) == ["t.db"]
