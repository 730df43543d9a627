"""Review 15: retention by age under a wall clock set far forward. The cutoff was the clock minus the
retention: one purge under a clock a few years ahead (a bad NTP step, a VM's clock) deleted the
whole store. Real SQLite files; the wall clock the store reads is the only thing replaced."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from autotrace.export import local_store
from autotrace.export.local_store import LocalStore
from tests.test_local_store_review3 import record

DAY = 86_400 * 10**9
NOW = time.time_ns()
JUMP = 1000 * DAY


def _set_clock(monkeypatch: pytest.MonkeyPatch, wall_ns: int) -> None:
    """The wall clock the store reads says ``wall_ns`` (its monotonic clock stays the real one)."""
    monkeypatch.setattr(local_store, "time", SimpleNamespace(time_ns=lambda: wall_ns, monotonic=time.monotonic))


def _stored(path: Path) -> list[str]:
    return sorted(t["trace_id"][-2:] for t in LocalStore(path, read_only=True).traces())


def _store_with_history(path: Path) -> None:
    """Traces that ended 40, 10 and 1 day(s) ago, written without a purge."""
    store = LocalStore(path)
    store._last_purge = time.monotonic()
    store.write([record(0x40, 1, NOW - 40 * DAY), record(0x10, 1, NOW - 10 * DAY), record(1, 1, NOW - DAY)])
    store.close()


def test_a_clock_set_forward_when_a_process_first_writes_expires_only_what_is_old(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.db"
    _store_with_history(path)
    _set_clock(monkeypatch, NOW + JUMP)
    store = LocalStore(path, retention_days=28)
    store.write([record(0x99, 1, NOW + JUMP)])  # its first write purges, then stores the batch
    # the trace 40 days older than the newest stored went; those within 28 days of it stayed
    assert _stored(path) == ["01", "10", "99"]


def test_a_clock_set_forward_while_a_process_runs_expires_only_what_is_old(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.db"
    _store_with_history(path)
    store = LocalStore(path, retention_days=28)
    store.write([record(2, 1, NOW)])  # the first purge, by a right clock: the 40-day-old trace goes
    assert _stored(path) == ["01", "02", "10"]
    _set_clock(monkeypatch, NOW + JUMP)
    store._last_purge = float("-inf")  # the next write purges (an hour later)
    store.write([record(0x99, 1, NOW + JUMP)])
    store.purge()  # and once more, with the batch stamped by the wrong clock stored
    assert _stored(path) == ["01", "02", "10", "99"]


def test_a_purge_as_of_a_given_time_is_not_bounded(tmp_path: Path) -> None:
    """``purge(now_ns)`` (tools, tests) purges as of the time given, as before."""
    path = tmp_path / "t.db"
    _store_with_history(path)
    assert LocalStore(path, retention_days=28).purge(now_ns=NOW + JUMP) == 3
    assert _stored(path) == []
