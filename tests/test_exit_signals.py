"""Process exit by signal. A SIGTERM the application turns into ``sys.exit`` (as servers such as
gunicorn and uvicorn do) exports what is buffered at exit. One it leaves to Python's default is
caught by autotrace (``flush_on_sigterm``), which exports what is buffered and then ends the
process by the same signal; with that setting off the process ends at once and the spans are lost."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

import autotrace
from autotrace import sigterm
from autotrace.export.local_store import LocalStore

_APP = """
import os, signal, sys, time
import autotrace
mode = sys.argv[2]
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=(), export_interval=30,
                  flush_on_sigterm=mode != "off")
if mode == "handled":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
if mode == "chained":  # a server's handler that calls the one it found first, then decides itself
    previous = signal.getsignal(signal.SIGTERM)
    def graceful(signum, frame):
        previous(signum, frame)
        print("still running after the previous handler", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, graceful)
with autotrace.start_span("before-sigterm"):
    pass
handler = signal.getsignal(signal.SIGTERM)
print(getattr(handler, "__name__", handler), flush=True)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(30)
"""


def _run(tmp_path: Path, mode: str) -> tuple[int, list[str], list[str]]:
    path = tmp_path / f"{mode}.db"
    done = subprocess.run([sys.executable, "-c", _APP, str(path), mode], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    names = [o["name"] for o in LocalStore(path, read_only=True).observations()] if path.exists() else []
    return done.returncode, names, done.stdout.splitlines()


def test_a_handled_sigterm_exports_buffered_spans(tmp_path: Path) -> None:
    assert _run(tmp_path, "handled") == (143, ["before-sigterm"], ["<lambda>"])


def test_an_unhandled_sigterm_exports_buffered_spans_then_ends_the_process_by_that_signal(tmp_path: Path) -> None:
    assert _run(tmp_path, "default") == (-signal.SIGTERM, ["before-sigterm"], ["_on_sigterm"])


def test_with_flush_on_sigterm_off_an_unhandled_sigterm_ends_the_process_at_once(tmp_path: Path) -> None:
    assert _run(tmp_path, "off") == (-signal.SIGTERM, [], ["0"])  # SIG_DFL


def test_a_later_handler_that_calls_autotraces_keeps_control_of_the_exit(tmp_path: Path) -> None:
    assert _run(tmp_path, "chained") == (0, ["before-sigterm"],
                                         ["graceful", "still running after the previous handler"])


def test_uninstall_gives_sigterm_its_default_back_but_leaves_a_later_handler_alone(tmp_path: Path) -> None:
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    try:
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=())
        assert signal.getsignal(signal.SIGTERM) is sigterm._on_sigterm
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(),
                          flush_on_sigterm=False)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=())
        autotrace.uninstall()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

        def own(signum: int, frame: object) -> None:
            pass

        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=())
        signal.signal(signal.SIGTERM, own)
        autotrace.uninstall()
        assert signal.getsignal(signal.SIGTERM) is own
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=())
        assert signal.getsignal(signal.SIGTERM) is own  # the application's own handler decides
    finally:
        autotrace.uninstall()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize("value, expected", [("false", False), ("0", False), ("true", True)])
def test_the_setting_reads_its_variable(value: str, expected: bool) -> None:
    from autotrace.config import load_settings

    assert load_settings(env={"AUTOTRACE_FLUSH_ON_SIGTERM": value}).flush_on_sigterm is expected


def test_a_sigterm_while_the_endpoint_hangs_ends_the_process_within_the_bound(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        app = _APP.replace('local_store="on", local_store_path=sys.argv[1]',
                           f'langfuse_host="http://127.0.0.1:{silent.getsockname()[1]}", public_key="pk-lf-1", '
                           'secret_key="sk-lf-1", export_timeout=60, unknown_tenant="default"')
        assert app != _APP
        done = subprocess.run([sys.executable, "-c", app, str(tmp_path / "unused.db"), "default"],
                              capture_output=True, text=True, timeout=30)  # a hang would raise TimeoutExpired
    assert (done.returncode, done.stdout.splitlines()) == (-signal.SIGTERM, ["_on_sigterm"]), done.stderr
