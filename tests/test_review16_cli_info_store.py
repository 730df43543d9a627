"""Review 16: ``autotrace info`` said "no problems found" (exit 0) for a local store ``install()`` cannot
write, so every span bound for it was dropped: a store of a newer layout, a file that is no SQLite
database, a directory, a path under a file. Now each is a problem (exit 1), found without creating or
writing anything. Real ``autotrace info`` and real traced programs, as subprocesses."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

DROPPED = "; spans that would go there are dropped"


def _store(path: Path, version: int | None = None) -> Path:
    """A real store at ``path`` (closed: its WAL folded into the file), its layout version set if given."""
    LocalStore(path).close()
    if version is not None:
        db = sqlite3.connect(path)
        db.execute(f"PRAGMA user_version = {version}")
        db.close()
    return path


def _newer(tmp_path: Path) -> Path:
    return _store(tmp_path / "newer.db", 2)


def _junk(tmp_path: Path) -> Path:
    path = tmp_path / "junk.db"
    path.write_text("these are notes, not a database\n" * 10)
    return path


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "afile").write_text("x")
    return tmp_path / "afile" / "traces.db"


def _directory(tmp_path: Path) -> Path:
    (tmp_path / "dir.db").mkdir()
    return tmp_path / "dir.db"


def _info(tmp_path: Path, store: Path) -> tuple[int, list[str], str]:
    env = isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(store))
    done = subprocess.run([sys.executable, "-m", "autotrace", "info", "--no-import", "--json"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, json.loads(done.stdout)["problems"], done.stderr


@pytest.mark.parametrize(("make", "problem"), [
    (_newer, "local store {} was written by a newer autotrace (store version 2, this one knows 1); not writing "
             "it: upgrade autotrace, or use another store path"),
    (_junk, "local store {} is not a SQLite database"),
    (_under_a_file, "local store {} cannot be created ({}/afile is not a directory this process may write)"),
    (_directory, "local store {} is not a file"),
])
def test_a_store_install_cannot_write_is_a_problem(tmp_path: Path, make: Callable[[Path], Path], problem: str) -> None:
    store = make(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    assert _info(tmp_path, store) == (1, [problem.format(store, tmp_path) + DROPPED], "")
    assert sorted(p for p in tmp_path.rglob("*") if "home" not in p.parts) == before  # nothing created or written


def test_a_traced_program_drops_what_such_a_store_would_get(tmp_path: Path) -> None:
    """What ``info`` now warns of: ``install()`` goes on without the store."""
    store = _newer(tmp_path)
    program = "import autotrace; autotrace.install(); print(autotrace.stats().get('local_store_unavailable'))"
    done = subprocess.run([sys.executable, "-c", program], env=isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(store)),
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (0, "1\n"), done.stderr
    assert "newer autotrace (store version 2" in done.stderr


@pytest.mark.parametrize("make", [
    lambda tmp_path: _store(tmp_path / "traces.db"),
    lambda tmp_path: _store(tmp_path / "old.db", 0),  # a store from before the layout version was kept
    lambda tmp_path: tmp_path / "new" / "dir" / "traces.db",  # created by install(), not by info
    lambda tmp_path: (tmp_path / "empty.db", (tmp_path / "empty.db").touch())[0],
])
def test_a_usable_store_is_no_problem_and_info_creates_nothing(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    store = make(tmp_path)
    existed = store.exists()
    assert _info(tmp_path, store) == (0, [], "")
    assert store.exists() == existed
