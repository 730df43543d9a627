"""The local store and CLI against what was recorded: strict ``--json``, whole-trace retention that
never runs on the caller's thread, the root's name in the trace list, costs given in parts, and
``replay``/``compare`` exit codes."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace import cli
from autotrace.export.local_store import LocalStore
from tests.helpers import Traced, isolated_env

DAY = 86400 * 10**9


def _record(span_id: str, parent: str | None, name: str, start_ns: int, end_ns: int, **fields: Any) -> dict[str, Any]:
    record = {"trace_id": "ab" * 16, "id": span_id, "parent_id": parent, "name": name, "type": "span",
              "tenant": "acme", "start_ns": start_ns, "end_ns": end_ns, "level": "DEFAULT", "model": None,
              "usage": None, "cost": None, "duration_ms": (end_ns - start_ns) / 1e6}
    record.update(fields)
    return record


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0])


def _strict(text: str) -> Any:
    def reject(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=reject)


def test_json_output_is_strict_with_non_finite_values(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    with autotrace.tenant("acme"), autotrace.start_chain("root") as root:
        with autotrace.start_generation("g", model="m") as gen:
            gen.update(usage={"total": 2}, cost={"total": math.inf}, metadata={"ratio": math.nan})
    traced.records()
    for argv in (["traces", "--json"], ["show", root.trace_id, "--json"], ["query", "type=generation", "--json"]):
        assert cli.main(["--db", str(traced.path), *argv]) == 0
        data = _strict(capsys.readouterr().out)
        assert data  # NaN and infinity, which JSON cannot hold, are null
    assert cli.main(["--db", str(traced.path), "query", "type=generation", "--json"]) == 0
    (gen_record,) = _strict(capsys.readouterr().out)
    assert gen_record["cost"]["total"] is None and gen_record["metadata"]["ratio"] is None
    assert gen_record["usage"]["total"] == 2


def test_a_cost_given_in_parts_is_summed_as_langfuse_does(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    with autotrace.tenant("acme"), autotrace.start_chain("root") as root:
        with autotrace.start_generation("g", model="m") as gen:
            gen.update(usage={"input": 10, "output": 5}, cost={"input": 0.1, "output": 0.2})
    traced.records()
    assert cli.main(["--db", str(traced.path), "traces", "--json"]) == 0
    assert _strict(capsys.readouterr().out)[0]["cost"] == pytest.approx(0.3)
    assert cli.main(["--db", str(traced.path), "show", root.trace_id]) == 0
    assert "$0.300000" in capsys.readouterr().out


def test_opening_the_store_leaves_the_purge_to_the_first_write(tmp_path: Path) -> None:
    """``install()`` opens the store on the application's thread: a large purge there blocked it for
    seconds, so expired rows go with the first write, on the export thread."""
    db = tmp_path / "t.db"
    old = time.time_ns() - 40 * DAY
    store = LocalStore(db, retention_days=1000)
    store.write([_record(f"{i + 1:016x}", None, "old", old, old + 1, trace_id=f"{i:032x}") for i in range(50)])
    recent = time.time_ns() - DAY  # the store's newest trace bounds the cutoff (a clock set forward)
    store.write([_record("2" * 16, None, "recent", recent, recent + 1, trace_id="ab" * 16)])
    store.close()
    store = LocalStore(db, retention_days=28)
    assert _rows(db) == 51
    now = time.time_ns()
    store.write([_record("1" * 16, None, "new", now, now + 1)])
    assert _rows(db) == 2
    store.close()


def test_purge_keeps_a_trace_that_straddles_the_cutoff_whole(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time_ns()
    start = now - DAY - 10**9
    store = LocalStore(tmp_path / "t.db", retention_days=1000)
    usage = {"usage": {"total": 100}}
    store.write([_record("1" * 16, None, "turn", start, now - DAY + 2 * 10**9),  # ends after the cutoff
                 _record("2" * 16, "1" * 16, "early", start, start + 10**6, **usage),  # ended before it
                 _record("3" * 16, None, "old", start, start + 1, trace_id="cd" * 16)])
    store.close()
    store = LocalStore(tmp_path / "t.db", retention_days=1)
    assert store.purge(now) == 1  # only the trace that ended entirely before the cutoff
    store.close()
    assert cli.main(["--db", str(tmp_path / "t.db"), "traces", "--json"]) == 0
    (summary,) = _strict(capsys.readouterr().out)
    assert (summary["trace_id"], summary["observations"], summary["tokens"]) == ("ab" * 16, 2, 100)


def test_trace_list_names_the_root_even_when_a_child_starts_with_it(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time_ns()
    store = LocalStore(tmp_path / "t.db")
    store.write([_record("1" * 16, "2" * 16, "child-step", now, now + 1)])  # children end, so arrive, first
    store.write([_record("2" * 16, None, "checkout-turn", now, now + 2)])
    store.write([_record("3" * 16, "f" * 16, "remote-child", now, now + 1, trace_id="cd" * 16),  # skewed clock
                 _record("4" * 16, "e" * 16, "served", now + 5, now + 9, trace_id="cd" * 16)])  # parent upstream
    store.close()
    assert cli.main(["--db", str(tmp_path / "t.db"), "traces", "--json"]) == 0
    names = {s["trace_id"]: s["name"] for s in _strict(capsys.readouterr().out)}
    assert names["ab" * 16] == "checkout-turn"
    assert names["cd" * 16] == "remote-child"  # no parent in the trace for either: the earliest


def _cli(db: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = isolated_env(db.parent)
    return subprocess.run([sys.executable, "-m", "autotrace", "--db", str(db), *argv], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_replay_of_a_program_that_cannot_run_is_a_one_line_error(tmp_path: Path) -> None:
    now = time.time_ns()
    store = LocalStore(tmp_path / "t.db")
    store.write([_record("1" * 16, None, "answer", now, now + 1, type="generation")])
    store.close()
    result = _cli(tmp_path / "t.db", "replay", "ab", "--at", "1111", "--", str(tmp_path / "no-such-program"))
    assert result.returncode == 127 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr == (f"autotrace replay: cannot run {str(tmp_path / 'no-such-program')!r}: "
                             "No such file or directory\n")


def test_compare_fails_when_a_version_has_no_generations(tmp_path: Path) -> None:
    """A mistyped prompt name or version compared nothing and passed ``--fail-on-regression``."""
    now = time.time_ns()
    store = LocalStore(tmp_path / "t.db")
    store.write([_record(f"{i + 1:016x}", None, "answer", now, now + 10**6, trace_id=f"{i:032x}", type="generation",
                         prompt={"name": "answer", "version": 1}) for i in range(3)])
    store.close()
    result = _cli(tmp_path / "t.db", "compare", "--prompt", "answer", "1", "2", "--fail-on-regression", "--json")
    assert result.returncode == 1
    assert _strict(result.stdout)["count_a"] == 3 and _strict(result.stdout)["count_b"] == 0
    assert result.stderr.endswith("no generations of prompt 'answer' version 2 in " + str(tmp_path / "t.db") + "\n")
    assert _cli(tmp_path / "t.db", "compare", "--prompt", "answer", "1", "1").returncode == 0
    for alpha in ("5", "0", "nan", "x"):
        result = _cli(tmp_path / "t.db", "compare", "--prompt", "answer", "1", "1", "--alpha", alpha)
        assert result.returncode == 2 and "must be a number between 0 and 1" in result.stderr


def test_a_span_the_store_cannot_read_is_dropped_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault reading one span (a bug, an attribute of another library's span) costs that span
    only, not the batch it was written with."""
    from autotrace.export import local_sink

    def reading(span: Any) -> dict[str, Any]:
        if span.name == "broken":
            raise RuntimeError("cannot read this span")
        return real(span)

    real = local_sink.span_record
    monkeypatch.setattr(local_sink, "span_record", reading)
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=5)
    with autotrace.start_chain("turn"):
        with autotrace.start_span("broken"):
            pass
        with autotrace.start_span("fine"):
            pass
    assert autotrace.flush(5)  # one batch: the interval is long
    store = autotrace.local_store()
    (summary,) = store.traces()
    assert sorted(r["name"] for r in store.trace(summary["trace_id"])) == ["fine", "turn"]
    assert autotrace.stats()["spans_dropped.unreadable"] == 1


