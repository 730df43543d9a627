"""Zero-code activation: ``autotrace run -- python app.py`` through sitecustomize, for real."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

APP = textwrap.dedent("""
    import json, os, subprocess, sys
    import autotrace
    from autotrace.runtime import state
    with autotrace.tenant("acme"), autotrace.start_agent("zero-code-app") as agent:
        agent.set_output("ok")
    child = subprocess.run([sys.executable, "-c",
        "from autotrace.runtime import state; print(state.settings is not None)"],
        capture_output=True, text=True)
    print(json.dumps({"installed": state.settings is not None,
                      "integrations": sorted(__import__("autotrace.install", fromlist=["x"]).installed_integrations()),
                      "child_installed": child.stdout.strip(),
                      "user_site": os.environ.get("USER_SITECUSTOMIZE_RAN")}))
""")


def _run(tmp_path: Path, *launcher: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = isolated_env(tmp_path)
    env.update({"AUTOTRACE_LOCAL_STORE_PATH": str(tmp_path / "traces.db"), "AUTOTRACE_EXPORT_INTERVAL": "0.05"})
    env.update(extra_env or {})
    return subprocess.run([*launcher, "run", "--", sys.executable, str(app)], capture_output=True, text=True,
                          env=env, timeout=120, check=False, cwd=tmp_path)


def _autotrace_cli() -> list[str]:
    return [str(Path(sys.executable).with_name("autotrace"))]


@pytest.mark.parametrize("launcher", [["cli"], ["module"]])
def test_run_activates_without_touching_the_app(tmp_path: Path, launcher: list[str]) -> None:
    command = _autotrace_cli() if launcher == ["cli"] else [sys.executable, "-m", "autotrace"]
    result = _run(tmp_path, *command)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["installed"] is True
    assert report["child_installed"] == "False"  # subprocesses are not re-initialised
    assert "grpc" in report["integrations"]  # discovered through the entry-point group
    records = LocalStore(tmp_path / "traces.db").observations()
    assert [(r["type"], r["name"], r["tenant"], r["output"]) for r in records] == [
        ("agent", "zero-code-app", "acme", "ok")
    ]


def test_subprocesses_traced_when_asked(tmp_path: Path) -> None:
    result = _run(tmp_path, *_autotrace_cli(), extra_env={"AUTOTRACE_TRACE_SUBPROCESSES": "true"})
    assert json.loads(result.stdout.strip().splitlines()[-1])["child_installed"] == "True"


def test_existing_user_sitecustomize_still_runs(tmp_path: Path) -> None:
    user_site = tmp_path / "usersite"
    user_site.mkdir()
    (user_site / "sitecustomize.py").write_text("import os\nos.environ['USER_SITECUSTOMIZE_RAN'] = 'yes'\n")
    result = _run(tmp_path, *_autotrace_cli(), extra_env={"PYTHONPATH": str(user_site)})
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["user_site"] == "yes" and report["installed"] is True


def test_bad_configuration_never_stops_the_app(tmp_path: Path) -> None:
    result = _run(tmp_path, *_autotrace_cli(), extra_env={"AUTOTRACE_QUEUE_SIZE": "lots"})
    assert result.returncode == 0
    assert json.loads(result.stdout.strip().splitlines()[-1])["installed"] is False
    assert "AUTOTRACE_QUEUE_SIZE='lots' is invalid" in result.stderr


def test_run_without_a_command_or_with_a_missing_one(tmp_path: Path) -> None:
    assert subprocess.run([*_autotrace_cli(), "run"], capture_output=True, check=False).returncode == 2
    missing = subprocess.run([*_autotrace_cli(), "run", "--", "no-such-program-xyz"], capture_output=True,
                             text=True, check=False)
    assert missing.returncode == 127 and "cannot run 'no-such-program-xyz'" in missing.stderr


def test_arguments_after_the_program_are_its_own(tmp_path: Path) -> None:
    script = "import sys; print(sys.argv[1:])"
    for separator in ([], ["--"]):
        result = subprocess.run([*_autotrace_cli(), "run", *separator, sys.executable, "-c", script, "a", "--", "b"],
                                capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "['a', '--', 'b']"


def test_a_store_locked_at_start_up_is_opened_later(tmp_path: Path) -> None:
    db = tmp_path / "traces.db"
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("BEGIN IMMEDIATE")  # another process is writing while the app starts
    writer.execute("CREATE TABLE other (a)")
    app = tmp_path / "app.py"
    app.write_text("import autotrace\nprint(autotrace.local_store() is not None)\n")
    env = isolated_env(tmp_path)
    env.update({"AUTOTRACE_LOCAL_STORE": "on", "AUTOTRACE_LOCAL_STORE_PATH": str(db)})
    try:
        result = subprocess.run([*_autotrace_cli(), "run", "--", sys.executable, str(app)], capture_output=True,
                                text=True, env=env, timeout=120, check=False)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert result.returncode == 0 and result.stdout.strip() == "True"
    assert "unavailable" not in result.stderr and "locked" not in result.stderr


def test_a_broken_replay_spec_says_tracing_stays_on(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text("{not json")
    result = _run(tmp_path, *_autotrace_cli(), extra_env={"AUTOTRACE_REPLAY_FILE": str(spec)})
    assert result.returncode == 0
    assert json.loads(result.stdout.strip().splitlines()[-1])["installed"] is True
    assert "replay is off" in result.stderr and "tracing is off" not in result.stderr
