"""``run`` and ``replay`` arguments that name no program or no store: usage errors, as argparse says them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import isolated_env

AUTOTRACE = str(Path(sys.executable).with_name("autotrace"))
RUN_USAGE = "usage: autotrace run [-h] ..."


def _autotrace(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = isolated_env(tmp_path)
    return subprocess.run([AUTOTRACE, *argv], env={**env, "AUTOTRACE_HOME": str(tmp_path / "home")}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("argv", "error"), [
    (["run", "--db"], "argument --db: expected one argument"),  # was exit 127: "cannot run '--db'"
    (["run", "--db", "--", sys.executable, "-c", "print('ran')"], "argument --db: expected one argument"),
    (["run", "--db", "t.db", "--db"], "argument --db: expected one argument"),
    (["run", "--db=", sys.executable, "-c", "print('ran')"], "argument --db: must not be empty"),  # ran, default store
    (["run", "--db", "t.db"], "give the program to run, e.g. autotrace run ... -- python app.py"),
    (["run", "--"], "give the program to run, e.g. autotrace run ... -- python app.py"),
])
def test_run_without_a_program_or_a_store_path_is_a_usage_error(tmp_path: Path, argv: list[str], error: str) -> None:
    """``run --db`` ran a program called ``--db`` (exit 127, as if not found); ``run --db -- python ...``
    ran the program with its store at a file called ``--``. Both are a missing value, as ``--db``
    before any other command reports it; a missing program is said the same way."""
    done = _autotrace(tmp_path, *argv)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"{RUN_USAGE}\nautotrace run: error: {error}\n")
    assert list(tmp_path.iterdir()) == []  # no store created, no program run


def test_run_takes_the_last_of_several_db_options(tmp_path: Path) -> None:
    """``run --db a --db b PROG``, as argparse reads ``--db`` twice, names store b; the second ``--db``
    was taken for the program's name (exit 127)."""
    script = "import os; print(os.environ['AUTOTRACE_LOCAL_STORE_PATH'])"
    done = _autotrace(tmp_path, "run", "--db", "a.db", "--db=b.db", sys.executable, "-c", script)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{tmp_path / 'b.db'}\n", "")


@pytest.mark.parametrize("argv", [["--db", "", "traces"], ["traces", "--db="], ["compare", "--prompt", "p", "1", "2",
                                                                               "--db", " "]])
def test_an_empty_db_is_a_usage_error_not_the_default_store(tmp_path: Path, argv: list[str]) -> None:
    """``--db "$DB"`` with the variable unset read the default store (~/.autotrace/traces.db), as if no
    ``--db`` were given, as ``--tenant ""`` listed every tenant before it was refused."""
    done = _autotrace(tmp_path, *argv)
    command = "autotrace" if argv[0] == "--db" else f"autotrace {argv[0]}"
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines()[-1] == f"{command}: error: argument --db: must not be empty"


def test_a_resolver_raising_any_error_is_that_tenants_failed_check_never_its_message() -> None:
    """``autotrace check`` goes on with the other tenants; the message (which may hold a secret) is not shown."""
    from autotrace.commands import _looked_up
    from autotrace.export.credentials import LookupFailed

    class Store:
        def resolve(self, tenant: str) -> None:
            raise KeyError(f"sk-lf-secret-of-{tenant}")

    found = _looked_up(Store(), "acme")
    assert isinstance(found, LookupFailed) and str(found) == "the resolver raised KeyError"
