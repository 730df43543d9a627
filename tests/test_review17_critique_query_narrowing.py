"""Critique of review 17's SQL narrowing of ``autotrace query``: over stores the real ``LocalStore``
writes from generated observations (totals at the edges of floats and 64-bit integers, bools, text,
NaN and infinities; names, tenants, types and levels with quotes, NUL, wildcards, case-folding and
non-ASCII letters, numbers), every generated query finds what the full scan finds, and no stored
value makes the narrowing SQL fail the query."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autotrace import cli
from autotrace.export.local_store import LocalStore
from autotrace.query import compile_query

NOW = 1_800_000_000_000_000_000
_TOTALS: list[Any] = [2**53 - 1, 2**53, 2**53 + 1, -(2**53) - 1, -0.0, 0, 1, 1.0, True, False, 1e308, -1e308, 5e-324,
                      2**63 - 1, -(2**63), 2**64, 10**309, -(10**309), math.nan, math.inf, -math.inf, 0.5, 108, 1e20,
                      "5", " 5", "nan", "-0", "", None, [1], {"total": 5}, "true"]
_TEXTS: list[Any] = ["a'b", 'a"b', "a%b", "a_b", "x\x00y", "\x00", "5", "5.0", "-5", "1e3", "Inf", "NaN", "ERROR", "error",
                     "ÉRROR", "érror", "ß", "SS", "\u212a", "k", "İ", "i", "\u0131", "ΣΑΣ", "ς", "ǅ", "ﬃ", "null", "", "a" * 3000,
                     "x\ud800y", "x\ufffdy", "generation", "GENERATION", "'; DROP TABLE observations; --", 7, -0.0,
                     1e20, True, False]
_VALUES = ["5", "5.0", "-0", "0", "1", "9007199254740993", "9007199254740992", "1e308", "1e309", "5e-324", "108",
           "1e20", ".5", "+5", "null", "true", "error", "k", "ss", "Inf", "NaN", "-9223372036854775808",
           *('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in
             ["a'b", 'a"b', "x\x00y", "ß", "\u212a", "İ", "ς", "ΣΑΣ", "\ufffd", "x\ufffdy", "", "ÉRROR", "ﬃ", "a%", "_",
              "generation", "5"])]
_FIELDS = ["usage.total", "cost.total", "name", "tenant", "type", "level"]
_ATOM = st.one_of(st.builds("{}{}{}".format, st.sampled_from(_FIELDS),
                            st.sampled_from(["=", "==", "!=", "<", "<=", ">", ">=", "~", "!~"]), st.sampled_from(_VALUES)),
                  st.sampled_from(_FIELDS).map("has {}".format))
_QUERY = st.recursive(_ATOM, lambda inner: st.one_of(
    inner.map("not ({})".format),
    st.builds("({}) {} ({})".format, inner, st.sampled_from(["and", "or"]), inner)), max_leaves=8)
_TOTAL = st.one_of(st.none(), st.sampled_from(["x", {"input": 1}]),
                   st.sampled_from(_TOTALS).map(lambda total: {"input": 1, "total": total}))
_TEXT = st.sampled_from(_TEXTS)


def _record(i: int, name: Any, kind: Any, tenant: Any, level: Any, usage: Any, cost: Any) -> dict[str, Any]:
    return {"type": kind, "tenant": tenant, "level": level, "status_message": None, "model": None, "input": None,
            "output": None, "usage": usage, "cost": None if cost is None else cost, "metadata": {},
            "trace_id": f"{i + 1:032x}", "id": f"{i + 1:016x}", "parent_id": None, "name": name,
            "start_ns": NOW + i // 2, "end_ns": NOW + i, "service": "svc", "error": False, "events": [],
            "duration_ms": 0.0}


_RECORDS = st.lists(st.tuples(_TEXT, _TEXT, st.one_of(st.none(), _TEXT), st.one_of(st.none(), _TEXT), _TOTAL,
                              _TOTAL), min_size=1, max_size=10)


def _ids(store: LocalStore, text: str, narrowed: bool) -> list[str]:
    query = compile_query(text)
    return [r["id"] for r in store.iter_observations(where=query.where if narrowed else None) if query.matches(r)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_RECORDS, queries=st.lists(_QUERY, min_size=1, max_size=6))
def test_generated_stores_and_queries_find_what_the_full_scan_finds(
        tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[Any, ...]], queries: list[str]) -> None:
    path = tmp_path_factory.mktemp("critique") / "traces.db"
    writer = LocalStore(path, retention_days=100_000, max_mb=None)
    writer.write([_record(i, *row) for i, row in enumerate(rows)])
    writer.close()
    store = LocalStore(path, read_only=True)
    try:
        for text in queries:
            assert _ids(store, text, narrowed=True) == _ids(store, text, narrowed=False), text
    finally:
        store.close()


@pytest.mark.parametrize(("text", "found"), [
    ("usage.total=5", (1, 0)), ("usage.total>0", (1, 0)), ("not usage.total<=0", (1, 0)), ("usage.total!=1", (1, 1)),
    ("usage.total=-9223372036854775808", (0, 1)),
])
def test_a_usage_total_of_the_smallest_64_bit_integer_fails_no_query(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, found: tuple[int, int]) -> None:
    """A total of -2**63 is stored as that integer: ``abs()`` of it overflows in SQLite ("integer
    overflow"), which failed every query comparing ``usage.total`` over the whole store."""
    path = tmp_path / "traces.db"
    writer = LocalStore(path, retention_days=100_000, max_mb=None)
    writer.write([_record(0, "low", "generation", None, "DEFAULT", {"total": -(2**63)}, None),
                  _record(2, "five", "generation", None, "DEFAULT", {"total": 5}, {"total": 2.0})])
    writer.close()
    assert cli.main(["--db", str(path), "query", text, "--json"]) == 0
    out, err = capsys.readouterr()
    assert (err, out.count('"name": "five"'), out.count('"name": "low"')) == ("", *found)