def test_a_lone_surrogate_costs_no_span_of_its_batch(tmp_path: Path) -> None:
    """Text decoded with ``surrogateescape`` (file names, subprocess output) in one span or score is
    not UTF-8: SQLite refused the batch, which was retried forever and lost with every span in it."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=5)
    with autotrace.tenant("acme"), autotrace.start_chain("turn") as turn:
        with autotrace.start_tool("read") as tool:
            tool.set_output("bytes \udcff from a file name")
        with autotrace.start_span("name \ud800 here"):
            pass
        with autotrace.start_span("fine"):
            pass
    autotrace.score("quality", 1.0, trace_id=turn.trace_id, comment="odd \udcfe text")
    assert autotrace.flush(5)  # one batch: the interval is long
    result = _cli(tmp_path / "t.db", "show", turn.trace_id, "--json")
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in _strict(result.stdout)}
    assert sorted(records) == ["fine", "name \ufffd here", "read", "turn"]
    assert records["read"]["output"] == "bytes \ufffd from a file name"
    (score,) = autotrace.local_store().scores(turn.trace_id)
    assert score["comment"] == "odd \ufffd text"
    assert autotrace.stats()["local_store.invalid_text"] >= 2


def test_run_writes_to_the_store_given_with_db(tmp_path: Path) -> None:
    """``autotrace --db X run ...`` ignored ``--db``: the program wrote to the default store and
    ``autotrace --db X traces`` found nothing."""
    app = tmp_path / "app.py"
    app.write_text("import autotrace\nwith autotrace.start_chain('from-run'):\n    pass\nautotrace.flush(5)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRACE_", "LANGFUSE_", "OTEL_"))}
    env["HOME"] = str(tmp_path / "home")
    result = subprocess.run([sys.executable, "-m", "autotrace", "--db", "t.db", "run", sys.executable, str(app)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "home" / ".autotrace").exists()
    listed = _cli(tmp_path / "t.db", "traces", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [t["name"] for t in _strict(listed.stdout)] == ["from-run"]


def test_compare_reads_the_store_once_in_bounded_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """compare loaded every observation of the store, inputs and outputs included, to keep a few
    fields of one prompt's generations: a large store took its size in memory (860 MB for 300k)."""
    import tracemalloc

    from autotrace.compare import compare_versions

    now = time.time_ns()
    big = "x" * 50_000
    store = LocalStore(tmp_path / "t.db")
    store.write([_record(f"{i + 1:016x}", None, "step", now + i, now + i + 10**6, trace_id=f"{i:032x}", type="tool",
                         input=big) for i in range(1000)])
    store.write([_record(f"{i + 1:016x}", None, "answer", now + i, now + i + 10**6, trace_id=f"{i + 5000:032x}",
                         type="generation", input=big, prompt={"name": "answer", "version": 1 + i % 2})
                 for i in range(40)])
    store.close()
    tracemalloc.start()
    try:
        assert cli.main(["--db", str(tmp_path / "t.db"), "compare", "--prompt", "answer", "1", "2", "--json"]) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    report = _strict(capsys.readouterr().out)
    assert (report["count_a"], report["count_b"]) == (20, 20)
    assert peak < 20_000_000, peak  # the store holds 52 MB of inputs
    records = iter(LocalStore(tmp_path / "t.db", read_only=True).observations())  # any iterable, read once
    assert compare_versions(records, [], "answer", 1, 2)["count_b"] == 20


