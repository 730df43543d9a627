"""``autotrace run`` reviewed as a production user runs it, in real processes: what the launched
program inherits (signal dispositions), odd program names, another tool's chaining sitecustomize,
an interpreter without autotrace, and the demo on a machine whose environment names a proxy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autotrace.demo import run_demo
from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

AUTOTRACE = str(Path(sys.executable).with_name("autotrace"))


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return isolated_env(tmp_path, **extra)


def _run(tmp_path: Path, *command: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AUTOTRACE, "run", "--", *command], env=_env(tmp_path, **extra), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_the_program_gets_the_signals_python_ignores_back_at_their_default(tmp_path: Path) -> None:
    """Python ignores SIGPIPE and SIGXFSZ at start-up and an ignored signal stays ignored across
    ``exec``: the program ``run`` started had them ignored (a shell script's ``yes | head`` then
    wrote "Broken pipe" errors instead of ending quietly), unlike the same program started directly."""
    direct = subprocess.run(["grep", "SigIgn", "/proc/self/status"], capture_output=True, text=True, check=True)
    launched = _run(tmp_path, "grep", "SigIgn", "/proc/self/status")
    assert (launched.returncode, launched.stdout, launched.stderr) == (0, direct.stdout, "")
    pipeline = _run(tmp_path, "sh", "-c", "yes | head -n 1")
    assert (pipeline.returncode, pipeline.stdout, pipeline.stderr) == (0, "y\n", "")


def test_an_empty_program_name_is_not_found_as_a_shell_says(tmp_path: Path) -> None:
    """``autotrace run -- "$APP"`` with an unset variable raised a ValueError traceback (exit 1)."""
    done = _run(tmp_path, "")
    assert (done.returncode, done.stdout, done.stderr) == (127, "", "autotrace run: cannot run '': No such file or "
                                                                    "directory\n")


#: Another tool's zero-code bootstrap (APM agents ship such files): it runs the ``sitecustomize`` it
#: shadows, found on ``sys.path`` without its own folder.
_OTHER_TOOL = """
import importlib.machinery, importlib.util, os, sys
sys.stderr.write(f"other tool {sys.argv[0]}\\n")
_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.machinery.PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _here])
if _spec is not None:
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
"""
_APP_SITE = 'import sys\nsys.stderr.write(f"application {sys.argv[0]}\\n")\n'
_APP = "from autotrace.runtime import state\nprint(state.settings is not None)\n"


@pytest.mark.parametrize("first", ["autotrace", "other tool"])
def test_another_tools_chaining_sitecustomize_and_the_applications_run_once(tmp_path: Path, first: str) -> None:
    """With another tool's chaining bootstrap on the path (``autotrace run -- other-run python app.py``
    or the other way round) each bootstrap ran the other again until the recursion limit: the other
    tool started 110 times and autotrace reported RecursionErrors."""
    for folder, text in (("other", _OTHER_TOOL), ("app_site", _APP_SITE)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "sitecustomize.py").write_text(text)
    (tmp_path / "app.py").write_text(_APP)
    if first == "autotrace":  # the other tool's folder is next on PYTHONPATH, as ``autotrace run`` leaves it
        launcher = [AUTOTRACE, "run", "--", sys.executable, "app.py"]
        env = _env(tmp_path, PYTHONPATH=os.pathsep.join([str(tmp_path / "other"), str(tmp_path / "app_site")]))
    else:  # the other tool's launcher puts its folder before autotrace's
        from autotrace.commands import activation_env

        env = activation_env(_env(tmp_path, PYTHONPATH=str(tmp_path / "app_site")))
        env["PYTHONPATH"] = str(tmp_path / "other") + os.pathsep + env["PYTHONPATH"]
        launcher = [sys.executable, "app.py"]
    done = subprocess.run(launcher, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (0, "True\n"), done.stderr
    # the lines of the application's process (the ``autotrace`` command's own start-up shows first)
    assert [line for line in done.stderr.splitlines() if line.endswith("app.py")] == ["other tool app.py",
                                                                                      "application app.py"]
    assert "autotrace:" not in done.stderr


def test_an_interpreter_without_autotrace_is_named_in_the_message(tmp_path: Path) -> None:
    """A ``python`` of another virtualenv said only "No module named 'autotrace'", not which one."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "other-venv")], check=True)
    python = str(tmp_path / "other-venv" / "bin" / "python")
    done = _run(tmp_path, python, "-c", "print('the application ran')")
    assert (done.returncode, done.stdout) == (0, "the application ran\n")
    assert done.stderr == (f"autotrace: tracing is off for this process: {python} cannot import autotrace "
                           "(ModuleNotFoundError: No module named 'autotrace'); install autotrace in its environment\n")


def test_the_demo_runs_offline_when_the_environment_names_a_proxy(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy in the environment (a corporate machine, a CI runner) took the services' loopback calls:
    the RAG service failed with APIConnectionError and the demo with it."""
    unreachable = "http://127.0.0.1:9"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "grpc_proxy"):
        monkeypatch.setenv(name, unreachable)
    db = tmp_path / "demo.db"
    assert run_demo(db=db, quiet=True) == 0
    tenants = sorted(str(s["tenant"]) for s in LocalStore(db, read_only=True).traces())
    assert tenants == ["None", "acme", "globex"]


@pytest.mark.parametrize("options", [["--db", "run db/t.db", "--"], ["--db=run db/t.db", "--"], ["--db", "run db/t.db"]])
def test_db_after_run_names_the_store_as_after_any_command(tmp_path: Path, options: list[str]) -> None:
    """README: ``--db PATH`` after the command uses another store; after ``run`` it was taken for the
    program ("cannot run '--db'", exit 127)."""
    script = "import os, sys; print(sys.argv[1:], os.environ['AUTOTRACE_LOCAL_STORE_PATH'])"
    done = subprocess.run([AUTOTRACE, "run", *options, sys.executable, "-c", script, "--db", "x"], env=_env(tmp_path),
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"['--db', 'x'] {tmp_path / 'run db' / 't.db'}\n", "")
