"""The CLI's read side, made fast for large stores, prints what it printed before, byte for byte: every
command's stdout and stderr over a small store are those of the code before the speed-up (their
digests, and two of them in full). And the speed-ups themselves: listing sums only the newest traces,
over the primary key's order (a float total is the same sum); a write adds the trace/start index to an
older store; read commands run without the cyclic garbage collector; ``--json`` text is ``json``'s own."""

from __future__ import annotations

import gc
import hashlib
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from autotrace import cli, render, schema
from autotrace.compare import _doubled_ranks
from autotrace.export import local_store
from autotrace.export.local_store import LocalStore

NOW = 1_800_000_000_000_000_000
A = "a" * 31 + "1"


def _record(trace_id: str, id: str, parent: str | None, name: str, kind: str, start: int, **fields: Any) -> dict[str, Any]:
    record = {"type": kind, "tenant": "acme", "level": "DEFAULT", "status_message": None, "model": None,
              "input": None, "output": None, "usage": None, "cost": None, "metadata": {}}
    record.update(trace_id=trace_id, id=id, parent_id=parent, name=name, start_ns=NOW + start,
                  end_ns=NOW + start + 2_500_000, service="svc", error=False, events=[], duration_ms=2.5)
    record.update(fields)
    return record


def _generation(trace_id: str, id: str, parent: str | None, start: int, version: int, ms: float, tokens: int,
                **fields: Any) -> dict[str, Any]:
    return _record(trace_id, id, parent, f"answer-v{version}", "generation", start, model="gpt-4o",
                   prompt={"name": "qa", "version": version}, duration_ms=ms,
                   usage={"input": tokens - 10, "output": 10, "total": tokens}, cost={"total": tokens * 1e-6},
                   input=[{"role": "user", "content": f"question {id}"}], output={"role": "assistant", "content": "ok"},
                   **fields)


def build(path: Path) -> Path:
    """Traces of three tenants: one nested with every type, odd text and scores; traces that start at
    the same nanosecond; generations of two versions of a prompt; costs whose float sum depends on
    the order they are added in."""
    rows = [
        _record(A, "1" * 16, None, "turn", "chain", 0, trace_name="turn\u2028x", user_id="u\x851", tags=["t1", "t2"],
                input={"question": "Straße \x1b[31m red", "n": 1.5e300, "big": 2**70}, output="done"),
        _generation(A, "2" * 16, "1" * 16, 1, 1, 12.5, 300, metadata={"k": "v\u202e", "nested": {"a": [1, {}, []]}}),
        _record(A, "3" * 16, "1" * 16, "search", "retriever", 2, doc_count=2, query="refund",
                documents=[{"id": "d1", "score": 0.25, "content": "é" * 70}, {"id": "d2", "score": -0.0}]),
        _record(A, "4" * 16, "1" * 16, "lookup", "tool", 3, level="ERROR", error=True,
                status_message="RuntimeError: down\nhard", arguments={"order": 7}),
        _record(A, "5" * 16, "1" * 16, "step", "span", 4, output=[True, False, None, 0.1]),
        _record(A, "6" * 16, "5" * 16, "note", "event", 5, level="WARNING", status_message="slow"),
        _record(A, "7" * 16, "5" * 16, "embed", "EMBEDDING", 6, usage={"total": 5}),
    ]
    tenants = ("globex", "initech", "acme")
    for n in range(12):  # traces 2 to 13; 6 to 9 start at the same nanosecond
        trace_id = f"{n + 2:032x}"
        start = 1_000 + (5 if 6 <= n + 2 <= 9 else n) * 10
        tenant = tenants[n % 3]
        rows.append(_record(trace_id, f"{n + 2:016x}", None, f"job-{n}", "agent", start, tenant=tenant))
        for v in (1, 2):
            rows.append(_generation(trace_id, f"{n + 2:08x}{v:08x}", f"{n + 2:016x}", start + v, v,
                                    10.0 + n * (1 + v), 100 * v + n, tenant=tenant,
                                    **({"level": "ERROR", "error": True} if n % 5 == v else {})))
    trace = "f" * 32  # three costs: 1e16 + 1 - 1e16 is 0 or 1 by the order they are summed in
    for id, start, cost in (("a" * 16, 2, 1e16), ("b" * 16, 3, -1e16), ("c" * 16, 1, 1.0)):  # ids, starts: orders apart
        rows.append(_record(trace, id, None if start == 1 else "c" * 16, f"cost-{start}", "span", 2_000 + start,
                            tenant="globex", cost={"total": cost}))
    store = LocalStore(path, retention_days=100_000)
    store.write(rows)
    for score in ({"id": "s1", "trace_id": A, "observation_id": "2" * 16, "name": "helpful", "value": 0.75},
                  {"id": "s2", "trace_id": A, "observation_id": None, "name": "resolved", "value": 1.0,
                   "data_type": "BOOLEAN", "comment": "by user"},
                  {"id": "s3", "trace_id": A, "observation_id": "9" * 16, "name": "tone", "value": "calm"},
                  *({"id": f"q{n}{v}", "trace_id": f"{n + 2:032x}", "observation_id": f"{n + 2:08x}{v:08x}",
                     "name": "helpful", "value": (n % 4) / 4 + v / 10} for n in range(12) for v in (1, 2))):
        store.add_score(score)
    store.close()
    return path


