"""Process exit by signal: a SIGTERM the application turns into ``sys.exit`` (as the README advises,
and as servers such as gunicorn and uvicorn do) exports what is buffered; under Python's default
SIGTERM handling the process ends without running Python code, so buffered spans are lost (the
README says so)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from autotrace.export.local_store import LocalStore

_APP = """
import os, signal, sys, time
import autotrace
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=(), export_interval=30)
if sys.argv[2] == "handled":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
with autotrace.start_span("before-sigterm"):
    pass
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(30)
"""


def _run(tmp_path: Path, mode: str) -> tuple[int, list[str]]:
    path = tmp_path / f"{mode}.db"
    done = subprocess.run([sys.executable, "-c", _APP, str(path), mode], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    names = [o["name"] for o in LocalStore(path, read_only=True).observations()] if path.exists() else []
    return done.returncode, names


def test_a_handled_sigterm_exports_buffered_spans(tmp_path: Path) -> None:
    assert _run(tmp_path, "handled") == (143, ["before-sigterm"])


def test_an_unhandled_sigterm_ends_the_process_at_once(tmp_path: Path) -> None:
    code, names = _run(tmp_path, "default")
    assert (code, names) == (-15, [])