def test_traces_of_a_tenant_are_summed_whole(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    """``traces --tenant`` filtered rows, not traces: a root started before the tenant was set was
    left out of the duration, the observation count and the errors of its own trace."""
    with autotrace.start_chain("request") as root:
        with autotrace.tenant("acme"), autotrace.start_generation("answer", model="m") as gen:
            gen.update(usage={"total": 5})
        root.update(level="ERROR", status_message="failed after the answer")
    traced.records()
    assert cli.main(["--db", str(traced.path), "traces", "--json"]) == 0
    (whole,) = _strict(capsys.readouterr().out)
    assert cli.main(["--db", str(traced.path), "traces", "--tenant", "acme", "--json"]) == 0
    (listed,) = _strict(capsys.readouterr().out)
    assert listed == whole
    assert (listed["observations"], listed["errors"], listed["tokens"]) == (2, 1, 5)
    assert cli.main(["--db", str(traced.path), "traces", "--tenant", "beta", "--json"]) == 0
    assert _strict(capsys.readouterr().out) == []


def test_run_of_a_program_that_is_not_executable_exits_126_as_a_shell_would(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text("print('hi')\n")  # no execute bit
    missing = _cli(tmp_path / "t.db", "run", "--", str(tmp_path / "no-such-program"))
    not_executable = _cli(tmp_path / "t.db", "run", "--", str(script))
    assert (missing.returncode, not_executable.returncode) == (127, 126)
    assert not_executable.stderr == f"autotrace run: cannot run {str(script)!r}: Permission denied\n"
