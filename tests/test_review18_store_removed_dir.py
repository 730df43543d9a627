"""Review 18: the store's directory removed while the application runs (``rm -rf ~/.autotrace`` to
start afresh). The writer noticed the file gone and reopened it, but SQLite cannot create a file in a
directory that is not there: every later batch failed, was retried with backoff and dropped, for the
life of the process. Real SQLite files, the real export pipeline."""

from __future__ import annotations

import shutil
from pathlib import Path

import autotrace
from autotrace.export.local_store import LocalStore


def _trace(name: str) -> None:
    with autotrace.start_span(name):
        pass
    assert autotrace.flush(30)


def test_spans_after_the_store_directory_is_removed_go_to_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".autotrace" / "traces.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=())
    _trace("before")
    shutil.rmtree(path.parent)
    _trace("after")
    assert [o["name"] for o in LocalStore(path, read_only=True).observations()] == ["after"]
    stats = autotrace.stats()
    assert {name: stats[name] for name in stats if "export" in name or "local_store" in name} == {
        "spans_exported": 2, "spans_exported.local": 2, "local_store.reopened": 1}
