"""Relative path variables under ``autotrace run`` (review 18): ``AUTOTRACE_HOME=.traces`` or
``AUTOTRACE_LOCAL_STORE_PATH=traces.db`` was read by each process of the program in its own
directory, so a worker spawned after the program changed directory (``multiprocessing`` spawn, a
reloader's re-run) wrote to another store, which ``autotrace traces`` in the directory the run
started from never showed (a relative credentials or TLS file was not found there at all). They are
read where ``autotrace run`` was started, as ``--db`` is."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

AUTOTRACE = str(Path(sys.executable).with_name("autotrace"))

_APP = textwrap.dedent("""
    import multiprocessing, os
    import autotrace

    def work():
        with autotrace.start_span("worker"):
            pass

    if __name__ == "__main__":
        with autotrace.start_span("main"):
            pass
        os.chdir("elsewhere")
        worker = multiprocessing.get_context("spawn").Process(target=work)
        worker.start()
        worker.join()
""")


@pytest.mark.parametrize("variable, value, store", [("AUTOTRACE_HOME", "home", "home/traces.db"),
                                                     ("AUTOTRACE_LOCAL_STORE_PATH", "traces.db", "traces.db")])
def test_a_worker_spawned_after_a_change_of_directory_writes_to_the_same_store(
        tmp_path: Path, variable: str, value: str, store: str) -> None:
    (tmp_path / "app.py").write_text(_APP)
    (tmp_path / "elsewhere").mkdir()
    env = isolated_env(tmp_path, **{variable: value})
    done = subprocess.run([AUTOTRACE, "run", "--", sys.executable, "app.py"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    assert sorted(r["name"] for r in LocalStore(tmp_path / store).observations()) == ["main", "worker"]
    assert not (tmp_path / "elsewhere" / store).exists()
