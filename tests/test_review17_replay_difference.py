"""``autotrace replay``'s first difference counts a call that failed in one run and not in the other,
even when neither recorded an output (a tool run for its effect): never "no difference" for a replay
whose step failed (the real CLI, a real traced program)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from autotrace.export.local_store import LocalStore
from tests.helpers import autotrace_cli, isolated_env

APP = textwrap.dedent("""
    import os, autotrace

    @autotrace.traced_tool(name="notify")
    def notify(text):
        if os.environ.get("SMTP_DOWN"):
            raise ConnectionError("smtp down")

    with autotrace.start_chain("turn"):
        with autotrace.start_generation("answer", model="m") as g:
            g.set_output("ships today")
        try:
            notify("ships today")
        except ConnectionError:
            print("not notified")
""")


def test_a_step_that_failed_only_in_the_replay_is_the_first_difference(tmp_path: Path) -> None:
    db, app = tmp_path / "traces.db", tmp_path / "app.py"
    app.write_text(APP)
    env = isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(db), AUTOTRACE_EXPORT_INTERVAL="0.05")
    assert autotrace_cli(env, tmp_path, "run", "--", sys.executable, str(app)).returncode == 0
    (trace,) = LocalStore(db).traces()
    at = next(r["id"] for r in LocalStore(db).trace(trace["trace_id"]) if r["name"] == "answer")

    same = autotrace_cli(env, tmp_path, "replay", trace["trace_id"], "--at", at, "--", sys.executable, str(app))
    assert (same.returncode, same.stderr) == (0, "") and same.stdout.endswith("\nno difference\n")

    failing = autotrace_cli({**env, "SMTP_DOWN": "1"}, tmp_path, "replay", trace["trace_id"], "--at", at, "--",
                   sys.executable, str(app))
    assert (failing.returncode, failing.stderr) == (0, "")
    assert failing.stdout.startswith("not notified\n")
    # before: "no difference", the tool's output None in both runs
    assert failing.stdout.endswith(
        "\nfirst difference: 1.2: tool 'notify' failed in the replay (ConnectionError: smtp down), not in the "
        "original\n")
