"""``autotrace info`` read a store's layout version from the file's header alone: while a writer of a
newer layout has it open, the version is still in the WAL (the header says 0), so info found "no
problems" although ``install()`` refuses that store and drops every span bound for it. Real processes:
a writer holding the store open, ``autotrace info``, a traced program."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import isolated_env

#: A writer of a newer layout: its version only in the WAL (no checkpoint) until it is told to end.
_WRITER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA wal_autocheckpoint=0")
db.execute("CREATE TABLE observations(id TEXT)")
db.execute("PRAGMA user_version = 2")
print("open", flush=True)
sys.stdin.read()
"""


def _run(tmp_path: Path, store: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], env=isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(store)),
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_newer_layout_still_in_the_wal_is_a_problem(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(store)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "open\n"
        assert store.read_bytes()[60:64] == bytes(4)  # the header still says 0
        done = _run(tmp_path, store, "-m", "autotrace", "info", "--no-import", "--json")
        assert (done.returncode, json.loads(done.stdout)["problems"]) == (1, [
            f"local store {store} was written by a newer autotrace (store version 2, this one knows 1); not "
            "writing it: upgrade autotrace, or use another store path; spans that would go there are dropped"])
        program = "import autotrace; autotrace.install(integrations=()); print(autotrace.stats().get('local_store_unavailable'))"
        traced = _run(tmp_path, store, "-c", program)  # what info warns of
        assert (traced.returncode, traced.stdout) == (0, "1\n"), traced.stderr
        assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == [
            "traces.db", "traces.db-shm", "traces.db-wal"]
    finally:
        writer.communicate(timeout=60)  # stdin closed: the writer ends
