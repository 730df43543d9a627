"""``make demo`` on a machine without a suitable Python says what it needs and how to name another
interpreter, before it creates anything (an older Python made a virtualenv, then pip failed with
"requires a different Python" and left it behind)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NEEDS = "autotrace needs Python 3.11 or later; name one with PYTHON=, e.g. make demo PYTHON=python3.12"


def _make(tmp_path: Path, python: str) -> subprocess.CompletedProcess[str]:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return subprocess.run(["make", "-s", "demo", f"PYTHON={python}"], cwd=tmp_path, capture_output=True, env=_outside_make(),
                          text=True, timeout=60, check=False)


def _outside_make() -> dict[str, str]:
    """This environment without a calling make's variables (``make test`` runs the suite: a nested
    make prints its directory changes, and takes the caller's flags)."""
    return {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_a_missing_python_is_named_with_what_to_do(tmp_path: Path) -> None:
    result = _make(tmp_path, "no-such-python-s20")
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == f"no-such-python-s20 not found: {NEEDS}"
    assert not (tmp_path / ".venv").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_an_older_python_is_refused_before_a_virtualenv_is_made(tmp_path: Path) -> None:
    old = tmp_path / "python3.10"  # stands for an interpreter older than 3.11: reports 3.10.14
    old.write_text("#!/bin/sh\ncase \"$2\" in *platform*) echo 3.10.14; exit 0;; esac\nexit 1\n")
    old.chmod(0o755)
    result = _make(tmp_path, str(old))
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == f"{old} is 3.10.14: {NEEDS}"
    assert not (tmp_path / ".venv").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_a_bare_make_runs_the_demo(tmp_path: Path) -> None:
    """``make`` alone only created the virtualenv (the first target), silently."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    planned = subprocess.run(["make", "-n"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
                             env=_outside_make())
    assert planned.stdout.splitlines()[-1] == ".venv/bin/python -m autotrace demo"
