"""Local store review 3: a full disk, a store on a read-only medium, retention on a large store.

Real SQLite files; the full disk is a real write limit (``RLIMIT_FSIZE``) in a child process, the
read-only medium a read-only bind mount in a mount namespace of the reader's own (as root) or a
directory without write permission."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from autotrace.export import store_retention
from autotrace.export.local_store import LocalStore

DAY_NS = 86400 * 10**9


def record(trace: int, span: int, end_ns: int, size: int = 100, parent: int | None = None) -> dict[str, Any]:
    """A stored observation's record as ``span_record`` makes it."""
    return {"trace_id": f"{trace:032x}", "id": f"{span:016x}", "parent_id": None if parent is None
            else f"{parent:016x}", "name": f"s{span}", "type": "span", "tenant": None, "start_ns": end_ns - 1000,
            "end_ns": end_ns, "level": "DEFAULT", "model": None, "usage": None, "cost": None, "input": "z" * size}


_FULL_DISK = textwrap.dedent("""
    import resource, signal, sqlite3, sys, time
    from autotrace.export.local_store import LocalStore
    from tests.test_local_store_review3 import record

    store = LocalStore(sys.argv[1])
    store.write([record(1, 1, time.time_ns())])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024, 512 * 1024))
    try:
        store.write([record(2, span, time.time_ns(), 10_000) for span in range(1, 201)])
    except sqlite3.Error as exc:
        print("error:", exc)
    store.write([record(3, 1, time.time_ns())])  # fits: the store goes on
    print(sorted(int(o["trace_id"], 16) for o in store.observations()))
""")


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_a_full_disk_raises_its_own_error_not_a_failed_rollback(tmp_path: Path) -> None:
    """SQLite rolls a transaction back itself when the disk is full; the ROLLBACK that followed failed
    ("cannot rollback - no transaction is active") and that error, not the full disk, was logged."""
    done = subprocess.run([sys.executable, "-c", _FULL_DISK, str(tmp_path / "t.db")], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["error: disk I/O error", "[1, 3]"]


_READ = textwrap.dedent("""
    import json, sys
    from autotrace.export.local_store import LocalStore

    reader = LocalStore(sys.argv[1], read_only=True)
    try:
        traces = [(t["trace_id"], t["observations"]) for t in reader.traces()]
        print(json.dumps([traces, [o["id"] for o in reader.trace(traces[0][0])]]))
    finally:
        reader.close()
""")
#: Run as root: the store's directory bound read-only in a mount namespace of the reader's own, which
#: ends with it (the host's mounts are never touched); exit 97 when no such namespace can be made.
_IN_READ_ONLY_VIEW = ('mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" || exit 97; '
                      'exec "$3" -c "$4" "$2/t.db"')


def _read_from_read_only(directory: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Read the store in ``directory`` in a child process that cannot write there: a read-only bind
    mount (as root, who can write through permissions), else the directory's write permission taken
    away; skipped where neither can be made."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            return subprocess.run([sys.executable, "-c", _READ, str(directory / "t.db")], capture_output=True,
                                  text=True, timeout=60, env=env)
        finally:
            directory.chmod(0o755)
    view = tmp_path / "view"
    view.mkdir()
    try:
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", _IN_READ_ONLY_VIEW,
                               "sh", str(directory), str(view), sys.executable, _READ],
                              capture_output=True, text=True, timeout=60, env=env)
    except FileNotFoundError:
        pytest.skip("no unshare here")
    if done.returncode == 97 or "unshare failed" in done.stderr:
        pytest.skip(f"cannot make a read-only view here: {done.stderr.strip()[:200]}")
    return done


def test_a_store_on_a_read_only_medium_is_read(tmp_path: Path) -> None:
    """A store closed cleanly (its WAL folded back) on a read-only medium, or in a directory the
    reader cannot write: SQLite cannot create the WAL's shared-memory file, and every read command
    failed with "unable to open database file"."""
    directory = tmp_path / "store"
    directory.mkdir()
    store = LocalStore(directory / "t.db")
    store.write([record(7, 1, time.time_ns()), record(7, 2, time.time_ns(), parent=1)])
    store.close()
    assert sorted(os.listdir(directory)) == ["t.db"]
    done = _read_from_read_only(directory, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[[f"{7:032x}", 2]], [f"{1:016x}", f"{2:016x}"]]


def _expired_store(path: Path, traces: int, size: int) -> LocalStore:
    """A store holding ``traces`` traces of two observations that ended 40 days ago (retention: 28
    days), its WAL folded back into the file, and one fresh trace (so its first write is done)."""
    store = LocalStore(path, max_mb=None)
    store.write([record(1, 1, time.time_ns())])
    old = time.time_ns() - 40 * DAY_NS
    with store._transaction() as db:
        db.executemany("INSERT INTO observations VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", [
            (f"{trace:032x}", f"{span:016x}", None if span == 1 else f"{1:016x}", "s", "span", None, None,
             old + trace, old + trace + span, None, None, None, None, "z" * size)
            for trace in range(2, traces + 2) for span in (1, 2)])
    store._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store._last_purge = float("-inf")  # the next write purges
    return store


