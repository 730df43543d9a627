"""Review 16: output that cannot be written, under Python's default buffering (the test environment's
``PYTHONUNBUFFERED`` hid both). A reader gone before the buffered output was flushed (``autotrace
traces | true``, or ``| head -1`` of a few kilobytes) ended the command with "Exception ignored ...
BrokenPipeError" and exit 120 instead of quietly with 141; a full disk (``> out.json`` with no space
left) was a traceback. Real ``autotrace`` processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

NOW = time.time_ns()
TRACE = "cd" * 16


def _db(tmp_path: Path) -> str:
    store = LocalStore(tmp_path / "t.db")
    store.write([{"trace_id": TRACE, "id": f"{i:016x}", "parent_id": None if i == 0 else "0" * 16,
                  "name": f"step-{i}", "type": "span", "tenant": "acme", "start_ns": NOW + i, "end_ns": NOW + i + 10,
                  "level": "DEFAULT", "model": None, "usage": None, "cost": None, "duration_ms": 0.0}
                 for i in range(3)])
    store.close()
    return str(tmp_path / "t.db")


def _env(tmp_path: Path) -> dict[str, str]:
    env = isolated_env(tmp_path)
    env.pop("PYTHONUNBUFFERED", None)  # as a user's shell runs it: stdout block-buffered into a pipe or file
    return env


COMMANDS = [["traces"], ["traces", "--json"], ["show", "cdcd"], ["show", "cdcd", "--json"],
            ["query", "type=span"], ["show", "zz", "--json"]]


@pytest.mark.parametrize("argv", COMMANDS)
def test_a_reader_gone_before_the_output_is_flushed_ends_quietly_with_141(tmp_path: Path, argv: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes anything
    try:
        done = subprocess.run([sys.executable, "-m", "autotrace", "--db", _db(tmp_path), *argv], stdout=write,
                              stderr=subprocess.PIPE, env=_env(tmp_path), timeout=60, check=False)
    finally:
        os.close(write)
    stderr = "autotrace: 'zz' is not a trace id (1 to 32 hex digits)\n" if "zz" in argv else ""
    assert (done.returncode, done.stderr.decode()) == (141, stderr)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("argv", COMMANDS)
def test_output_to_a_full_disk_is_one_line_and_exit_1(tmp_path: Path, argv: list[str], unbuffered: bool) -> None:
    env: dict[str, Any] = {**_env(tmp_path), **({"PYTHONUNBUFFERED": "1"} if unbuffered else {})}
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "autotrace", "--db", _db(tmp_path), *argv], stdout=full,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=60, check=False)
    first = "autotrace: 'zz' is not a trace id (1 to 32 hex digits)\n" if "zz" in argv else ""
    assert (done.returncode, done.stderr) == (1, f"{first}autotrace: cannot write the output: No space left on device\n")
