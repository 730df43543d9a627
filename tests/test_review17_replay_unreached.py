"""``autotrace replay`` whose program never reaches the chosen generation says so and fails: its
overrides were never applied, so the replay tried nothing (the real CLI, a real traced program)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from autotrace.export.local_store import LocalStore
from tests.helpers import autotrace_cli, isolated_env

APP = textwrap.dedent("""
    import sys, autotrace

    @autotrace.observe(as_type="evaluator", name="judge")
    def judge(answer, target):
        with autotrace.start_generation("judge-call", model="m") as g:
            g.set_output("good")
        return 1.0

    with autotrace.start_chain("turn"):
        with autotrace.start_generation("answer", model="m") as g:
            g.set_output("ships today")
            if "--judge" in sys.argv:  # the recorded run judged its answer; a later run may not
                judge("ships today", g)
""")


def test_a_replay_that_never_reaches_the_chosen_generation_fails(tmp_path: Path) -> None:
    db, app = tmp_path / "traces.db", tmp_path / "app.py"
    app.write_text(APP)
    (tmp_path / "tmp").mkdir()
    env = isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(db), AUTOTRACE_EXPORT_INTERVAL="0.05",
                       TMPDIR=str(tmp_path / "tmp"))
    assert autotrace_cli(env, tmp_path, "run", "--", sys.executable, str(app), "--judge").returncode == 0
    (trace,) = LocalStore(db).traces()
    at = next(r["id"] for r in LocalStore(db).trace(trace["trace_id"]) if r["name"] == "judge-call")

    unreached = autotrace_cli(env, tmp_path, "replay", trace["trace_id"], "--at", at[:8], "--set", "model=m2", "--",
                     sys.executable, str(app))
    # before: exit 0, the replay reported as any other, the override silently never applied
    assert unreached.returncode == 1
    assert "first difference: 1.1.1: evaluator 'judge' exists only in the original" in unreached.stdout
    assert unreached.stderr == (f"autotrace replay: the program never reached the chosen observation {at} "
                                f"(generation 'judge-call'): nothing ran with the overrides\n")

    reached = autotrace_cli(env, tmp_path, "replay", trace["trace_id"], "--at", at[:8], "--",  # no model request
                   sys.executable, str(app), "--judge")  # to override: --set fails (test_review18_replay_overrides_unapplied)
    assert (reached.returncode, reached.stderr) == (0, "")
    assert "first difference" not in reached.stdout and "\nno difference\n" in reached.stdout
    assert list((tmp_path / "tmp").iterdir()) == []  # the replay's files removed
