"""A replay whose calls are not recorded (a sampler configured for production, ``OTEL_TRACES_SAMPLER``,
or tracing turned off) could not match them to the recording: every call ran live, a tool's side
effect done again, and ``autotrace replay`` then said only that no replay trace was recorded. The
command now records every trace of the replayed program and refuses to replay with tracing off;
``replay()`` stops (``ReplayStop``) at a call it cannot record instead of running it live (the real
CLI, a real traced program in a child interpreter)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from autotrace.export.local_store import LocalStore
from tests.helpers import autotrace_cli, isolated_env

APP = textwrap.dedent("""
    import sys, autotrace

    @autotrace.traced_tool(name="issue_refund")
    def issue_refund(order_id):
        with open(sys.argv[1], "a") as done:  # the side effect a replay must not do again
            done.write(order_id + "\\n")
        return {"refund": "R-1", "order_id": order_id}

    def turn():
        with autotrace.start_chain("turn"):
            refund = issue_refund("o-7")
            with autotrace.start_generation("answer", model="m") as g:
                g.set_output(f"refunded {refund['refund']}")

    if __name__ == "__main__":
        turn()
""")

REPLAY_IN_PYTHON = textwrap.dedent("""
    import json, sys, autotrace
    from autotrace.replay import ReplayStop, replay
    sys.path.insert(0, sys.argv[3])
    from app import turn

    autotrace.install(local_store="off")
    records = json.loads(open(sys.argv[2]).read())
    at = next(r["id"] for r in records if r["name"] == "answer")
    try:
        replay(records, at, turn)
    except ReplayStop as stop:
        print("stopped:", stop)
""")


def _recorded(tmp_path: Path) -> tuple[dict[str, str], Path, str, str]:
    """The environment, the side-effect file, and the trace and answer of one recorded run."""
    db, app, done = tmp_path / "traces.db", tmp_path / "app.py", tmp_path / "refunds.txt"
    app.write_text(APP)
    (tmp_path / "tmp").mkdir()
    env = isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(db), AUTOTRACE_EXPORT_INTERVAL="0.05",
                       TMPDIR=str(tmp_path / "tmp"))
    assert autotrace_cli(env, tmp_path, "run", "--", sys.executable, str(app), str(done)).returncode == 0
    (trace,) = LocalStore(db).traces()
    at = next(r["id"] for r in LocalStore(db).trace(trace["trace_id"]) if r["name"] == "answer")
    assert done.read_text() == "o-7\n"
    return env, done, trace["trace_id"], at


def test_the_replay_command_records_its_run_whatever_sampler_is_configured(tmp_path: Path) -> None:
    env, done, trace, at = _recorded(tmp_path)
    sampled = {**env, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    result = autotrace_cli(sampled, tmp_path, "replay", trace, "--at", at[:8], "--", sys.executable,
                           str(tmp_path / "app.py"), str(done))
    # before: exit 1 ("recorded no replay trace"), the refund issued a second time
    assert (result.returncode, result.stderr) == (0, "")
    assert "\nno difference\n" in result.stdout
    assert done.read_text() == "o-7\n"
    (replayed,) = [s for s in LocalStore(tmp_path / "traces.db").traces() if s["replay_of"] == trace]
    assert [(r["name"], (r["metadata"] or {}).get("replay")) for r in
            LocalStore(tmp_path / "traces.db").trace(replayed["trace_id"])] == [
        ("turn", None), ("issue_refund", "frozen"), ("answer", None)]


def test_the_replay_command_refuses_to_run_with_tracing_off(tmp_path: Path) -> None:
    env, done, trace, at = _recorded(tmp_path)
    for variable, value in (("AUTOTRACE_ENABLED", "false"), ("OTEL_SDK_DISABLED", "true")):
        result = autotrace_cli({**env, variable: value}, tmp_path, "replay", trace, "--at", at[:8], "--",
                               sys.executable, str(tmp_path / "app.py"), str(done))
        # before: exit 1 after the program ran every call live
        assert result.returncode == 2
        assert result.stderr == (f"autotrace replay: autotrace is disabled ({variable}): a replay needs tracing on "
                                 f"to freeze the calls before --at; nothing was run\n")
        assert result.stdout == ""
    assert done.read_text() == "o-7\n"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_replay_stops_at_a_call_its_sampler_leaves_unrecorded(tmp_path: Path) -> None:
    env, done, trace, _ = _recorded(tmp_path)
    spec, program = tmp_path / "records.json", tmp_path / "replay_it.py"
    spec.write_text(autotrace_cli(env, tmp_path, "show", trace, "--json").stdout)
    program.write_text(REPLAY_IN_PYTHON)
    result = subprocess.run([sys.executable, str(program), str(done), str(spec), str(tmp_path)],
                            env={**env, "OTEL_TRACES_SAMPLER": "always_off"}, capture_output=True, text=True,
                            timeout=60, check=False)
    # before: the call ran live (an internal error logged), the refund issued a second time
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == ("stopped: replay stopped: this run is not recorded (the sampler left its trace out: "
                             "OTEL_TRACES_SAMPLER, or tracing is off), so its calls cannot be matched to the "
                             "recording; none is run live in its place\n")
    assert done.read_text() == "o-7\n"
