"""The local store and CLI: ``show`` prints a trace's scores, scores are purged with their
trace, and ``--json`` errors are JSON on stdout."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace import cli, render
from autotrace.export.local_store import LocalStore
from tests.helpers import Traced

DAY = 86400 * 10**9
NOW = time.time_ns()
TRACE = "ab" * 16


def _record(span_id: str, parent: str | None, name: str, **fields: Any) -> dict[str, Any]:
    record = {"trace_id": TRACE, "id": span_id, "parent_id": parent, "name": name, "type": "span",
              "tenant": "acme", "start_ns": NOW, "end_ns": NOW + 10**6, "level": "DEFAULT", "model": None,
              "usage": None, "cost": None, "duration_ms": 1.0}
    record.update(fields)
    return record


def _score(score_id: str, name: str, value: Any, data_type: str, observation_id: str | None = None,
           trace_id: str = TRACE, comment: str | None = None) -> dict[str, Any]:
    return {"id": score_id, "trace_id": trace_id, "observation_id": observation_id, "name": name, "value": value,
            "data_type": data_type, "comment": comment, "tenant": "acme"}


def _scored_store(path: Path) -> Path:
    store = LocalStore(path)
    store.write([_record("1" * 16, None, "turn", type="chain"),
                 _record("2" * 16, "1" * 16, "answer", type="generation", model="m", input="hi",
                         start_ns=NOW + 1)])
    for score in (_score("s1", "accuracy", 0.75, "NUMERIC", "2" * 16, comment="close enough"),
                  _score("s2", "helpful", 1, "BOOLEAN", "2" * 16),
                  _score("s3", "label", "pass", "CATEGORICAL"),
                  _score("s4", "latency_ok", 0, "BOOLEAN", "9" * 16),
                  _score("s5", "count", 3, "NUMERIC", "1" * 16),
                  _score("s6", "other", 1.0, "NUMERIC", trace_id="cd" * 16)):
        store.add_score(score)
    store.close()
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_show_prints_each_score_under_its_observation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(_scored_store(tmp_path / "t.db"))
    assert _run(capsys, "--db", db, "show", "abab") == (0, "\n".join([
        f"trace {TRACE}  tenant=acme",
        "score: label=pass",
        "score: latency_ok=false  (observation 9999999999999999, not in the trace)",
        "└─ [CHAIN] turn  1.0ms  #11111111",
        "   │  score: count=3",
        "   └─ [GEN] answer  1.0ms  m  #22222222",
        "         in:  hi",
        "         score: accuracy=0.75  comment: close enough",
        "         score: helpful=true",
    ]) + "\n", "")
    code, out, _ = _run(capsys, "--db", db, "show", TRACE, "--no-io")
    assert code == 0 and "in:" not in out and "         score: helpful=true" in out


def test_show_json_carries_the_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(_scored_store(tmp_path / "t.db"))
    code, out, _ = _run(capsys, "--db", db, "show", TRACE, "--json")
    root, answer = json.loads(out)
    assert code == 0 and (root["name"], answer["name"]) == ("turn", "answer")
    assert root["scores"] == [{"id": "s5", "observation_id": "1" * 16, "name": "count", "value": 3.0,
                               "data_type": "NUMERIC", "comment": None}]
    assert root["trace_scores"] == [
        {"id": "s3", "observation_id": None, "name": "label", "value": "pass", "data_type": "CATEGORICAL",
         "comment": None},
        {"id": "s4", "observation_id": "9" * 16, "name": "latency_ok", "value": False, "data_type": "BOOLEAN",
         "comment": None},
    ]
    assert answer["scores"] == [
        {"id": "s1", "observation_id": "2" * 16, "name": "accuracy", "value": 0.75, "data_type": "NUMERIC",
         "comment": "close enough"},
        {"id": "s2", "observation_id": "2" * 16, "name": "helpful", "value": True, "data_type": "BOOLEAN",
         "comment": None},
    ]
    assert "trace_scores" not in answer


@autotrace.observe(as_type="evaluator", name="grounded")
def _grounded(target: autotrace.Observation) -> dict[str, Any]:
    return {"value": 0.5, "comment": "half"}


def test_show_prints_recorded_and_evaluator_scores(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    with autotrace.tenant("acme"), autotrace.start_chain("turn") as turn:
        with autotrace.start_generation("answer", model="m") as gen:
            gen.score("quality", 1, comment="fine\nthanks")
        _grounded(turn)
    autotrace.score("resolved", True, trace_id=turn.trace_id)
    traced.trace(turn.trace_id)
    code, out, _ = _run(capsys, "--db", str(traced.path), "show", turn.trace_id, "--no-io")
    assert code == 0
    assert [line for line in out.splitlines() if "score:" in line] == [
        "score: resolved=true",
        "   │  score: grounded=0.5  comment: half",
        "   │     score: quality=1  comment: fine thanks",
    ]


def test_scores_past_the_line_cap_are_counted() -> None:
    records = [_record("1" * 16, None, "turn")]
    scores = [_score(f"s{i}", f"n{i}", i, "NUMERIC", "1" * 16) for i in range(5)]
    assert render.render_tree(records, scores=scores, max_lines=4).splitlines()[1:] == [
        "└─ [SPAN] turn  1.0ms  #11111111", "      score: n0=0", "      score: n1=1",
        "… 3 of 5 scores not shown (on observations not shown or past 4 lines; --json prints them all)",
    ]


def _names(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM scores ORDER BY name")]


def test_scores_are_purged_with_their_trace_not_by_their_own_age(tmp_path: Path) -> None:
    """A score lived by its own creation time: one on an expired trace outlived it (an orphan), one on
    a kept trace was purged while its trace remained."""
    store = LocalStore(tmp_path / "t.db", retention_days=1000)  # its first write purges nothing
    store.write([_record("1" * 16, None, "kept", start_ns=NOW, end_ns=NOW + 3 * DAY),
                 _record("1" * 16, None, "expired", trace_id="cd" * 16, start_ns=NOW - 40 * DAY,
                         end_ns=NOW - 40 * DAY + 1)])
    store.add_score(_score("a", "on-kept", 1.0, "NUMERIC"))  # added now, days after the expired trace ended
    store.add_score(_score("b", "on-expired", 1.0, "NUMERIC", trace_id="cd" * 16))
    store.add_score(_score("c", "no-trace", 1.0, "NUMERIC", trace_id="ef" * 16))  # its trace not (yet) stored
    store.close()
    store = LocalStore(tmp_path / "t.db", retention_days=1)
    assert store.purge(now_ns=NOW) == 2  # the expired trace and its score
    assert _names(tmp_path / "t.db") == ["no-trace", "on-kept"]
    assert store.purge(now_ns=NOW + 2 * DAY) == 1  # the score older than the cutoff and with no trace
    assert _names(tmp_path / "t.db") == ["on-kept"]  # older than the cutoff too, but its trace is kept
    assert store.purge(now_ns=NOW + 5 * DAY) == 2  # the trace expires, its score with it
    assert _names(tmp_path / "t.db") == []
    store.close()


def _error(out: str) -> dict[str, Any]:
    document = json.loads(out)
    assert list(document) == ["error"] or "count_a" in document
    return document["error"]


@pytest.mark.parametrize(("argv", "code", "error"), [
    (["traces", "--json"], 1, {"kind": "store", "message": "no local store at {missing} (run something traced "
                                                           "first, or pass --db)"}),
    (["show", "abc", "--json"], 1, {"kind": "store", "message": "no local store at {missing} (run something "
                                                                "traced first, or pass --db)"}),
    (["query", "type=tool", "--json"], 1, {"kind": "store", "message": "no local store at {missing} (run "
                                                                       "something traced first, or pass --db)"}),
    (["compare", "--prompt", "p", "1", "2", "--json"], 1,
     {"kind": "store", "message": "no local store at {missing} (run something traced first, or pass --db)"}),
    (["show", "0123", "--json"], 1, {"kind": "not_found", "message": "no trace 0123"}),
    (["show", "xyz", "--json"], 2, {"kind": "trace_id", "message": "'xyz' is not a trace id (1 to 32 hex digits)"}),
    (["show", "a", "--json"], 2, {"kind": "trace_id", "message": f"trace id prefix 'a' is ambiguous: {TRACE}, "
                                                                 f"{'ac' * 16}"}),
    (["query", "type=(", "--json"], 2, {"kind": "query", "message": "expected a value, found '(' (at column 6)",
                                        "column": 6}),
    (["traces", "--limit", "0", "--json"], 2,
     {"kind": "usage", "message": "argument --limit: must be a positive integer, got '0'"}),
    (["show", "--json"], 2, {"kind": "usage", "message": "the following arguments are required: trace_id"}),
    (["query", "type=tool", "--js", "--limit", "x"], 2,
     {"kind": "usage", "message": "argument --limit: must be a positive integer, got 'x'"}),
    (["compare", "--prompt", "p", "1", "2", "--alpha", "2", "--json"], 2,
     {"kind": "usage", "message": "argument --alpha: must be a number between 0 and 1, got '2'"}),
    (["compare", "--prompt", "p", "1", "2", "--json"], 1,
     {"kind": "no_data", "message": "no generations of prompt 'p' version 1 or 2 in {db}"}),
])
def test_json_errors_are_json_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                        code: int, error: dict[str, Any]) -> None:
    db = tmp_path / "t.db"
    LocalStore(db).write([_record("1" * 16, None, "turn"), _record("1" * 16, None, "turn", trace_id="ac" * 16)])
    missing = tmp_path / "missing.db"
    expected = {**error, "message": error["message"].format(missing=missing, db=db)}
    target = missing if "{missing}" in error["message"] else db
    got_code, out, err = _run(capsys, "--db", str(target), *argv)
    assert (got_code, _error(out)) == (code, expected)
    assert err.splitlines()[-1].endswith(": " + expected["message"])  # the line it always printed, kept


def test_configuration_errors_are_json_too(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    monkeypatch.setenv("AUTOTRACE_RETENTION_DAYS", "soon")
    code, out, err = _run(capsys, "traces", "--json")
    assert code == 2 and _error(out)["kind"] == "config" and err == f"autotrace: {_error(out)['message']}\n"
    assert "AUTOTRACE_RETENTION_DAYS='soon' is invalid for setting 'retention_days'" in _error(out)["message"]
    assert _run(capsys, "traces")[:2] == (2, "")  # without --json: stderr only, as before
