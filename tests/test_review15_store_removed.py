"""Review 15: the store's file removed while the application runs (``rm ~/.autotrace/traces.db`` to
start afresh). The writer kept its connection to the unlinked file: every later span was counted as
exported and went nowhere any reader could see, for the life of the process. Real SQLite files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import autotrace
from autotrace.export.local_store import LocalStore
from tests.test_local_store_review3 import record


def _trace(name: str) -> None:
    with autotrace.start_span(name):
        pass
    assert autotrace.flush(10)


def _names(path: Path) -> list[str]:
    return sorted(o["name"] for o in LocalStore(path, read_only=True).observations())


def test_spans_after_the_store_is_removed_go_to_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=())
    _trace("before")
    assert _names(path) == ["before"]
    for name in os.listdir(tmp_path):  # the store and its WAL, as ``rm traces.db*`` does
        os.unlink(tmp_path / name)
    _trace("after")
    assert _names(path) == ["after"]
    stats = autotrace.stats()
    assert (stats["local_store.reopened"], stats["spans_exported.local"]) == (1, 2)


def test_a_store_opened_by_a_relative_path_stays_put_after_a_chdir(tmp_path: Path) -> None:
    """Checking for a removed file must not take a ``chdir`` for one: the rows go to the store opened."""
    cwd = os.getcwd()
    (tmp_path / "elsewhere").mkdir()
    os.chdir(tmp_path)
    try:
        store = LocalStore("t.db")
        store.write([record(1, 1, time.time_ns())])
        os.chdir(tmp_path / "elsewhere")
        store.write([record(2, 1, time.time_ns())])
        store.add_score({"id": "q", "trace_id": f"{2:032x}", "name": "q", "value": 1.0})
    finally:
        os.chdir(cwd)
    assert os.listdir(tmp_path / "elsewhere") == [] and "local_store.reopened" not in autotrace.stats()
    reader = LocalStore(tmp_path / "t.db", read_only=True)
    assert (sorted(t["trace_id"][-1] for t in reader.traces()), [s["id"] for s in reader.scores()]) == (["1", "2"], ["q"])
