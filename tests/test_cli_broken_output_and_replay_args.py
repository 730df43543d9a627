"""The CLI: output that cannot fail on its way out (a closed pipe, a console encoding
without the tree's characters), a damaged store record, ``replay`` arguments that would be ignored
or name nothing, and ``compare`` leaving replays out."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from autotrace import cli
from autotrace.compare import compare_versions, render_comparison
from autotrace.export.local_store import LocalStore
from autotrace.replay import parse_overrides
from tests.helpers import isolated_env

NOW = time.time_ns()
TRACE = "ab" * 16


def _record(span_id: str, parent: str | None, name: str, trace_id: str = TRACE, **fields: Any) -> dict[str, Any]:
    record = {"trace_id": trace_id, "id": span_id, "parent_id": parent, "name": name, "type": "span",
              "tenant": "acme", "start_ns": NOW, "end_ns": NOW + 10**6, "level": "DEFAULT", "model": None,
              "usage": None, "cost": None, "duration_ms": 1.0}
    record.update(fields)
    return record


def _store(path: Path, records: list[dict[str, Any]]) -> str:
    store = LocalStore(path)
    store.write(records)
    store.close()
    return str(path)


def _turn(path: Path) -> str:
    """One trace: a chain with a tool and a generation under it, named with non-ASCII text."""
    return _store(path, [
        _record("1" * 16, None, "tour-Straße", type="chain"),
        _record("2" * 16, "1" * 16, "lookup", type="tool", start_ns=NOW + 1),
        _record("3" * 16, "1" * 16, "answer", type="generation", model="m", start_ns=NOW + 2),
    ])


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotrace", *argv], capture_output=True, text=True,
                          encoding="utf-8", timeout=60, env=os.environ if env is None else env, check=False)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    """``autotrace traces | head -1``: the closed pipe gives exit 141 and no traceback."""
    db = _store(tmp_path / "t.db", [_record("1" * 16, None, f"turn-{i}", trace_id=f"{i:032x}", start_ns=NOW + i)
                                    for i in range(3000)])  # ~250 KB of table: more than a pipe holds
    process = subprocess.Popen([sys.executable, "-m", "autotrace", "--db", db, "traces", "--limit", "3000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"TRACE ")
    process.stdout.close()
    assert process.wait(60) == cli.EXIT_BROKEN_PIPE == 141
    assert process.stderr.read() == b""


def test_a_console_encoding_without_the_trees_characters_gets_escapes(tmp_path: Path) -> None:
    db = _turn(tmp_path / "t.db")
    shown = _cli("--db", db, "show", "abab", env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert (shown.returncode, shown.stderr) == (0, "")
    assert shown.stdout.splitlines()[1:3] == ["\\u2514\\u2500 [CHAIN] tour-Stra\\xdfe  1.0ms  #11111111",
                                              "   \\u251c\\u2500 [TOOL] lookup  1.0ms  #22222222"]
    found = _cli("--db", db, "query", "name~straße", "--json", env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert (found.returncode, found.stderr) == (0, "")
    assert [r["name"] for r in json.loads(found.stdout)] == ["tour-Straße"]  # escaped as \u00df: still JSON
    assert "\\u00df" in found.stdout


@pytest.mark.parametrize("damage", ["{not json", "5"])
def test_a_damaged_record_is_a_one_line_store_error(tmp_path: Path, damage: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    db = _turn(tmp_path / "t.db")
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE observations SET record = ? WHERE id = ?", (damage, "1" * 16))
    for argv in (["traces"], ["show", "abab"], ["query", "type=chain"]):
        code, out, err = _run(capsys, "--db", db, *argv, "--json")
        assert code == 1, argv
        error = json.loads(out)["error"]
        assert error["kind"] == "store" and error["message"].startswith(f"local store {db} holds a damaged "
                                                                         "observation (")
        assert error["message"].endswith("); move the file away to start a new store, or pass --db")
        assert err == f"autotrace: {error['message']}\n"


def test_replay_refuses_overrides_on_an_observation_that_is_no_generation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--set model=...`` on a tool would change nothing and report "no difference": refused, before the
    program runs."""
    db = _turn(tmp_path / "t.db")
    marker = tmp_path / "ran"
    program = ["--", sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    code, out, err = _run(capsys, "--db", db, "replay", "abab", "--at", "2222", "--set", "model=gpt-4o", *program)
    assert (code, out) == (2, "")
    assert err == (f"autotrace replay: --at {'2' * 16} is a tool (lookup); --set and --messages-file apply to a "
                   "generation\n")
    assert not marker.exists()


def test_replay_at_that_names_nothing_lists_the_generations(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    db = _turn(tmp_path / "t.db")
    for at, found in (("9", "matches no observation"), ("", "matches no observation")):
        code, out, err = _run(capsys, "--db", db, "replay", "abab", "--at", at, "--", sys.executable, "-c", "")
        assert (code, out) == (2, "")
        assert err == f"autotrace replay: --at {at!r} {found} of trace {TRACE}; its generations: {'3' * 16} (answer)\n"


def test_a_messages_file_error_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "m.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match=f"^--messages-file {broken} is not a JSON list of messages \\(Expecting"):
        parse_overrides([], str(broken))
    with pytest.raises(ValueError, match=f"^--messages-file {tmp_path / 'none.json'}: No such file or directory$"):
        parse_overrides([], str(tmp_path / "none.json"))


def test_compare_leaves_replays_out() -> None:
    """A replay ran with overridden model and parameters, its frozen calls not at all: no sample of a version."""
    def generation(i: int, version: int, replay_of: str | None = None) -> dict[str, Any]:
        return {"id": f"{i:016x}", "trace_id": f"{i:032x}", "type": "generation", "duration_ms": 10.0 + i,
                "usage": {"total": 100}, "cost": {"total": 0.001}, "level": "DEFAULT", "error": False,
                "prompt": {"name": "answer", "version": version}, "replay_of": replay_of}

    records = [generation(i, 1 + i % 2) for i in range(10)] + [generation(100 + i, 2, f"{i:032x}") for i in range(5)]
    report = compare_versions(records, [], "answer", 1, 2)
    assert (report["count_a"], report["count_b"]) == (5, 5)
    tokens = next(m for m in report["metrics"] if m["metric"] == "tokens")
    assert (tokens["a_p50"], tokens["b_p50"]) == (100.0, 100.0)


def test_compare_text_escapes_recorded_score_names() -> None:
    """A score name is recorded text: printed raw, an escape sequence would reach the terminal."""
    records = [{"id": f"{i:016x}", "trace_id": f"{i:032x}", "type": "generation", "duration_ms": 1.0,
                "prompt": {"name": "answer", "version": 1 + i % 2}} for i in range(4)]
    scores = [{"name": "qual\x1b[2J\nity", "value": 1.0, "observation_id": f"{i:016x}", "trace_id": f"{i:032x}"}
              for i in range(4)]
    text = render_comparison(compare_versions(records, scores, "answer", 1, 2))
    assert "\x1b" not in text and len(text.splitlines()) == 10  # with a note each: no tokens, no cost
    assert text.splitlines()[6].startswith("score:qual\\x1b[2J\\nity ")


BATCH_APP = textwrap.dedent("""
    import autotrace
    with autotrace.tenant("acme"):
        with autotrace.start_chain("turn"):
            with autotrace.start_generation("answer", model="m") as g:
                g.set_output("answer")
        for i in range(3):  # later traces of the same run: they replay the original too
            with autotrace.start_span(f"housekeeping-{i}"):
                pass
""")


def test_replay_shows_the_replayed_turn_not_the_runs_last_trace(tmp_path: Path) -> None:
    db, app = tmp_path / "cli.db", tmp_path / "app.py"
    app.write_text(BATCH_APP, encoding="utf-8")
    env = isolated_env(tmp_path)
    env.update({"AUTOTRACE_LOCAL_STORE_PATH": str(db), "AUTOTRACE_EXPORT_INTERVAL": "0.05"})
    assert _cli("run", "--", sys.executable, str(app), env=env).returncode == 0
    store = LocalStore(db, read_only=True)
    (original,) = [t["trace_id"] for t in store.traces() if t["name"] == "turn"]
    at = next(r["id"] for r in store.trace(original) if r["name"] == "answer")
    result = _cli("replay", original, "--at", at, "--", sys.executable, str(app), env=env)
    assert result.returncode == 0, result.stderr
    (replayed,) = [t for t in store.traces() if t["name"] == "turn" and t["trace_id"] != original]
    assert replayed["replay_of"] == original
    assert f"\nreplay {replayed['trace_id']} of {original}\nno difference\n" in result.stdout


def test_ctrl_c_ends_the_command_without_a_traceback(tmp_path: Path) -> None:
    """Ctrl-C while ``replay`` waits for its program: exit 130, nothing on stderr."""
    db = _turn(tmp_path / "t.db")
    started = tmp_path / "started"
    program = f"import time; open({str(started)!r}, 'w').close(); time.sleep(60)"
    process = subprocess.Popen([sys.executable, "-m", "autotrace", "--db", db, "replay", "abab", "--at", "3333", "--",
                                sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert started.exists()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert (process.returncode, stdout, stderr) == (cli.EXIT_INTERRUPTED, b"", b"")


def test_query_says_when_the_limit_left_matches_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = _store(tmp_path / "t.db", [_record(f"{i:016x}", None, f"step-{i}", type="tool", start_ns=NOW + i)
                                    for i in range(1, 4)])
    code, out, err = _run(capsys, "--db", db, "query", "type=tool", "--limit", "2", "--json")
    assert (code, [r["name"] for r in json.loads(out)]) == (0, ["step-3", "step-2"])
    assert err == "autotrace: the newest 2 matches shown; more match (--limit to see more)\n"
    code, out, err = _run(capsys, "--db", db, "query", "type=tool", "--limit", "3", "--json")
    assert (code, len(json.loads(out)), err) == (0, 3, "")  # exactly the limit: nothing left out


CHDIR_APP = textwrap.dedent("""
    import os, autotrace
    os.makedirs("elsewhere", exist_ok=True)
    os.chdir("elsewhere")
    autotrace.install(export_interval=0.07)  # new options: the store is opened again, after the chdir
    with autotrace.tenant("acme"), autotrace.start_chain("turn"):
        with autotrace.start_generation("answer", model="m") as g:
            g.set_output("answer")
""")


def test_replay_with_a_relative_db_finds_the_run_of_a_program_that_changes_directory(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(CHDIR_APP, encoding="utf-8")
    env = isolated_env(tmp_path)

    def cli_in_tmp(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "autotrace", "--db", "t.db", *argv], capture_output=True,
                              text=True, timeout=60, env=env, cwd=tmp_path, check=False)

    assert cli_in_tmp("run", "--", sys.executable, "app.py").returncode == 0
    store = LocalStore(tmp_path / "t.db", read_only=True)
    (original,) = [t["trace_id"] for t in store.traces()]
    at = next(r["id"] for r in store.trace(original) if r["name"] == "answer")
    result = cli_in_tmp("replay", original, "--at", at, "--", sys.executable, "app.py")  # no model request to --set
    assert result.returncode == 0, result.stderr
    (replayed,) = [t["trace_id"] for t in store.traces() if t["replay_of"] == original]
    assert f"\nreplay {replayed} of {original}\n" in result.stdout
    assert not (tmp_path / "elsewhere" / "t.db").exists()