def test_retention_over_a_large_store_keeps_the_wal_small(tmp_path: Path) -> None:
    """The purge deleted every expired trace in one transaction: the WAL grew by the size of what
    expired (40 MiB here; 420 MiB for a 420 MiB store, taking 4 s of the write lock from every other
    process writing the store). In rounds, SQLite's checkpoints reuse the WAL."""
    path = tmp_path / "t.db"
    store = _expired_store(path, 4000, 5000)
    assert store.write([record(1, 2, time.time_ns(), parent=1)]) == 1  # the first write since: it purges
    assert [(o["trace_id"], o["id"]) for o in store.observations()] == [(f"{1:032x}", f"{2:016x}"),
                                                                          (f"{1:032x}", f"{1:016x}")]
    assert os.path.getsize(f"{path}-wal") < 12 * 2**20


_PURGE_ON_A_FULL_DISK = textwrap.dedent("""
    import resource, signal, sys, time
    from pathlib import Path
    import autotrace
    from tests.test_local_store_review3 import _expired_store, record

    store = _expired_store(Path(sys.argv[1]), 1000, 4000)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # room for a write, not for the purge
    print(store.write([record(1, 2, time.time_ns(), parent=1)]))
    print({k: v for k, v in autotrace.stats().items() if "local_store" in k})
    print(len(store.trace(f"{1:032x}")))
""")


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_a_purge_that_fails_is_counted_and_the_written_batch_stands(tmp_path: Path) -> None:
    """The retention purge runs after a batch is written; when it failed (here: a disk with room for
    the batch, not for the purge) the batch failed with it, retried and finally counted as dropped,
    though it was stored."""
    done = subprocess.run([sys.executable, "-c", _PURGE_ON_A_FULL_DISK, str(tmp_path / "t.db")],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "1", "{'internal_errors.local_store.purge': 1}", "2"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_parent_closing_the_store_leaves_a_forked_childs_wal_alone(tmp_path: Path) -> None:
    """A store written before ``fork`` (a gunicorn master with preload, a program forking workers): the
    child opened its own connection, but its SQLite took the parent's locks, inherited in memory, for
    its own and held none on the file. The parent, closing first (exiting), took itself for the last
    user and deleted the WAL and its index under the child: the child's next reader got "disk I/O error"."""
    path = tmp_path / "t.db"
    store = LocalStore(path)
    store.write([record(1, 1, time.time_ns())])
    child_ready, parent_closed = os.pipe(), os.pipe()
    report_read, report_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        report = "ok"
        try:
            store.write([record(2, 1, time.time_ns())])
            os.write(child_ready[1], b"x")
            os.read(parent_closed[0], 1)
            store.write([record(3, 1, time.time_ns())])
            with contextlib.closing(sqlite3.connect(path)) as other:
                report = f"{Path(f'{path}-wal').exists()} {other.execute('SELECT COUNT(*) FROM observations').fetchone()}"
        except BaseException as exc:
            report = f"{type(exc).__name__}: {exc}"
        finally:
            os.write(report_write, report.encode())
            os._exit(0)
    os.read(child_ready[0], 1)
    store.close()
    os.write(parent_closed[1], b"x")
    os.waitpid(pid, 0)
    assert os.read(report_read, 1000).decode() == "True (3,)"
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT trace_id FROM observations ORDER BY trace_id").fetchall() == [
            (f"{n:032x}",) for n in (1, 2, 3)]


def test_retention_in_rounds_deletes_whole_expired_traces_and_their_scores(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Rounds of three observations over expired traces interleaved with one that straddles the cutoff
    (its old observations read in several rounds): only whole expired traces go, with their scores."""
    monkeypatch.setattr(store_retention, "ROUND_ROWS", 3)
    now = time.time_ns()
    old = now - 40 * DAY_NS
    store = LocalStore(tmp_path / "t.db", max_mb=None)
    store._last_purge = time.monotonic()  # these writes do not purge
    store.write([record(1, span, old + span) for span in range(1, 8)] + [record(1, 8, now)]  # straddles
                + [record(trace, span, old + trace * 10 + span) for trace in (2, 3, 4) for span in (1, 2)])
    for trace in (1, 2, 5):  # trace 5 is not stored: its score expires by its own age (now: not yet)
        store.add_score({"id": f"q{trace}", "trace_id": f"{trace:032x}", "name": "q", "value": 1.0})
    assert store.purge() == 6 + 1
    assert sorted({o["trace_id"] for o in store.observations()}) == [f"{1:032x}"]
    assert len(store.trace(f"{1:032x}")) == 8
    assert [s["id"] for s in store.scores()] == ["q1", "q5"]
