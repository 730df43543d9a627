"""The CLI as a new user meets it: ``compare`` over generations whose usage or cost is
recorded as no number, interrupted observations and replays marked in the text output, a query on a
field no observation has, help that names what a command takes, and the replay's side-by-side."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace import cli
from autotrace.replay import replay, side_by_side
from tests.helpers import Traced

Run = tuple[int, str, str]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _untimed(text: str) -> str:
    """``text`` with each duration (``12.3ms``) written ``Xms``: the tests assert no timing."""
    return re.sub(r"\b\d+\.\dms\b", "Xms", text)


def test_compare_leaves_out_a_cost_or_usage_recorded_as_no_number(traced: Traced,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A cost of ``{"total": "x"}`` or ``"free"`` was a traceback (``float('x')``, ``'str'.get``): such a
    value is left out, as a non-finite one is, and so is no cost at all (unknown, not 0)."""
    with autotrace.tenant("acme"):
        for version, cost in ((1, {"total": "x"}), (1, {"total": 0.5}), (2, "free"), (2, {"total": 0.25}),
                              (2, None)):
            with autotrace.start_generation("answer", model="m", prompt={"name": "p", "version": version}) as gen:
                gen.update(usage={"input": 3, "output": version}, cost=cost)
    stored = {(r["prompt"]["version"], json.dumps(r["cost"])) for r in traced.records()}
    assert (1, '{"total": null}') in stored and (2, '{"total": null}') in stored  # no amount, as Langfuse takes it

    code, out, err = _run(capsys, "--db", str(traced.path), "compare", "--prompt", "p", "1", "2", "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert (report["count_a"], report["count_b"]) == (2, 3)
    metrics = {m["metric"]: m for m in report["metrics"]}
    assert (metrics["cost"]["a_p50"], metrics["cost"]["b_p50"]) == (0.5, 0.25)  # B: 0.25 (none is unknown, not 0)
    assert (metrics["tokens"]["a_p50"], metrics["tokens"]["b_p50"]) == (4.0, 5.0)


@autotrace.observe
def words(n: int) -> Any:
    yield from (f"w{i}" for i in range(n))


def test_an_interrupted_observation_is_marked_warning(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    """A stream its reader closed early ends WARNING, interrupted: ``show`` and ``query`` said nothing of it."""
    with autotrace.tenant("acme"), autotrace.start_chain("turn") as turn:
        stream = words(3)
        next(stream)
        stream.close()
    ids = {r["name"]: r["id"][:8] for r in traced.records()}
    db = str(traced.path)
    label = "[SPAN] words  Xms  WARNING interrupted: closed by its reader before the end"

    code, out, err = _run(capsys, "--db", db, "show", turn.trace_id, "--no-io")
    assert (code, err) == (0, "")
    assert _untimed(out).splitlines()[1:] == [f"└─ [CHAIN] turn  Xms  #{ids['turn']}",
                                              f"   └─ {label}  #{ids['words']}"]
    code, out, _ = _run(capsys, "--db", db, "query", "level=warning")
    assert code == 0 and _untimed(out).splitlines()[1].endswith(f"span        {label}")


def test_a_replay_is_marked_in_traces_and_show(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    """A replay was listed under the original's name, like the original: now ``replay: <name>`` in
    ``traces`` and ``replay of <trace>`` in ``show``'s header."""

    @autotrace.traced_tool
    def lookup(order: str) -> str:
        return order.upper()

    def turn() -> None:
        with autotrace.tenant("acme"), autotrace.start_chain("turn"):
            lookup("o-1")

    turn()
    (original,) = {r["trace_id"] for r in traced.records()}
    records = traced.trace(original)
    result = replay(records, records[1]["id"], turn)
    traced.records()
    db = str(traced.path)

    code, out, _ = _run(capsys, "--db", db, "traces")
    assert code == 0
    assert [(row.split()[0], row.split()[1:3]) for row in out.splitlines()[1:]] == [
        (result.trace_id, ["replay:", "turn"]), (original, ["turn", "acme"])]
    code, out, _ = _run(capsys, "--db", db, "show", str(result.trace_id))
    assert (code, out.splitlines()[0]) == (0, f"trace {result.trace_id}  tenant=acme  replay of {original}")
    code, out, _ = _run(capsys, "--db", db, "show", original)
    assert (code, out.splitlines()[0]) == (0, f"trace {original}  tenant=acme")


def test_a_query_on_a_field_no_observation_has_names_it(traced: Traced,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``tokens>100`` (the ``traces`` column's name; the field is ``usage.total``) matched nothing
    without a word: a query that matches nothing names the fields no stored observation has."""
    with autotrace.tenant("acme"), autotrace.start_generation("answer", model="m") as gen:
        gen.update(usage={"input": 300, "output": 10})
    (record,) = traced.records()
    db = str(traced.path)
    fields = ", ".join(sorted(record))

    code, out, err = _run(capsys, "--db", db, "query", "tokens>100 or (usage.totl>1 and nmae=answer)", "--json")
    assert (code, out) == (0, "[]\n")
    assert err == f"autotrace: no observation has a field 'nmae', 'tokens'; fields: {fields}\n"
    code, out, err = _run(capsys, "--db", db, "query", "usage.total>100 or tokens>100", "--json")
    assert (code, [r["name"] for r in json.loads(out)], err) == (0, ["answer"], "")  # matches: no note
    code, out, err = _run(capsys, "--db", db, "query", "model=other")
    assert (code, err) == (0, "")  # a known field that matches nothing: no note


def test_help_names_what_each_command_takes(capsys: pytest.CaptureFixture[str]) -> None:
    """``replay --help`` did not say that the program follows ``--``; ``compare``'s versions and the
    ``--limit`` defaults were unexplained."""
    helps = {}
    for command in ("replay", "compare", "traces", "query"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0
        helps[command] = " ".join(capsys.readouterr().out.split())
    assert helps["replay"].startswith("usage: autotrace replay [-h] --at AT [--set KEY=VALUE] [--messages-file FILE] "
                                      "trace_id -- PROGRAM [ARGS ...]")
    assert "a version A, the baseline b version B, checked for regressions against A" in helps["compare"]
    assert "--limit LIMIT how many, newest first (default 20)" in helps["traces"]
    assert "--limit LIMIT how many matches, newest first (default 100)" in helps["query"]
    code, _, err = _run(capsys, "replay", "abab")  # a usage error shows the same usage line
    assert code == 2 and "trace_id -- PROGRAM [ARGS ...]" in err


def _record(span_id: str, parent: str | None, name: str, **fields: Any) -> dict[str, Any]:
    return {"trace_id": "ab" * 16, "id": span_id, "parent_id": parent, "name": name, "type": "span",
            "tenant": "acme", "start_ns": 1, "end_ns": 2, "duration_ms": 1.0, **fields}


def test_side_by_side_keeps_the_originals_ids_and_marks_a_cut_line() -> None:
    """The original's column was cut at 64 characters without a mark, taking the ``#id`` that
    ``--at`` needs: it is as wide as its longest line up to 100, and a line cut ends with ``…``."""
    original = [_record("1" * 16, None, "turn", type="chain"),
                _record("2" * 16, "1" * 16, "answer", type="generation", model="gpt-4o-mini-2024-07-18",
                        usage={"total": 21}, cost={"total": 0.000004}),
                _record("3" * 16, "1" * 16, "x" * 120)]
    lines = side_by_side(original, original).splitlines()
    assert lines[3] == ("   ├─ [GEN] answer  1.0ms  21 tok  $0.000004  gpt-4o-mini-2024-07-18  #22222222".ljust(100)
                        + "     ├─ [GEN] answer  1.0ms  21 tok  $0.000004  gpt-4o-mini-2024-07-18  #22222222")
    assert lines[4][:102] == f"   └─ [SPAN] {'x' * 86}…  "
    header = f"trace {'ab' * 16}  tenant=acme"  # the longest line of a short tree: no wider
    assert side_by_side(original[:1], original[:1]).splitlines()[:2] == ["ORIGINAL".ljust(51) + "  REPLAY",
                                                                         f"{header}  {header}"]


def test_a_cost_below_a_millionth_is_not_shown_as_zero(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    """An embedding's cost (4e-7 USD) read ``$0.000000``, where a zero cost is not shown at all."""
    with autotrace.tenant("acme"), autotrace.start_embedding("embed", model="text-embedding-3-small") as emb:
        emb.update(usage={"input": 20, "total": 20}, cost={"total": 4e-7})
    (record,) = traced.records()
    code, out, _ = _run(capsys, "--db", str(traced.path), "show", record["trace_id"])
    assert code == 0
    assert _untimed(out).splitlines()[1] == (f"└─ [EMB] embed  Xms  20 tok  <$0.000001  text-embedding-3-small  "
                                             f"#{record['id'][:8]}")


def test_compare_reads_a_record_without_a_duration(tmp_path: Path) -> None:
    """A record written without ``duration_ms`` (another program, a hand-made store) made ``compare``
    raise ``TypeError``: it is left out of the latencies, counted in the rest."""
    from autotrace.compare import compare_versions

    records = [_record(f"{i:016x}", None, "g", type="generation", prompt={"name": "p", "version": 1 + i % 2},
                       usage={"total": 10}) for i in range(4)]
    del records[0]["duration_ms"]
    report = compare_versions(records, [], "p", 1, 2)
    latency = report["metrics"][0]
    assert (report["count_a"], report["count_b"], latency["a_p50"], latency["b_p50"]) == (2, 2, 1.0, 1.0)
