"""A program under ``autotrace run`` that serves from a child running the same program again (review
16): Flask's debug server and Django's ``runserver`` reload that way (the first process only watches
the files). The child was taken for another program, so the whole application ran untraced, with
no word. It is the program's own process now; other programs it starts still are not traced."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

AUTOTRACE = str(Path(sys.executable).with_name("autotrace"))

#: Django's reloader: the same interpreter, ``-W`` for each warning option, the script and its arguments.
_RERUN = textwrap.dedent("""
    import os, subprocess, sys
    import autotrace
    from autotrace.runtime import state
    if os.environ.get("RELOADED") is None:
        child = [sys.executable, *("-W" + option for option in sys.warnoptions), sys.argv[0], *sys.argv[1:]]
        if sys.argv[1] == "other":
            child.append("--other-arguments")
        subprocess.run(child, env={**os.environ, "RELOADED": "1"}, check=True)
    else:
        with autotrace.start_span("served", input=str(state.settings is not None)):
            pass
""")


def _env(tmp_path: Path) -> dict[str, str]:
    return isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(tmp_path / "traces.db"),
                        AUTOTRACE_EXPORT_INTERVAL="0.05")


@pytest.mark.parametrize("child, served", [("same", [("served", "True")]), ("other", [])])
def test_a_child_running_the_same_program_again_is_traced(tmp_path: Path, child: str,
                                                          served: list[tuple[str, str]]) -> None:
    (tmp_path / "app.py").write_text(_RERUN)
    done = subprocess.run([AUTOTRACE, "run", "--", sys.executable, "-W", "ignore::UserWarning", "app.py", child],
                          env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    records = LocalStore(tmp_path / "traces.db").observations() if (tmp_path / "traces.db").exists() else []
    assert [(r["name"], r["input"]) for r in records] == served


_FLASK = textwrap.dedent("""
    import sys
    from flask import Flask
    import autotrace
    app = Flask(__name__)

    @app.get("/")
    def index():
        with autotrace.start_span("handled"):
            pass
        autotrace.flush(10)
        return "ok"

    app.run(port=int(sys.argv[1]), debug=True, use_reloader=True)
""")


def test_flasks_debug_server_is_traced(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(_FLASK)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([AUTOTRACE, "run", "--", sys.executable, "app.py", str(port)], env=_env(tmp_path),
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        body = None
        for _ in range(300):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                break
            except OSError:
                time.sleep(0.1)
        assert body == b"ok"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    assert "autotrace" not in stderr
    assert [r["name"] for r in LocalStore(tmp_path / "traces.db").observations()] == ["handled"]
