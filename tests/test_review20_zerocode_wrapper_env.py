"""Zero-code activation (review 20): a Python tool of another environment that starts the
application (``autotrace run -- hatch run python app.py``, ``tox``, ``nox``: each runs from its own
virtualenv, which lacks autotrace) took the activation for itself, failed to import autotrace, and
the application it started, in autotrace's environment, ran untraced, taken for another program."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

AUTOTRACE = str(Path(sys.executable).with_name("autotrace"))

_APP = textwrap.dedent("""
    import autotrace
    with autotrace.start_span("main"):
        pass
    print("the application ran")
""")


def test_the_program_a_tool_of_another_environment_starts_is_traced(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "tool-venv")], check=True)
    tool = str(tmp_path / "tool-venv" / "bin" / "python")
    (tmp_path / "app.py").write_text(_APP)
    (tmp_path / "tool.py").write_text(f"import subprocess, sys\nsys.exit(subprocess.call([{sys.executable!r}, 'app.py']))\n")
    env = isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(tmp_path / "traces.db"))
    done = subprocess.run([AUTOTRACE, "run", "--", tool, "tool.py"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (0, "the application ran\n")
    assert done.stderr == (f"autotrace: tracing is off for this process: {tool} cannot import autotrace "
                           "(ModuleNotFoundError: No module named 'autotrace'); install autotrace in its environment\n")
    assert [r["name"] for r in LocalStore(tmp_path / "traces.db").observations()] == ["main"]
