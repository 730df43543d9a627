"""Zero-code activation, reviewed: the process tree of ``autotrace run -- python app.py``, for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import isolated_env

BIN = Path(sys.executable).parent

_FORKED_WORKER = """
import json, multiprocessing, os, subprocess, sys
from autotrace.runtime import state

PROBE = "from autotrace.runtime import state; print(state.settings is not None)"

def traced(_):
    return state.settings is not None

if __name__ == "__main__":
    read, write = os.pipe()
    pid = os.fork()  # a pre-fork server's worker (gunicorn), which keeps the install
    if pid == 0:
        os.close(read)
        report = {"worker": state.settings is not None}
        with multiprocessing.get_context("spawn").Pool(1) as pool:  # its own helpers: the program's too
            report["spawned"] = pool.map(traced, [0])
        child = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
        report["other_program"] = child.stdout.strip()  # another program it starts: not traced
        os.write(write, json.dumps(report).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        report = json.loads(pipe.read())
    if os.fork() == 0:  # a forked process that replaces itself with another program: not traced
        os.execv(sys.executable, [sys.executable, "-c", PROBE])
    os.wait()
    print(json.dumps(report), flush=True)
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return isolated_env(tmp_path, AUTOTRACE_EXPORT_INTERVAL="0.05")


def test_the_spawned_workers_of_a_forked_worker_are_the_programs_own(tmp_path: Path) -> None:
    """A pre-fork server's worker that runs a ``spawn`` pool (CPU work beside the requests): its pool's
    processes were left untraced, since their parent was not the process ``autotrace run`` started."""
    (tmp_path / "app.py").write_text(_FORKED_WORKER)
    done = subprocess.run([str(BIN / "autotrace"), "run", "--", sys.executable, "app.py"], env=_env(tmp_path),
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    *execed, report = done.stdout.splitlines()
    assert json.loads(report) == {"worker": True, "spawned": [True], "other_program": "False"}
    assert execed == ["False"]