#: (argv, exit code, stdout's length, digests of stdout and stderr (the store's path as ``DB``)), as the
#: code before the speed-up printed them over ``build``'s store.
EXPECTED = [
    (['traces'], 0, 1637, '162a43c40406c70a', 'e3b0c44298fc1c14'),
    (['traces', '--limit', '6'], 0, 765, '7cab410569a5fc16', 'e3b0c44298fc1c14'),
    (['traces', '--limit', '7', '--json'], 0, 1950, '6993dd76521e1016', 'e3b0c44298fc1c14'),
    (['traces', '--tenant', 'globex', '--json'], 0, 1373, 'd76fad5f8ec5741b', 'e3b0c44298fc1c14'),
    (['traces', '--tenant', 'acme', '--limit', '2'], 0, 329, '61d09acc0661435d', 'e3b0c44298fc1c14'),
    (['show', 'aaaaaa'], 0, 834, '2962d9ffd7dec687', 'e3b0c44298fc1c14'),
    (['show', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1', '--no-io'], 0, 581, '329e02233cd9ef94', 'e3b0c44298fc1c14'),
    (['show', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1', '--json'], 0, 5343, 'a3c9c594f5b2e331', 'e3b0c44298fc1c14'),
    (['show', 'ffffffff', '--json'], 0, 1686, '2ecbe1076164ad7e', 'e3b0c44298fc1c14'),
    (['query', 'type=generation and usage.total>200', '--json'], 0, 10039, 'e7d6ad549d554487', 'e3b0c44298fc1c14'),
    (['query', 'level=error'], 0, 815, 'f114b3380258217d', 'e3b0c44298fc1c14'),
    (['query', 'type=GENERATION or type=tool', '--limit', '3'], 0, 435, 'ec2bd622ddcacea2', 'fe174a8cc13ed04e'),
    (['query', 'type=embedding and (level=warning or level=default)', '--json'], 0, 541, '0d4e75c339cfa96b', 'e3b0c44298fc1c14'),
    (['query', 'type=span and nosuch=1'], 0, 79, '2053ac4eb186f256', '166080c7fdc93c3a'),
    (['query', 'type=nosuch'], 0, 79, '2053ac4eb186f256', 'e3b0c44298fc1c14'),
    (['query', 'TYPE=tool'], 0, 79, '2053ac4eb186f256', 'c1c7a811a7eb3456'),
    (['query', 'not type=generation and name~o', '--json'], 0, 8721, 'a7b94de4910324fc', 'e3b0c44298fc1c14'),
    (['compare', '--prompt', 'qa', '1', '2'], 0, 722, 'afe5fe64b771654f', 'e3b0c44298fc1c14'),
    (['compare', '--prompt', 'qa', '1', '2', '--json'], 0, 1618, '35bdb36deadf808a', 'e3b0c44298fc1c14'),
    (['compare', '--prompt', 'qa', '1', '3'], 1, 691, '479ac69c9ff33a74', '668bfe0b448c5612'),
]
TRACES_7 = """\
TRACE                             NAME                      TENANT          DURATION   TOKENS        COST  ERR
ffffffffffffffffffffffffffffffff  cost-1                    globex             2.5ms        -    1.000000  0
0000000000000000000000000000000d  job-11                    acme               2.5ms      322    0.000322  1
0000000000000000000000000000000c  job-10                    initech            2.5ms      320    0.000320  0
0000000000000000000000000000000b  job-9                     globex             2.5ms      318    0.000318  0
0000000000000000000000000000000a  job-8                     acme               2.5ms      316    0.000316  0
00000000000000000000000000000006  job-4                     initech            2.5ms      308    0.000308  0
00000000000000000000000000000007  job-5                     acme               2.5ms      310    0.000310  0
"""
SHOW_A = [
    'trace aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1  tenant=acme  name=turn x  user=u 1  tags=t1,t2',
    'score: resolved=true  comment: by user',
    'score: tone=calm  (observation 9999999999999999, not in the trace)',
    '└─ [CHAIN] turn  2.5ms  #11111111',
    '   │  in:  {"question": "Straße \\u001b[31m red", "n": 1.5e+300, "big":…',
    '   │  out: done',
    '   ├─ [GEN] answer-v1  12.5ms  300 tok  $0.000300  gpt-4o  #22222222',
    '   │     in:  [{"role": "user", "content": "question 2222222222222222"}]',
    '   │     out: {"role": "assistant", "content": "ok"}',
    '   │     score: helpful=0.75',
    '   ├─ [RET] search  2.5ms  2 docs  #33333333',
    '   ├─ [TOOL] lookup  2.5ms  ERROR RuntimeError: down hard  #44444444',
    '   └─ [SPAN] step  2.5ms  #55555555',
    '      │  out: [true, false, null, 0.1]',
    '      ├─ [EVENT] note  2.5ms  WARNING slow  #66666666',
    '      └─ [EMBEDDING] embed  2.5ms  5 tok  #77777777',
]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(build(tmp_path / "t.db"))


def _run(capsys: pytest.CaptureFixture[str], db: str, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--db", db, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.replace(db, "DB")


def test_every_command_prints_what_it_printed_before(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    got = []
    for argv, *_ in EXPECTED:
        code, out, err = _run(capsys, db, *argv)
        got.append((argv, code, len(out), _digest(out), _digest(err)))
    assert got == [tuple(row) for row in EXPECTED]
    assert _run(capsys, db, "traces", "--limit", "7") == (0, TRACES_7, "")
    assert _run(capsys, db, "show", A[:6]) == (0, "\n".join(SHOW_A) + "\n", "")


@pytest.mark.parametrize("value", [
    [{"a\u2028": ["x\u0085\x00\"\\", 1.5, -0.0, 10**30, True, False, None, {}, [], {"k": [[], [{}]]}]}],
    "é\U0001f600\u202e", 1e300, 3, None, [], {}, {"\x85": {"": "a"}},
    float("nan"), {"a": float("inf")}, {1: 2}, (1, [2]), {"when": Path("/x")},  # left to json: the same text
])
def test_json_output_is_jsons_indented_text(value: Any) -> None:
    assert render.to_json(value) == render._escape_unsafe(schema.strict_json(value, indent=2))


def test_listing_sums_only_the_newest_traces(db: str, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Each trace's errors are read from its records: listing the newest reads no other trace's."""
    calls: list[int] = []
    real = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = real(*args, **kwargs)
        connection.create_function("summed", 1, lambda value: calls.append(1) or value)
        return connection

    monkeypatch.setattr(local_store.sqlite3, "connect", connect)
    monkeypatch.setattr(local_store, "ERROR_SQL", f"summed({local_store.ERROR_SQL})")
    assert _run(capsys, db, "traces", "--limit", "2")[0] == 0
    assert len(calls) == 3 + 3  # the cost trace's and job-11's observations, of 46
    calls.clear()
    assert _run(capsys, db, "traces", "--limit", "6", "--tenant", "acme")[0] == 0
    assert len(calls) == 3 * 4 + 7  # acme's traces job-2, -5, -8, -11 and the first: no more than 6 of them


def test_a_float_total_is_summed_in_key_order_whatever_the_indexes(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """1e16 + -1e16 + 1.0 by id is 1.0; by start (1.0 first) it would be 0.0."""
    db = str(build(tmp_path / "t.db"))
    assert sqlite3.connect(db).execute("SELECT 1 FROM sqlite_master WHERE name = 'observations_trace_start'").fetchone()
    code, out, _ = _run(capsys, db, "traces", "--limit", "1", "--json")
    assert (code, [(s["trace_id"], s["cost"]) for s in json.loads(out)]) == (0, [("f" * 32, 1.0)])


def test_a_write_adds_the_trace_start_index_to_an_older_store(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    older = sqlite3.connect(path)
    older.executescript(local_store._SCHEMA)  # a store as the code before this index made it
    older.close()
    names = "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'observations_%' ORDER BY name"
    store = LocalStore(path)  # opening (in ``install()``) builds nothing
    assert [r[0] for r in store._rows(names)] == ["observations_end", "observations_start"]
    store.write([])
    assert [r[0] for r in store._rows(names)] == ["observations_end", "observations_start", "observations_trace_start"]
    store.close()
    read_only = LocalStore(path, read_only=True)
    assert [r["trace_id"] for r in read_only.traces()] == []
    read_only.close()


def test_read_commands_run_without_the_cyclic_collector(db: str, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    enabled: list[bool] = []
    real = render.render_traces
    monkeypatch.setattr(render, "render_traces", lambda summaries: enabled.append(gc.isenabled()) or real(summaries))
    assert gc.isenabled()
    assert _run(capsys, db, "traces", "--limit", "1")[0] == 0
    assert (enabled, gc.isenabled()) == ([False], True)


def test_ranks_of_ties() -> None:
    assert _doubled_ranks([1.0, 1.0, 2.0, 3.0, 3.0, 3.0]) == [(3, 2), (6, 1), (10, 3)]
    assert _doubled_ranks([]) == [] and _doubled_ranks([-0.0, 0.0, math.pi]) == [(3, 2), (6, 1)]


def test_a_query_of_one_type_decodes_only_that_types_records(db: str, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    real = LocalStore._decode
    monkeypatch.setattr(LocalStore, "_decode", lambda self, text: decoded.append(text) or real(self, text))
    assert _run(capsys, db, "query", "type=embedding", "--json")[0] == 0
    assert len(decoded) == 1
    decoded.clear()  # nothing matches and the fields it names are unknown: every record's fields are read
    assert _run(capsys, db, "query", "type=embedding and nosuch=1")[2].startswith("autotrace: no observation has")
    assert len(decoded) == 1 + 46
