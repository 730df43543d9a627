"""Local store review 4: a store of a newer layout, and a store read from a directory the reader may
not write. Real SQLite files; the reader without write permission a forked child running as
``nobody`` (when the tests run as root, who writes through permissions)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import autotrace
from autotrace.export.local_store import LocalStore, StoreError
from tests.test_local_store_review3 import record

NOBODY = 65534


def _newer_store(path: Path) -> list[str]:
    """A store as a later autotrace might lay it out (another column, another journal mode, its
    version recorded); returns its dump."""
    store = LocalStore(path)
    store.write([record(1, 1, time.time_ns())])
    store.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("ALTER TABLE observations ADD COLUMN compressed BLOB")
        db.execute("PRAGMA user_version = 2")
        return list(db.iterdump())


def test_a_store_of_a_newer_layout_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    """No version was recorded: a store a newer autotrace laid out was opened as any other (switched
    to WAL on open), and each batch failed to insert, or went in beside rows of another form."""
    path = tmp_path / "newer.db"
    dump = _newer_store(path)
    with pytest.raises(StoreError, match=r"written by a newer autotrace \(store version 2, this one knows 1\); "
                                         r"not writing it"):
        LocalStore(path)
    with pytest.raises(StoreError, match=r"newer autotrace .* not reading it"):
        LocalStore(path, read_only=True)
    autotrace.install(local_store="on", local_store_path=path)
    with autotrace.start_span("work"):
        pass
    assert autotrace.flush(5.0)
    assert autotrace.local_store() is None and autotrace.stats()["local_store_unavailable"] == 1
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert list(db.iterdump()) == dump
    assert sorted(os.listdir(tmp_path)) == ["newer.db"]  # no WAL left beside it


def test_a_store_is_created_with_its_version_and_an_older_one_is_still_written(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "new.db")
    assert store._rows("PRAGMA user_version") == [(1,)]
    store.close()
    older = tmp_path / "older.db"
    store = LocalStore(older)
    store.close()
    with contextlib.closing(sqlite3.connect(older, isolation_level=None)) as db:
        db.execute("PRAGMA user_version = 0")  # as stores were made before the version was kept
    store = LocalStore(older)
    store.write([record(3, 1, time.time_ns())])
    assert [t["trace_id"] for t in LocalStore(older, read_only=True).traces()] == [f"{3:032x}"]


@contextlib.contextmanager
def _directory_others_may_read() -> Iterator[Path]:
    """A fresh directory every user can reach (a pytest ``tmp_path`` of root is not)."""
    top = Path(tempfile.mkdtemp(prefix="autotrace-review4-"))
    top.chmod(0o755)
    try:
        yield top
    finally:
        for directory in (top, *top.iterdir()):
            if directory.is_dir():
                directory.chmod(0o755)
        shutil.rmtree(top)


def _in_child_that_cannot_write(read: Callable[[], object]) -> str:
    """``read()``'s result (JSON) or error, from a forked child that runs as ``nobody`` when the tests
    run as root (imports done: ``nobody`` may not read this interpreter's files)."""
    report_read, report_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            if os.geteuid() == 0:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            report = json.dumps(read())
        except BaseException as exc:
            report = f"{type(exc).__name__}: {exc}"
        os.write(report_write, report.encode())
        os._exit(0)
    os.close(report_write)
    os.waitpid(pid, 0)
    with os.fdopen(report_read) as pipe:
        return pipe.read()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_store_in_a_directory_the_reader_may_not_write_is_read() -> None:
    """A service's store, closed cleanly, read by another user (its directory theirs, the file readable):
    SQLite cannot create the WAL's index there and said "attempt to write a readonly database"
    (not "unable to open", as on a read-only medium), so every read command failed."""
    with _directory_others_may_read() as top:
        directory = top / "service"
        directory.mkdir()
        path = directory / "t.db"
        store = LocalStore(path)
        store.write([record(7, 1, time.time_ns()), record(7, 2, time.time_ns(), parent=1)])
        store.close()
        path.chmod(0o644)
        directory.chmod(0o555)

        def read() -> object:
            reader = LocalStore(path, read_only=True)
            traces = [(t["trace_id"], t["observations"]) for t in reader.traces()]
            return [traces, [o["id"] for o in reader.trace(traces[0][0])]]

        assert _in_child_that_cannot_write(read) == json.dumps([[[f"{7:032x}", 2]], [f"{1:016x}", f"{2:016x}"]])
        assert sorted(os.listdir(directory)) == ["t.db"]


def test_an_empty_file_is_a_store_with_nothing_yet_not_another_programs(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    path.touch()  # a writer that created the file and has not laid out its tables yet, or ``touch``
    with pytest.raises(StoreError, match=r"^nothing in the local store at .*t\.db yet \(run something traced"):
        LocalStore(path, read_only=True)


def test_a_reader_never_sees_a_store_half_laid_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each table and index was created in a transaction of its own: a reader (``autotrace traces``
    as the application starts) between two of them found a store without its scores table."""
    path = tmp_path / "t.db"
    seen: list[str] = []
    connect = sqlite3.connect

    def read_while_laying_out(statement: str) -> None:
        if statement.lstrip().startswith("CREATE TABLE IF NOT EXISTS scores"):
            try:
                reader = LocalStore(path, read_only=True)
                seen.append(f"read {reader.traces()} {reader.scores()}")
            except StoreError as exc:
                seen.append(str(exc))

    def traced_connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        db = connect(*args, **kwargs)  # type: ignore[arg-type]
        if not kwargs.get("uri"):  # the writer's
            db.set_trace_callback(read_while_laying_out)
        return db

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    LocalStore(path).close()
    assert seen == [f"nothing in the local store at {path} yet (run something traced first, or pass --db)"]
