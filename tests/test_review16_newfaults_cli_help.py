"""``autotrace --help`` written at once (``PYTHONUNBUFFERED=1``, as many container images set it):
argparse ignores a failed write, so with the reader gone or the disk full its text was lost and the
command ended with 0, as if it had been read; ``main``'s flush found nothing left to fail. Now as
any other output: quietly 141, and one line with exit 1. Real ``autotrace`` processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import isolated_env

HELPS = [["--help"], ["show", "--help"]]


def _run(tmp_path: Path, argv: list[str], stdout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotrace", *argv], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, env=isolated_env(tmp_path, PYTHONUNBUFFERED="1"), timeout=60, check=False)


@pytest.mark.parametrize("argv", HELPS)
def test_unbuffered_help_to_a_reader_gone_ends_quietly_with_141(tmp_path: Path, argv: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)
    try:
        done = _run(tmp_path, argv, write)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv", HELPS)
def test_unbuffered_help_to_a_full_disk_is_one_line_and_exit_1(tmp_path: Path, argv: list[str]) -> None:
    with open("/dev/full", "w") as full:
        done = _run(tmp_path, argv, full.fileno())
    assert (done.returncode, done.stderr) == (1, "autotrace: cannot write the output: No space left on device\n")


def test_unbuffered_help_and_usage_still_reach_their_readers(tmp_path: Path) -> None:
    done = _run(tmp_path, ["--help"], subprocess.PIPE)
    assert (done.returncode, done.stdout.startswith("usage: autotrace "), done.stderr) == (0, True, "")
    done = _run(tmp_path, ["nosuch"], subprocess.PIPE)
    assert (done.returncode, done.stdout, done.stderr.startswith("usage: autotrace ")) == (2, "", True)
