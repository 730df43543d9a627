"""The local store's size cap (``local_store_max_mb``): past it, writes on the export thread delete the
oldest whole traces with their scores, counted, until used size is under 90% of the cap; the file
stops growing; readers never prune."""

from __future__ import annotations

import itertools
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace import cli
from autotrace.config import ConfigError, load_settings
from autotrace.export import store_pruning
from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

MIB = 2**20
NOW = time.time_ns() - 3600 * 10**9  # an hour ago: every trace is settled, none may still be written
SPANS = 5  # observations per trace: a root and four children


def _record(trace: int, span: int, parent: int | None, start: int, end: int, size: int) -> dict[str, Any]:
    return {"trace_id": f"{trace + 1:032x}", "id": f"{span + 1:016x}", "parent_id": None if parent is None
            else f"{parent + 1:016x}", "name": f"s{span}", "type": "span", "tenant": "acme", "start_ns": start,
            "end_ns": end, "level": "DEFAULT", "model": None, "usage": None, "cost": None,
            "input": random.Random(trace * 100 + span).randbytes(size // 2).hex()}


def _trace(trace: int, size: int = 3000) -> list[dict[str, Any]]:
    """A root and its children, as a trace is exported: children first; later traces end later."""
    t0 = NOW + trace * 10**9
    children = [_record(trace, i, 0, t0 + i, t0 + i + 1000, size) for i in range(1, SPANS)]
    return [*children, _record(trace, 0, None, t0, t0 + 10**6, size)]


def _score(store: LocalStore, trace: int) -> None:
    store.add_score({"id": f"score-{trace}", "trace_id": f"{trace + 1:032x}", "name": "quality", "value": 1.0})


def _stored(path: Path) -> dict[str, list[tuple[str, str | None]]]:
    """Each stored trace's (id, parent id) pairs, read by a separate connection."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT trace_id, id, parent_id FROM observations").fetchall()
    traces: dict[str, list[tuple[str, str | None]]] = {}
    for trace_id, span_id, parent in rows:
        traces.setdefault(trace_id, []).append((span_id, parent))
    return traces


def _assert_whole(traces: dict[str, list[tuple[str, str | None]]]) -> None:
    for trace_id, spans in traces.items():
        ids = {span_id for span_id, _ in spans}
        assert len(spans) == SPANS, trace_id
        assert all(parent is None or parent in ids for _, parent in spans), trace_id


def _file_bytes(path: Path) -> int:
    return sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if p.exists())


def test_a_store_past_its_cap_keeps_the_newest_traces_whole(tmp_path: Path) -> None:
    """Old code: no cap, the store grew to ~3 MiB. Now: under the cap after every write, the newest
    traces all there and whole, the oldest gone whole with their scores, every removal counted."""
    path = tmp_path / "t.db"
    store = LocalStore(path, max_mb=1)
    written = 150  # about 3 MiB of records
    for trace in range(written):
        store.write(_trace(trace))
        _score(store, trace)
        assert store.used_bytes() <= MIB, trace  # measured in time: never past the cap
    store.close()
    traces = _stored(path)
    _assert_whole(traces)
    kept = sorted(int(t, 16) - 1 for t in traces)
    assert 0 < len(kept) < written and kept == list(range(written - len(kept), written))  # the newest, all
    with sqlite3.connect(path) as db:
        scores = {row[0] for row in db.execute("SELECT trace_id FROM scores")}
    assert scores == set(traces)  # the removed traces' scores went with them
    removed = written - len(kept)
    stats = autotrace.stats()
    assert stats["local_store_pruned_traces"] == removed
    assert stats["local_store_pruned_observations"] == removed * SPANS
    assert stats["local_store_pruned_scores"] == removed


def test_pruning_stops_under_ninety_percent_and_the_file_stops_growing(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = LocalStore(path, max_mb=1)
    sizes = []
    for batch in range(10):  # rounds of 40 traces (~0.8 MiB), records of several traces in a write
        records = [r for trace in range(batch * 40, (batch + 1) * 40) for r in _trace(trace)]
        for start in range(0, len(records), 64):
            store.write(records[start:start + 64])
        sizes.append(_file_bytes(path))
    assert store.used_bytes() <= MIB
    store.close()
    for before, after in itertools.pairwise(sizes[2:]):
        assert after <= before * 1.1, sizes
    assert os.path.getsize(path) <= 1.5 * MIB  # the database file: freed pages reused, not appended
    _assert_whole(_stored(path))


def test_a_prune_takes_the_oldest_whole_traces_to_under_the_target(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = LocalStore(path, max_mb=None)
    for trace in range(60):
        store.write(_trace(trace))
    used = store.used_bytes()
    store.close()
    store = LocalStore(path, max_mb=used / MIB / 2)  # half of what it holds
    store._cap.enforce(store.used_bytes, store._transaction, "t")  # type: ignore[union-attr]
    assert store.used_bytes() <= used / 2 * store_pruning.TARGET
    store.close()
    kept = sorted(int(t, 16) - 1 for t in _stored(path))
    assert kept == list(range(60 - len(kept), 60)) and len(kept) >= 24  # not far past the target


def test_a_trace_that_may_still_be_written_goes_after_finished_ones(tmp_path: Path) -> None:
    """Among the oldest, a trace with no root stored and recent activity is kept while a finished one
    (its root stored) can go, even one that ended later."""
    path = tmp_path / "t.db"
    store = LocalStore(path, max_mb=None)
    now = time.time_ns()
    open_one = [_record(0, i, 0, now - 10**9, now - 10**9 + i, 100) for i in range(1, 3)]  # root not ended
    finished = [_record(1, 0, None, now - 10**8, now - 10**8 + 1, 100)]  # ended after the open one's children
    store.write([*open_one, *finished])
    with store._transaction() as db:
        assert store_pruning.prune_round(db, 1, now)[:3] == (1, 1, 0)
    assert set(_stored(path)) == {f"{1:032x}"}
    with store._transaction() as db:  # nothing else left: it goes too
        assert store_pruning.prune_round(db, 1, now)[:3] == (1, 2, 0)
    store.close()


def test_a_long_trace_whose_first_observations_are_oldest_is_not_taken_before_older_finished_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Order is by a trace's latest end: a trace whose early children are the oldest rows but whose
    root ended last stays while traces that ended before it go (the window of oldest rows widens
    until a trace is settled)."""
    monkeypatch.setattr(store_pruning, "WINDOW_ROWS", 2)
    path = tmp_path / "t.db"
    store = LocalStore(path, max_mb=None)
    long = [_record(999, i, 0, NOW - 10**9, NOW - 10**9 + i, 100) for i in range(1, SPANS)]
    store.write([*long, _record(999, 0, None, NOW - 10**9, NOW + 10**12, 100)])  # its root ends last
    for trace in range(10):
        store.write(_trace(trace, 100))
    with store._transaction() as db:
        assert store_pruning.prune_round(db, 1, NOW)[:3] == (1, SPANS, 0)
    traces = _stored(path)
    assert f"{1000:032x}" in traces and f"{1:032x}" not in traces  # trace 0 (ended first) went
    store.close()


def test_the_cap_through_install_and_the_cli_shows_only_whole_traces(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "traces.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=(), export_interval=0.05,
                      local_store_max_mb=1)
    ids = []
    for i in range(80):  # about 2.4 MiB of inputs
        with autotrace.start_chain(f"turn{i}", input="x" * 10_000) as root:
            with autotrace.start_span("step", input="y" * 10_000), autotrace.start_span("inner", input="z" * 10_000):
                pass
            ids.append(root.trace_id)
        if i % 10 == 9:
            assert autotrace.flush(10.0)
    assert autotrace.flush(10.0)
    store = autotrace.local_store()
    assert store is not None and store.used_bytes() <= MIB
    autotrace.uninstall()
    assert cli.main(["--db", str(path), "traces", "--json", "--limit", "1000"]) == 0
    summaries = json.loads(capsys.readouterr().out)
    assert 0 < len(summaries) < 80
    assert all(s["observations"] == 3 for s in summaries)
    assert [s["trace_id"] for s in reversed(summaries)] == ids[-len(summaries):]  # the newest, all
    for summary in summaries[:5]:
        assert cli.main(["--db", str(path), "show", summary["trace_id"], "--json"]) == 0
        assert [r["name"] for r in json.loads(capsys.readouterr().out)] == [summary["name"], "step", "inner"]
    stats = autotrace.stats()
    assert stats["local_store_pruned_traces"] == 80 - len(summaries)
    assert stats["local_store_pruned_observations"] == 3 * (80 - len(summaries))


def test_reading_never_prunes(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = LocalStore(path, max_mb=None)
    for trace in range(60):
        store.write(_trace(trace))
    store.close()
    assert LocalStore(path, read_only=True, max_mb=1).used_bytes() > MIB
    clean = isolated_env(path.parent)
    for argv in (["traces"], ["query", "type=span"]):
        result = subprocess.run([sys.executable, "-m", "autotrace", "--db", str(path), *argv], capture_output=True,
                                text=True, env={**clean, "AUTOTRACE_LOCAL_STORE_MAX_MB": "1"}, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
    assert len(_stored(path)) == 60


def test_the_setting_from_the_environment_and_keywords() -> None:
    assert load_settings(env={}).local_store_max_mb == 1024
    assert load_settings(env={"AUTOTRACE_LOCAL_STORE_MAX_MB": " 512 "}).local_store_max_mb == 512
    assert load_settings({"local_store_max_mb": 2.5}, env={"AUTOTRACE_LOCAL_STORE_MAX_MB": "512"}).local_store_max_mb \
        == 2.5
    assert load_settings({"local_store_max_mb": "64"}, env={}).local_store_max_mb == 64


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "lots", 0, -5, float("inf"), float("nan"), True, [1]])
def test_invalid_caps_are_config_errors(value: Any) -> None:
    with pytest.raises(ConfigError, match="local_store_max_mb"):
        load_settings({"local_store_max_mb": value}, env={})
    if isinstance(value, str):
        with pytest.raises(ConfigError, match="local_store_max_mb"):
            load_settings(env={"AUTOTRACE_LOCAL_STORE_MAX_MB": value})


def test_a_failing_prune_is_counted_and_the_write_stands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("database is locked")

    store = LocalStore(tmp_path / "t.db", max_mb=0.01)  # below an empty store's size: every write prunes
    monkeypatch.setattr(store_pruning, "prune_round", broken)
    assert store.write(_trace(0)) == SPANS
    assert autotrace.stats()["internal_errors.local_store.cap"] == 1
    monkeypatch.undo()
    store.write(_trace(1))  # the next write prunes: both traces go, the store is left empty but working
    assert _stored(tmp_path / "t.db") == {} and autotrace.stats()["local_store_pruned_traces"] == 2
    store.close()


def test_scores_whose_trace_is_not_stored_go_with_the_traces_older_than_them(tmp_path: Path) -> None:
    """A score whose trace was never stored (given by a service that scores other services' traces)
    ages by its creation time: a round taking traces takes such scores created before the newest of
    them. Old code: those scores stayed until every trace was gone. A score added within the grace
    period stays (its trace may yet be written), and so does one whose trace is stored."""
    path = tmp_path / "t.db"
    store = LocalStore(path, max_mb=None)
    for trace in range(3):  # traces 0..2 end at NOW + trace s (+1 ms for the root)
        store.write(_trace(trace, 100))
    now = time.time_ns()
    created = {"before-0": NOW - 10**9, "between-0-1": NOW + 10**9 // 2,
               "between-1-2": NOW + 3 * 10**9 // 2, "after-2": NOW + 5 * 10**9,
               "recent": now - 10**9}
    for name, created_ns in created.items():
        store.add_score({"id": name, "trace_id": f"{name}".ljust(32, "0"), "name": "quality", "value": 0.5})
        with store._transaction() as db:
            db.execute("UPDATE scores SET created_ns = ? WHERE id = ?", (created_ns, name))
    _score(store, 2)  # its trace is stored: it goes with it, not before
    with store._transaction() as db:
        db.execute("UPDATE scores SET created_ns = ? WHERE id = 'score-2'", (NOW - 10**10,))

    def scores() -> set[str]:
        with sqlite3.connect(path) as db:
            return {row[0] for row in db.execute("SELECT id FROM scores")}

    with store._transaction() as db:
        assert store_pruning.prune_round(db, 1, now)[:3] == (1, SPANS, 1)  # trace 0 and the score before it
    assert scores() == {"between-0-1", "between-1-2", "after-2", "recent", "score-2"}
    with store._transaction() as db:
        assert store_pruning.prune_round(db, 1, now)[:3] == (1, SPANS, 1)  # trace 1 and "between-0-1"
    assert scores() == {"between-1-2", "after-2", "recent", "score-2"}
    with store._transaction() as db:  # trace 2 with its own score and "between-1-2"
        assert store_pruning.prune_round(db, 1, now)[:3] == (1, SPANS, 2)
    assert scores() == {"after-2", "recent"}  # newer than every trace taken; "recent" in its grace too
    with store._transaction() as db:  # no trace left: the rest go oldest first, as before
        assert store_pruning.prune_round(db, 1, now)[:3] == (0, 0, 2)
    assert scores() == set()
    store.close()
