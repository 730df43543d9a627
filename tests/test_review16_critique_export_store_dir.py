"""``autotrace info`` said "no problems found" for an existing store in a directory this process may not
write: ``install()`` then fails to open it (SQLite cannot create the WAL beside it) and drops every span
bound for it. The directory is made unwritable with the immutable attribute, which binds root too (the
test is skipped where ``chattr`` cannot set it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A directory holding a real, closed store, then made immutable (no file can be created in it)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    LocalStore(folder / "traces.db").close()
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True, check=False).returncode:
        pytest.skip("cannot make a directory immutable here")
    try:
        yield folder
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def _run(tmp_path: Path, store: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], env=isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(store)),
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("linked", [False, True])
def test_a_store_in_a_directory_sqlite_cannot_write_is_a_problem(tmp_path: Path, locked: Path, linked: bool) -> None:
    store = locked / "traces.db"
    if linked:  # a link in a writable directory: SQLite makes the WAL beside the file it points at
        (tmp_path / "link.db").symlink_to(store)
        store = tmp_path / "link.db"
    done = _run(tmp_path, store, "-m", "autotrace", "info", "--no-import", "--json")
    assert (done.returncode, json.loads(done.stdout)["problems"]) == (1, [
        f"local store {store} cannot be written (SQLite creates its WAL in {locked}, a directory this process may "
        "not write); spans that would go there are dropped"])
    program = ("import autotrace; autotrace.install(integrations=()); autotrace.start_span('x').end(); "
               "autotrace.flush(5); print(autotrace.stats().get('local_store_unavailable'))")
    traced = _run(tmp_path, store, "-c", program)  # what info warns of
    assert (traced.returncode, traced.stdout) == (0, "1\n"), traced.stderr
    assert sorted(p.name for p in locked.iterdir()) == ["traces.db"]
