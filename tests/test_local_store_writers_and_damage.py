"""The local store with another writer (a second process on the same file), values beyond what
it can count, a record another program damaged, and limits past what it can count. Real SQLite
files; the CLI run in-process."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from autotrace import _internal, cli
from autotrace.export import store_pruning
from autotrace.export.local_store import LocalStore
from tests.test_local_store_cap import MIB, _trace


def test_a_prune_waits_for_another_writer_instead_of_failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A prune that read the store before another process committed could not write after it
    ("database is locked" at once, no busy wait): the store stayed over its cap."""
    path = tmp_path / "shared.db"
    store = LocalStore(path, max_mb=1000)
    for trace in range(40):
        store.write(_trace(trace))
    committed = threading.Event()

    def other_process_writes() -> None:
        with sqlite3.connect(path, timeout=10, isolation_level=None) as other:
            other.execute("INSERT INTO scores (id, trace_id, name, value, created_ns) VALUES ('s', 'x', 'n', 1, 1)")
        committed.set()

    settled = store_pruning._settled
    started: list[threading.Thread] = []

    def another_writer_meanwhile(db: sqlite3.Connection) -> Any:
        found = settled(db)
        if not started:  # in the first round
            started.append(threading.Thread(target=other_process_writes))
            started[0].start()
            time.sleep(0.3)  # it commits now if it can
        return found

    monkeypatch.setattr(store_pruning, "_settled", another_writer_meanwhile)
    cap = store_pruning.SizeCap(int(0.05 * MIB))
    cap.enforce(store.used_bytes, store._transaction, path)
    assert committed.wait(10)  # after the prune's commit
    started[0].join(5)
    assert store.used_bytes() <= cap.max_bytes and "internal_errors.local_store.cap" not in _internal.stats()


def test_a_total_beyond_a_float_is_left_out_not_the_batch(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "big.db")
    records = _trace(1)
    records[0]["usage"] = {"input": 1, "output": 2, "total": 10**400}
    store.write(records)
    assert len(store.trace(records[0]["trace_id"])) == len(records)
    assert _internal.stats()["local_store.int_out_of_range"] == 1


def test_show_says_a_damaged_record_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "damaged.db"
    store = LocalStore(path)
    store.write(_trace(1))
    trace_id = _trace(1)[0]["trace_id"]
    with sqlite3.connect(path) as db:
        db.execute("UPDATE observations SET record = ? WHERE rowid = (SELECT min(rowid) FROM observations)",
                   (json.dumps({"type": "generation", "name": "no ids"}),))
    assert cli.main(["--db", str(path), "show", trace_id]) == 1
    err = capsys.readouterr().err
    assert err.startswith("autotrace: local store") and "damaged observation (no id or trace_id)" in err


@pytest.mark.parametrize("command", [["traces"], ["query", "type=span"]])
def test_a_limit_past_what_the_store_counts_means_all(command: list[str], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.db"
    LocalStore(path).write(_trace(1))
    assert cli.main(["--db", str(path), *command, "--limit", "99999999999999999999", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) >= 1
