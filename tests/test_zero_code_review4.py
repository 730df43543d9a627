"""Start-up and exit of the processes around ``install()``, reviewed (fourth pass), for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import autotrace
from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

BIN = Path(sys.executable).parent

#: The parent only imports autotrace; each child ``multiprocessing`` starts calls ``install()``
#: itself (a worker's own set-up, a pool's initializer) and records one span.
_INSTALLED_IN_CHILDREN = """
import multiprocessing, sys
import autotrace

def child(tag):
    autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=(), export_interval=30)
    with autotrace.start_span(f"child-{tag}"):
        pass

if __name__ == "__main__":
    for method in ("fork", "forkserver", "spawn"):
        process = multiprocessing.get_context(method).Process(target=child, args=(method,))
        process.start()
        process.join()
        print(method, process.exitcode)
    with multiprocessing.get_context("fork").Pool(1, initializer=child, initargs=("pool",)) as pool:
        pool.map(abs, [1])
        pool.close()
        pool.join()
"""


def test_a_child_that_installs_itself_exports_its_spans_whatever_the_start_method(tmp_path: Path) -> None:
    """A process ``multiprocessing`` forks ends by ``os._exit``: its own ``install()`` registered no
    exit export there, so everything it recorded was lost (only a spawned child, which ends by
    ``sys.exit``, exported)."""
    db, app = tmp_path / "t.db", tmp_path / "app.py"  # a file: spawned children import its functions
    app.write_text(_INSTALLED_IN_CHILDREN)
    done = subprocess.run([sys.executable, str(app), str(db)], capture_output=True, text=True, timeout=120,
                          check=False, cwd=tmp_path)
    assert (done.returncode, done.stdout.split()) == (0, ["fork", "0", "forkserver", "0", "spawn", "0"]), done.stderr
    names = sorted(o["name"] for o in LocalStore(db, read_only=True).observations())
    assert names == ["child-fork", "child-forkserver", "child-pool", "child-spawn"]


_REEXEC = """
import os, sys
import autotrace
if sys.argv[1:] != ["again"]:
    with autotrace.start_span("before-exec"):
        pass
    os.execl(sys.executable, sys.executable, __file__, "again")
with autotrace.start_span("after-exec"):
    pass
"""


def test_a_program_that_re_executes_itself_exports_what_it_did_before(tmp_path: Path) -> None:
    """``os.exec*`` replaces the process without ``atexit``: the spans the program finished before
    it re-executed itself (the same process, traced again by ``autotrace run``) were never exported."""
    (tmp_path / "app.py").write_text(_REEXEC)
    env = isolated_env(tmp_path)
    env.update({"AUTOTRACE_LOCAL_STORE_PATH": str(tmp_path / "t.db"), "AUTOTRACE_EXPORT_INTERVAL": "30"})
    done = subprocess.run([str(BIN / "autotrace"), "run", "--", sys.executable, "app.py"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    names = sorted(o["name"] for o in LocalStore(tmp_path / "t.db", read_only=True).observations())
    assert names == ["after-exec", "before-exec"]


def test_uninstall_gives_os_its_exec_functions_back(tmp_path: Path) -> None:
    originals = os.execv, os.execve
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=())
    try:
        assert (os.execv.__wrapped__, os.execve.__wrapped__) == originals  # type: ignore[attr-defined]
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), release="2")
        assert os.execv.__wrapped__ is originals[0]  # type: ignore[attr-defined]  # wrapped once
    finally:
        autotrace.uninstall()
    assert (os.execv, os.execve) == originals


@pytest.mark.parametrize(("program", "said"), [
    (["{python}", "-I", "-c", "print('ran')"], "python -I reads no PYTHONPATH"),
    (["{python}", "-X", "dev", "-Es", "-c", "print('ran')"], "python -E reads no PYTHONPATH"),
    (["{python}", "-S", "-c", "print('ran')"], "python -S imports no site module"),
    (["./tool.py"], "python -E reads no PYTHONPATH"),  # the interpreter's options in a script's ``#!`` line
    (["env", "A=1", "{python}", "-I", "-c", "print('ran')"], "python -I reads no PYTHONPATH"),
    (["{python}", "-c", "print('ran')", "-I"], None),  # the program's own argument
])
def test_a_python_that_will_not_read_the_bootstrap_is_said_to_run_untraced(
        tmp_path: Path, program: list[str], said: str | None) -> None:
    """``-I``/``-E`` (no ``PYTHONPATH``) and ``-S`` (no ``site``) left the program untraced in silence."""
    tool = tmp_path / "tool.py"
    tool.write_text(f"#!/usr/bin/env -S {Path(sys.executable).name} -E\nprint('ran')\n")
    tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "AUTOTRACE_HOME": str(tmp_path)}
    command = [word.format(python=Path(sys.executable).name) for word in program]
    done = subprocess.run([str(BIN / "autotrace"), "run", "--", *command], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (0, "ran\n")
    expected = [] if said is None else [f"autotrace run: {said}, so the program runs untraced (call "
                                        "autotrace.install() in it instead)"]
    assert done.stderr.splitlines() == expected
