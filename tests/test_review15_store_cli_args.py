"""Review 15: ``run``/``replay`` options after ``--db``. ``run --db PATH -h`` ran a program called
``-h`` (exit 127, "cannot run '-h'") instead of printing help; ``run -x`` ran one called ``-x``.
Real ``autotrace`` processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.test_cli_review4 import RUN_USAGE, _autotrace

REPLAY_USAGE = "usage: autotrace replay [-h] --at AT"


@pytest.mark.parametrize("argv", [
    ["run", "--db", "t.db", "-h"],
    ["run", "--db=t.db", "--help"],
    ["run", "-h", "--db", "t.db"],
    ["--db", "t.db", "run", "--db", "u.db", "-h"],
    ["--d", "t.db", "run", "--db", "u.db", "-h"],  # ``--d``: argparse's prefix of ``--db``
    ["replay", "abc", "--at", "def", "--", "--db", "t.db", "-h"],
])
def test_help_after_db_prints_help_and_runs_nothing(tmp_path: Path, argv: list[str]) -> None:
    done = _autotrace(tmp_path, *argv)
    usage = REPLAY_USAGE if "replay" in argv else RUN_USAGE
    assert (done.returncode, done.stderr, done.stdout.startswith(usage)) == (0, "", True), done
    assert "positional arguments:" in done.stdout
    assert list(tmp_path.iterdir()) == []  # no store opened or created, no program run


@pytest.mark.parametrize(("argv", "option"), [
    (["run", "-x", sys.executable, "-c", "print('ran')"], "-x"),
    (["run", "--db", "t.db", "--json", sys.executable, "-c", "print('ran')"], "--json"),
    (["run", "--db=t.db", "--verbose"], "--verbose"),
])
def test_an_unknown_option_before_the_program_is_a_usage_error(tmp_path: Path, argv: list[str], option: str) -> None:
    done = _autotrace(tmp_path, *argv)
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", f"{RUN_USAGE}\nautotrace run: error: unrecognized arguments: {option} (the program to run goes after "
               f"the options, e.g. autotrace run ... -- python app.py)\n")
    assert list(tmp_path.iterdir()) == []


def test_a_program_after_db_still_runs(tmp_path: Path) -> None:
    done = _autotrace(tmp_path, "run", "--db", "t.db", "--", sys.executable, "-c", "print('ran')")
    assert (done.returncode, done.stdout) == (0, "ran\n")
