"""``autotrace run`` with the program's stderr closed (review 18): a daemon started with ``2>&-``, an
embedding with no stderr. A bad configuration kept the program from starting at all (the bootstrap's
report on stderr raised out of ``site``, which ended the interpreter with status 1, the program never
run), and ``run``'s own notices went to the program's stdout (``print`` to a None stderr writes to
stdout)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import isolated_env

AUTOTRACE = str(Path(sys.executable).with_name("autotrace"))


def _run_without_stderr(tmp_path: Path, *command: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """``autotrace run -- command`` with file descriptor 2 closed: its exit status and stdout."""
    env = isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(tmp_path / "traces.db"), **extra)
    return subprocess.run(["sh", "-c", 'exec "$@" 2>&-', "sh", AUTOTRACE, "run", "--", *command], env=env,
                          cwd=tmp_path, stdout=subprocess.PIPE, text=True, timeout=120, check=False)


def test_a_bad_configuration_with_no_stderr_still_runs_the_program(tmp_path: Path) -> None:
    done = _run_without_stderr(tmp_path, sys.executable, "-c",
                               "import sys; from autotrace.runtime import state; "
                               "print('ran', state.settings is not None); sys.exit(3)",
                               AUTOTRACE_QUEUE_SIZE="lots")
    assert (done.returncode, done.stdout) == (3, "ran False\n")


def test_runs_notices_never_go_to_the_programs_stdout(tmp_path: Path) -> None:
    isolated = _run_without_stderr(tmp_path, sys.executable, "-I", "-c", "print('out')")
    assert (isolated.returncode, isolated.stdout) == (0, "out\n")
    missing = _run_without_stderr(tmp_path, "no-such-program-review18")
    assert (missing.returncode, missing.stdout) == (127, "")
