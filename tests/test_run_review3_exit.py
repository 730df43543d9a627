"""Process exit under ``autotrace run``, reviewed: a SIGTERM that reaches the application's own
handler while the exit export is under way (a second SIGTERM, a pool terminating workers that are
already ending) waits for that export, then reaches the handler, which decides the end as before."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import isolated_env

AUTOTRACE = str(Path(sys.executable).with_name("autotrace"))

_APP = """
import os, signal, sys, threading, time

def stop(signum, frame):
    if sys.argv[1] == "exit":  # as many scripts and servers do
        sys.exit(0)
    signal.signal(signum, signal.SIG_DFL)  # ends by the signal, as a process manager expects
    os.kill(os.getpid(), signum)

signal.signal(signal.SIGTERM, stop)
import autotrace
with autotrace.start_span("exported-at-exit"):
    pass
# a SIGTERM that arrives while the exit export is under way (its first attempt fails: it retries)
threading.Thread(target=lambda: (time.sleep(0.15), os.kill(os.getpid(), signal.SIGTERM)), daemon=True).start()
"""


@pytest.mark.parametrize("handler, code", [("exit", 0), ("signal", -signal.SIGTERM)])
def test_a_sigterm_during_the_exit_export_waits_for_it_under_the_applications_handler(
        tmp_path: Path, handler: str, code: int) -> None:
    """Under the application's handler such a SIGTERM ran at once: its ``sys.exit`` was raised in the
    middle of the export ("Exception ignored in atexit callback ... SystemExit") and the spans were
    lost; a handler that ends the process by the signal ended it before they were sent."""
    (tmp_path / "app.py").write_text(_APP)
    with OtlpReceiver() as receiver:
        receiver.delay(0.3)
        receiver.fail_with(503, times=1)
        env = isolated_env(tmp_path)
        env.update({"LANGFUSE_HOST": receiver.url, "LANGFUSE_PUBLIC_KEY": "pk-lf-1", "LANGFUSE_SECRET_KEY": "sk-lf-1",
                    "AUTOTRACE_UNKNOWN_TENANT": "default", "AUTOTRACE_EXPORT_INTERVAL": "30",
                    "AUTOTRACE_HOME": str(tmp_path / "home")})
        done = subprocess.run([AUTOTRACE, "run", "--", sys.executable, "app.py", handler], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False)
        assert [span.name for span in receiver.spans] == ["exported-at-exit"], done.stderr
    assert done.returncode == code
    assert done.stderr == "autotrace: export to default failed (HTTP 503); retrying with backoff\n"
