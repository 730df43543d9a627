"""Review 21: ``autotrace query 'trace_id=...'`` finds its rows through the primary key's index (it read and
decoded every record: 1.2 s over 50,000 observations), and finds exactly what the full scan finds, also
for trace ids the column holds otherwise than the record (bytes, numbers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autotrace.export.local_store import LocalStore
from autotrace.query import compile_query

NOW = 1_800_000_000_000_000_000
HEX = "cf95442d658422b276e4f7ef04cf3ac5"
DIGITS = "12345678901234567890123456789012"


def _record(trace_id: Any, n: int, name: str = "step") -> dict[str, Any]:
    return {"type": "span", "tenant": "acme", "level": "DEFAULT", "status_message": None, "model": None,
            "input": None, "output": None, "usage": None, "cost": None, "metadata": {}, "trace_id": trace_id,
            "id": f"{n:016x}", "parent_id": None, "name": name, "start_ns": NOW + n, "end_ns": NOW + n + 10,
            "service": "svc", "error": False, "events": [], "duration_ms": 0.0}


def _write(path: Path, records: list[dict[str, Any]], *, later_indexes: bool = True) -> LocalStore:
    writer = LocalStore(path, retention_days=100_000, max_mb=None)
    writer._indexed = not later_indexes  # an older store: only the primary key leads with trace_id
    writer.write(records)
    writer.close()
    return LocalStore(path, read_only=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    records = [_record(f"{t:032x}", t * 10 + i) for t in range(1, 40) for i in range(3)]
    records += [_record(HEX, 1000 + i, f"hex-{i}") for i in range(3)]
    records += [_record(DIGITS, 1100), _record(b"abc", 1200), _record(5, 1300), _record(1e20, 1400),
                _record("", 1500), _record(b"5", 1600)]
    return _write(tmp_path_factory.mktemp("keys") / "t.db", records)


def _found(store: LocalStore, text: str, narrowed: bool = True) -> list[str]:
    query = compile_query(text)
    return [r["id"] for r in store.iter_observations(where=query.where if narrowed else None) if query.matches(r)]


@pytest.mark.parametrize(("text", "ids"), [
    (f"trace_id={HEX}", [f"{1002:016x}", f"{1001:016x}", f"{1000:016x}"]),
    (f"trace_id='{HEX}'", [f"{1002:016x}", f"{1001:016x}", f"{1000:016x}"]),
    (f"trace_id={HEX} and name=hex-1", [f"{1001:016x}"]),
    (f"trace_id={HEX} or trace_id={1:032x}", [f"{1002:016x}", f"{1001:016x}", f"{1000:016x}", f"{12:016x}",
                                                f"{11:016x}", f"{10:016x}"]),
    ("trace_id=\"b'abc'\"", [f"{1200:016x}"]),  # bytes: the record holds their str, the column a blob
    ("trace_id=\"b'5'\"", [f"{1600:016x}"]),
    ("trace_id=5", [f"{1300:016x}"]),
    ("trace_id='5'", [f"{1300:016x}"]),
    ("trace_id=5.0", [f"{1300:016x}"]),
    ("trace_id='1e+20'", [f"{1400:016x}"]),  # a float's JSON; its column says 1.0e+20
    ("trace_id=1e20", [f"{1400:016x}"]),
    (f"trace_id={DIGITS}", [f"{1100:016x}"]),
    ("trace_id=''", [f"{1500:016x}"]),
    ("trace_id=nothing", []),
])
def test_an_equal_trace_id_finds_what_the_full_scan_finds(store: LocalStore, text: str, ids: list[str]) -> None:
    assert _found(store, text) == _found(store, text, narrowed=False) == ids


@pytest.mark.parametrize("text", [f"not trace_id={HEX}", f"trace_id!={HEX}", "trace_id~cf95", "trace_id!~0",
                                  f"not (trace_id={HEX} or name=step)", "trace_id=null", "has trace_id"])
def test_other_trace_id_comparisons_find_what_the_full_scan_finds(store: LocalStore, text: str) -> None:
    assert _found(store, text) == _found(store, text, narrowed=False)


def _plan(store: LocalStore, text: str) -> list[str]:
    """The query plan of the SQL ``iter_observations`` runs for ``text``."""
    ran: list[tuple[str, Any]] = []
    stream = store._stream
    store._stream = lambda sql, args=(), chunk=256: ran.append((sql, args)) or stream(sql, args, chunk)  # type: ignore[method-assign]
    try:
        list(store.iter_observations(where=compile_query(text).where))
    finally:
        del store._stream
    sql, args = ran[0]
    return [row[3] for row in store._rows(f"EXPLAIN QUERY PLAN {sql}", args)]


@pytest.mark.parametrize("later_indexes", [True, False])
def test_an_equal_trace_id_is_found_through_an_index(tmp_path: Path, later_indexes: bool) -> None:
    """Through the trace/start index, or the primary key's in a store without it; never a scan of every row."""
    store = _write(tmp_path / "t.db", [_record(f"{t:032x}", t) for t in range(1, 50)] + [_record(HEX, 100)],
                   later_indexes=later_indexes)
    index = "observations_trace_start" if later_indexes else "sqlite_autoindex_observations_1"
    for text in (f"trace_id={HEX}", f"trace_id={HEX} and type=span", f"trace_id={HEX} or trace_id={10:032x}"):
        plan = _plan(store, text)
        assert f"SEARCH observations USING INDEX {index} (trace_id=?)" in plan, (text, plan)
        assert not any(step.startswith("SCAN observations") for step in plan), (text, plan)
        assert _found(store, text) == _found(store, text, narrowed=False) != []


def test_a_trace_id_that_may_be_a_number_is_still_read_in_full(tmp_path: Path) -> None:
    """A value a number's JSON may spell (a number's column text can differ) is left to the matcher."""
    store = _write(tmp_path / "t.db", [_record(1e20, 1), _record(HEX, 2)])
    assert "SCAN observations USING INDEX observations_start" in _plan(store, "trace_id='1e+20'")
    assert _found(store, "trace_id='1e+20'") == [f"{1:016x}"]
