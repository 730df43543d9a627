"""Review 17: ``autotrace query`` narrows what it reads of the store in SQL (``_query_sql``), and finds
exactly what the full scan finds.

Over a store of tricky observations written by the real ``LocalStore`` (no usage, a usage without a
total, float, text, bool and huge totals, NaN and infinite costs, names with SQL wildcards, numbers
and case-folding letters, tenants and levels of every kind), every query, hand-picked or generated
with ``and``/``or``/``not``, matches the same observations whether the store narrows the rows or
every row is read; and a query the columns decide reads only the rows that may match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autotrace import cli
from autotrace.export.local_store import LocalStore
from autotrace.query import compile_query

NOW = 1_800_000_000_000_000_000
_NAMES = ["a%b_c", "a%", "_x", "100%", "search", "Search", "SEARCH-2", "ß", "Straße", "\u212aelvin", "İstanbul",
          "café", "5", "5.0", "1e3", "Inf", "nan", "", "null", "true", "x\x00y", "\x00z", "naïve search", "日本"]
_TOTALS: list[Any] = [None, 0, 1, 5, 5.0, 5.5, 108, 109, 2**53 + 1, 2**64 + 1, 10**400, -3, "500", "5", "x", True,
                      False, [1], {"n": 1}, 1e20]
_COSTS: list[Any] = [None, 0.0, 0.25, 0.5, 0.75, 3, float("nan"), float("inf"), -float("inf"), "0.9", True, 10**400]


def _records() -> list[dict[str, Any]]:
    records = []
    tenants: list[Any] = ["acme", "ACME", None, "a%", "5", "ünï", "globex", 7, 1.5]
    levels: list[Any] = ["DEFAULT", "ERROR", "error", "Warning", "ÉRROR", "ERROR\u212a", "3", 3]
    types = ["generation", "span", "EMBEDDING", "tool", "retriever"]
    for i in range(len(_NAMES) * 4):
        total = _TOTALS[i % len(_TOTALS)]
        usage: Any = {"input": 1, "total": total} if i % 7 else ({"input": 1} if i % 2 else None)
        if i % 11 == 3:
            usage = {"input": 2, "output": 3}  # no total
        if i % 13 == 5:
            usage = "not a dict"
        cost = _COSTS[i % len(_COSTS)]
        records.append({
            "type": types[i % len(types)], "tenant": tenants[i % len(tenants)], "level": levels[i % len(levels)],
            "status_message": None, "model": None, "input": None, "output": None, "usage": usage,
            "cost": None if cost is None and i % 3 else {"total": cost}, "metadata": {"total": "7"} if i % 17 == 1 else {},
            "trace_id": f"{i // 3:032x}", "id": f"{i:016x}", "parent_id": None, "name": _NAMES[i % len(_NAMES)],
            "start_ns": NOW + i, "end_ns": NOW + i + 10, "service": "svc", "error": False, "events": [],
            "duration_ms": 0.0,
        })
    records.append({**records[0], "id": "f" * 16, "name": 5, "start_ns": NOW + 999})  # a name given as a number
    records.append({**records[0], "id": "e" * 16, "name": "x\ud800y", "start_ns": NOW + 998})  # a lone surrogate
    return records


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    path = tmp_path_factory.mktemp("narrowing") / "traces.db"
    writer = LocalStore(path, retention_days=100_000, max_mb=None)
    writer.write(_records())
    writer.close()
    return LocalStore(path, read_only=True)


def _ids(store: LocalStore, text: str, narrowed: bool) -> list[str]:
    query = compile_query(text)
    rows = store.iter_observations(where=query.where if narrowed else None)
    return [r["id"] for r in rows if query.matches(r)]


_ATOMS = [
    "usage.total>108", "usage.total>=108", "usage.total<5", "usage.total<=5", "usage.total=5", "usage.total==5.0",
    "usage.total!=5", "usage.total>500", "usage.total>-1e400", "usage.total<1e999999", "usage.total>9007199254740992",
    "usage.total=18446744073709551617", "usage.total>99999999999999999999999", "usage.total=1", "usage.total!=1",
    "usage.total=0", "usage.total>4.5", "usage.total=null", "usage.total!=null", "usage.total>x", "usage.total~5",
    "cost.total>0.5", "cost.total>=0.5", "cost.total<0.5", "cost.total!=0.5", "cost.total=3", "cost.total=0",
    "cost.total!=1", "cost.total>1e300", "cost.total<-1e300", "cost.total=null",
    "name=search", "name==Search", "name!=search", "name=\"a%b_c\"", "name~'%'", "name~_", "name!~'%'", "name~ss",
    "name~k", "name~i", "name~SEARCH", "name~\"\"", "name=5", "name=5.0", "name='5'", "name~5", "name=Inf",
    "name=\"\"", "name=null", "name!=null", "name=true", "name~\"x\\x00\"", "name~\"\\u00df\"", "name~\"\\ud800\"",
    "name=\"x\\ud800y\"", "name='日本'", "name<m",
    "tenant=acme", "tenant=ACME", "tenant!=acme", "tenant=null", "tenant!=null", "tenant=7", "tenant=1.5",
    "tenant~'a%'", "tenant!~ac", "tenant=\"a%\"", "tenant~'ü'",
    "type=generation", "type=embedding", "type!=SPAN", "type~gen", "level=error", "level!=ERROR", "level='érror'",
    "level~\u212a", "level=3", "level=3.0", "level=\"3\"", "level~r", "has usage.total", "metadata.total=7",
]


@pytest.mark.parametrize("text", _ATOMS)
def test_each_comparison_finds_what_the_full_scan_finds(store: LocalStore, text: str) -> None:
    assert _ids(store, text, narrowed=True) == _ids(store, text, narrowed=False)


@pytest.mark.parametrize(("text", "kinds"), [
    ("usage.total>108", ["500", 10**400, 2**53 + 1, 2**64 + 1, 1e20]),  # text and huge totals the column lacks
    ("usage.total=5", [5, 5.0, "5"]),
    ("usage.total!=1", [None, True, False, "x"]),  # a bool stored as 1 is no number to the matcher
    ("cost.total>0.5", [0.75, 3, "0.9", 10**400]),
])
def test_the_matches_include_totals_the_columns_misstate(store: LocalStore, text: str, kinds: list[Any]) -> None:
    """Matches a narrowing by the columns alone would lose are found (the comparisons above are not vacuous)."""
    query = compile_query(text)
    found = [r for r in store.iter_observations(where=query.where) if query.matches(r)]
    field = text.split(".")[0]
    totals = [r[field].get("total") if isinstance(r[field], dict) else None for r in found]
    assert all(any(type(t) is type(k) and t == k for t in totals) for k in kinds), totals


def test_names_that_fold_or_hold_wildcards_are_found(store: LocalStore) -> None:
    for text, names in (("name~ss", {"ß", "Straße"}), ("name~k", {"\u212aelvin"}), ("name~'%'", {"a%b_c", "a%", "100%"}),
                        ("name='a%b_c'", {"a%b_c"}), ("name=5.0", {"5.0", 5}), ("level=error", {"ERROR", "error"})):
        query = compile_query(text)
        found = {r["name"] if text.startswith("name") else r["level"]
                 for r in store.iter_observations(where=query.where) if query.matches(r)}
        assert found == names, text


_TREES = st.recursive(
    st.sampled_from(_ATOMS),
    lambda inner: st.one_of(inner.map(lambda q: f"not ({q})"),
                            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(" ".join),
                            inner.map(lambda q: f"({q})")),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_TREES)
def test_any_combination_finds_what_the_full_scan_finds(store: LocalStore, text: str) -> None:
    assert _ids(store, text, narrowed=True) == _ids(store, text, narrowed=False)


def _built(path: Path, generations: int, spans: int) -> None:
    rows = []
    for i in range(generations + spans):
        generation = i < generations
        rows.append({
            "type": "generation" if generation else "span", "tenant": "acme", "level": "DEFAULT",
            "status_message": None, "model": None, "input": {"q": "text " * 50}, "output": None,
            "usage": {"input": 1, "total": 100 + i} if generation else None,
            "cost": {"total": i / 10} if generation else None, "metadata": {}, "trace_id": f"{i:032x}",
            "id": f"{i:016x}", "parent_id": None, "name": f"step-{i % 3}", "start_ns": NOW + i, "end_ns": NOW + i,
            "service": "svc", "error": False, "events": [], "duration_ms": 0.0})
    writer = LocalStore(path, retention_days=100_000, max_mb=None)
    writer.write(rows)
    writer.close()


@pytest.mark.parametrize(("text", "decoded", "printed"), [
    ("usage.total>108", 1, 1),  # the generation of total 109 alone
    ("usage.total>1000", 1, 0),  # none: one record read to see that 'usage' is a field
    ("cost.total>0.5 and name=step-0", 2, 2),  # 0.6 and 0.9
    ("not usage.total<=108 and type=generation", 1, 1),
    ("not (usage.total<=108 or type=span)", 1, 1),
    ("name~STEP-2 or name=nosuch", 16, 16),
])
def test_a_query_decided_by_the_columns_decodes_only_its_matches(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        text: str, decoded: int, printed: int) -> None:
    path = tmp_path / "traces.db"
    _built(path, generations=10, spans=40)
    seen: list[str] = []
    real = LocalStore._decode
    monkeypatch.setattr(LocalStore, "_decode", lambda self, record: seen.append(record) or real(self, record))
    assert cli.main(["--db", str(path), "query", text, "--json"]) == 0
    out, err = capsys.readouterr()
    assert (out.count('"id"'), err) == (printed, "")
    assert len(seen) == decoded


def test_a_mistyped_field_still_names_every_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing matched and the query names a field no observation has: the whole store is read for
    the fields it lists, narrowed or not."""
    path = tmp_path / "traces.db"
    _built(path, generations=2, spans=3)
    assert cli.main(["--db", str(path), "query", "usage.total>5000 and usagee.total>1"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("autotrace: no observation has a field 'usagee.total'; fields: cost, duration_ms, ")


@pytest.mark.parametrize("text", [
    "not " * 62 + "usage.total>108",
    "not (tenant=a and " * 31 + "usage.total>108" + ")" * 31,
    "(tenant=a or not " * 31 + "name~nosuch" + ")" * 31,
])
def test_a_deeply_nested_query_is_narrowed_only_as_deep_as_sqlite_parses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    """SQLite refuses SQL nested much deeper ("parser stack overflow"): deeper parts are left to the matcher."""
    path = tmp_path / "traces.db"
    _built(path, generations=10, spans=5)
    store = LocalStore(path, read_only=True)
    assert cli.main(["--db", str(path), "query", text, "--json", "--limit", "100"]) == 0
    assert capsys.readouterr().out.count('"id"') == len(_ids(store, text, narrowed=False)) > 0
