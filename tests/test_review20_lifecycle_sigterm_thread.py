"""``install()`` from a thread other than the main one cannot set the SIGTERM handler (Python
refuses), so ``flush_on_sigterm`` silently did nothing: a SIGTERM ended the process with its
buffered spans unexported. That is now said once, unless the application handles SIGTERM itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import isolated_env

_APP = """
import logging, signal, sys, threading
import autotrace
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
if sys.argv[2] == "own":
    signal.signal(signal.SIGTERM, lambda *a: None)
thread = threading.Thread(target=lambda: autotrace.install(
    local_store="on", local_store_path=sys.argv[1], integrations=()))
thread.start(); thread.join()
print("handler:", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
"""


def _run(tmp_path: Path, handler: str) -> str:
    done = subprocess.run([sys.executable, "-c", _APP, str(tmp_path / "traces.db"), handler],
                          env=isolated_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_install_off_the_main_thread_says_sigterm_is_not_flushed(tmp_path: Path) -> None:
    out = _run(tmp_path, "default")
    assert "handler: True" in out
    assert out.count("install() ran outside the main thread") == 1
    assert "autotrace.flush()" in out


def test_an_application_handling_sigterm_itself_hears_nothing(tmp_path: Path) -> None:
    out = _run(tmp_path, "own")
    assert "handler: False" in out
    assert "main thread" not in out
