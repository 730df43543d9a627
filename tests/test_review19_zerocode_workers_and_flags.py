"""Zero-code activation (review 19): joblib's default process pool (loky) starts its workers as
``python -m ...loky.backend.popen_loky_posix``, not through ``multiprocessing``: the application's own
workers, running its functions, were taken for another program and ran untraced, with no word. And a
mistyped ``AUTOTRACE_TRACE_SUBPROCESSES`` (``y``, ``enabled``) silently traced no subprocess."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

AUTOTRACE = str(Path(sys.executable).with_name("autotrace"))

_JOBLIB_APP = textwrap.dedent("""
    import autotrace
    from joblib import Parallel, delayed

    def work(x):
        with autotrace.start_span("work", input=str(x)):
            return x * 2

    if __name__ == "__main__":
        with autotrace.start_span("main"):
            print(Parallel(n_jobs=2)(delayed(work)(i) for i in range(3)))
""")


def test_joblibs_loky_workers_are_the_programs_own(tmp_path: Path) -> None:
    pytest.importorskip("joblib")
    (tmp_path / "app.py").write_text(_JOBLIB_APP)
    env = isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(tmp_path / "traces.db"))
    done = subprocess.run([AUTOTRACE, "run", "--", sys.executable, "app.py"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "[0, 2, 4]\n", "")
    records = LocalStore(tmp_path / "traces.db").observations()
    assert sorted((r["name"], r["input"]) for r in records) == [
        ("main", None), ("work", "0"), ("work", "1"), ("work", "2")]


_CHILD_APP = textwrap.dedent("""
    import subprocess, sys
    import autotrace
    with autotrace.start_span("parent"):
        pass
    subprocess.run([sys.executable, "-c", "import autotrace; autotrace.start_span('child').end()"], check=True)
""")


@pytest.mark.parametrize("value", ["y", "enabled", "2"])
def test_a_mistyped_trace_subprocesses_is_said_once_and_the_program_runs(tmp_path: Path, value: str) -> None:
    (tmp_path / "app.py").write_text(_CHILD_APP)
    env = isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(tmp_path / "traces.db"),
                       AUTOTRACE_TRACE_SUBPROCESSES=value)
    done = subprocess.run([AUTOTRACE, "run", "--", sys.executable, "app.py"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr == (f"autotrace: AUTOTRACE_TRACE_SUBPROCESSES={value} is not true or false: "
                           "the programs this one starts run untraced\n")
    assert [r["name"] for r in LocalStore(tmp_path / "traces.db").observations()] == ["parent"]


@pytest.mark.parametrize(("value", "names"), [("Yes", ["child", "parent"]), (" off ", ["parent"]), ("", ["parent"])])
def test_a_well_formed_trace_subprocesses_says_nothing(tmp_path: Path, value: str, names: list[str]) -> None:
    (tmp_path / "app.py").write_text(_CHILD_APP)
    env = isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(tmp_path / "traces.db"),
                       AUTOTRACE_TRACE_SUBPROCESSES=value)
    done = subprocess.run([AUTOTRACE, "run", "--", sys.executable, "app.py"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert sorted(r["name"] for r in LocalStore(tmp_path / "traces.db").observations()) == names
