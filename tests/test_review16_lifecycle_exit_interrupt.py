"""Ctrl-C while the export at interpreter exit waits for a slow endpoint (review 16): the program has
ended, but autotrace holds it up to 2 s, and a user who presses Ctrl-C then got a traceback through
autotrace's internals ("Exception ignored in atexit callback ... KeyboardInterrupt"). Now the export
stops with one line saying that what was not sent is lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import isolated_env

#: The redaction hook runs on the pipeline thread; it presses Ctrl-C once the exit export has begun
#: (``uninstall`` has taken the pipeline away), so the interrupt lands in that export's wait.
_APP = """
import atexit, os, signal, threading, time
import autotrace
from autotrace.runtime import state

exiting = threading.Event()
pressed = threading.Lock()

def press_ctrl_c(key, value, span_type):  # called for each value: presses once
    if pressed.acquire(blocking=False) and exiting.wait(30):
        for _ in range(3000):
            if state.pipeline is None:
                os.kill(os.getpid(), signal.SIGINT)
                break
            time.sleep(0.01)
    return value

autotrace.install(integrations=(), export_interval=30, redact=[press_ctrl_c])
atexit.register(exiting.set)  # runs before autotrace's exit export, registered earlier
with autotrace.start_span("ended", input="x"):
    pass
"""


def test_ctrl_c_during_the_exit_export_stops_it_without_a_traceback(tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        receiver.delay(5.0)
        env = isolated_env(tmp_path, LANGFUSE_HOST=receiver.url, LANGFUSE_PUBLIC_KEY="pk-lf-1",
                           LANGFUSE_SECRET_KEY="sk-lf-1", AUTOTRACE_UNKNOWN_TENANT="default")
        done = subprocess.run([sys.executable, "-c", _APP], env=env, capture_output=True, text=True, timeout=60,
                              check=False)
    assert done.returncode == 0  # what Python makes of an exit function interrupted
    assert done.stderr == "autotrace: the export at exit was interrupted; spans not sent yet are lost\n"
