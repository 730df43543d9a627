"""``autotrace --help`` (argparse's exit) under Python's default buffering: its text is flushed at the
interpreter's exit, past ``main``'s handling, so a reader gone (``| true``) gave "Exception ignored ...
BrokenPipeError" and exit 120, and a full disk the same with exit 120. Now as any other output: quietly
141, and one line with exit 1. Real ``autotrace`` processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import isolated_env

HELPS = [["--help"], ["show", "--help"], ["query", "-h"]]


def _env(tmp_path: Path) -> dict[str, str]:
    env = isolated_env(tmp_path)
    env.pop("PYTHONUNBUFFERED", None)  # as a user's shell runs it: stdout block-buffered into a pipe or file
    return env


@pytest.mark.parametrize("argv", HELPS)
def test_help_to_a_reader_gone_ends_quietly_with_141(tmp_path: Path, argv: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "autotrace", *argv], stdout=write, stderr=subprocess.PIPE,
                              env=_env(tmp_path), timeout=60, check=False)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr.decode()) == (141, "")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv", HELPS)
def test_help_to_a_full_disk_is_one_line_and_exit_1(tmp_path: Path, argv: list[str]) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "autotrace", *argv], stdout=full, stderr=subprocess.PIPE,
                              text=True, env=_env(tmp_path), timeout=60, check=False)
    assert (done.returncode, done.stderr) == (1, "autotrace: cannot write the output: No space left on device\n")


def test_help_still_reaches_a_reader(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "autotrace", "--help"], capture_output=True, text=True,
                          env=_env(tmp_path), timeout=60, check=False)
    assert (done.returncode, done.stdout.startswith("usage: autotrace "), done.stderr) == (0, True, "")
