"""``autotrace run`` with another tool's ``sitecustomize`` that puts its own folder first on ``PYTHONPATH``
and runs no other: OpenTelemetry's auto-instrumentation (``opentelemetry-instrument``, for real), or a
launcher that execs the program with its folder in front. Both bootstraps run, in real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

BIN = Path(sys.executable).parent
OTEL_SITE = "opentelemetry.instrumentation.auto_instrumentation"

#: A program whose workers ``multiprocessing`` spawns (``uvicorn --workers`` does): each reports whether
#: autotrace and OpenTelemetry's auto-instrumentation are active in it, and records a span.
_APP = f"""
import json, multiprocessing, sys
import autotrace
from autotrace.runtime import state

def report(name):
    with autotrace.start_span(name):
        pass
    return [state.settings is not None, {OTEL_SITE!r} in sys.modules]

if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[1])
    with multiprocessing.Pool(1) as pool:
        print(json.dumps({{"program": report("program"), "worker": pool.apply(report, ("worker",))}}))
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = isolated_env(tmp_path)
    env.pop("PYTHONPATH", None)
    return {**env, "AUTOTRACE_HOME": str(tmp_path / "home"), "AUTOTRACE_LOCAL_STORE_PATH": str(tmp_path / "t.db"),
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            # OpenTelemetry's bootstrap without its instrumentors or exporters: only whether it runs counts
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "*", "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}


def _run(tmp_path: Path, command: list[str]) -> tuple[int, dict[str, list[bool]], str, list[str]]:
    done = subprocess.run(command, env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False)
    spans = sorted(r["name"] for r in LocalStore(tmp_path / "t.db").observations())
    return done.returncode, json.loads(done.stdout or "null"), done.stderr, spans


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
@pytest.mark.parametrize("outer", ["autotrace", "opentelemetry"])
def test_opentelemetry_auto_instrumentation_and_autotrace_both_run_in_the_program_and_its_workers(
        tmp_path: Path, outer: str, method: str) -> None:
    """``autotrace run -- opentelemetry-instrument python app.py``: the launcher put its folder before
    autotrace's, and its ``sitecustomize`` runs no other, so the program ran untraced, without a
    word. The other way round (``opentelemetry-instrument autotrace run -- ...``) the program was
    traced, but OpenTelemetry's ``sitecustomize`` puts its folder first again once it ran, so the
    workers ``multiprocessing`` spawns (traced, as documented) were not."""
    (tmp_path / "app.py").write_text(_APP)
    at_run = [str(BIN / "autotrace"), "run", "--"]
    otel = [str(BIN / "opentelemetry-instrument")]
    launcher = [*at_run, *otel] if outer == "autotrace" else [*otel, *at_run]
    code, report, stderr, spans = _run(tmp_path, [*launcher, "python", "app.py", method])
    assert (code, report, stderr) == (0, {"program": [True, True], "worker": [True, True]}, "")
    assert spans == ["program", "worker"]


#: A launcher (as APM agents ship them) that execs the program with its own ``sitecustomize`` first on
#: the ``PYTHONPATH`` it passes to ``os.execve``; that ``sitecustomize`` runs no other.
_LAUNCHER = """
import os, sys
folder = os.path.join(os.getcwd(), "tool")
env = {**os.environ, "PYTHONPATH": folder + os.pathsep + os.environ.get("PYTHONPATH", "")}
os.execve(sys.executable, [sys.executable, *sys.argv[1:]], env)
"""
_TOOL_SITE = "import os\nos.environ['TOOL_RUNS'] = os.environ.get('TOOL_RUNS', '') + 'x'\n"
_PROGRAM = """
import json, os
import autotrace
from autotrace.runtime import state
with autotrace.start_span("program"):
    pass
print(json.dumps({"program": [state.settings is not None, os.environ.get("TOOL_RUNS")]}))
"""


def test_a_launcher_that_execs_with_its_own_sitecustomize_first_leaves_the_program_traced(tmp_path: Path) -> None:
    """The program such a launcher execs ran only the launcher's ``sitecustomize``: untraced."""
    (tmp_path / "tool").mkdir()
    (tmp_path / "tool" / "sitecustomize.py").write_text(_TOOL_SITE)
    (tmp_path / "launcher.py").write_text(_LAUNCHER)
    (tmp_path / "program.py").write_text(_PROGRAM)
    command = [str(BIN / "autotrace"), "run", "--", "python", "launcher.py", "program.py"]
    code, report, stderr, spans = _run(tmp_path, command)
    assert (code, report, stderr, spans) == (0, {"program": [True, "x"]}, "", ["program"])
