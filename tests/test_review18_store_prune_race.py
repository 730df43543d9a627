"""Review 18: two writers of one store (gunicorn workers, two services) past its cap at once. Each
measured the store, then waited for the write lock while the other pruned, and pruned by its stale
measure: every finished trace went, then those still being written (a root arriving later stood
alone, its trace counted as pruned twice). Real SQLite files and connections; the other writer's
prune is run while the first one waits for the lock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import autotrace
from autotrace.export.local_store import LocalStore
from tests.test_local_store_cap import MIB, SPANS, _record, _stored, _trace

OPEN = 99  # a trace still being written: its children stored, its root not yet


def test_a_writer_that_waited_for_another_ones_prune_takes_nothing_more(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    filler = LocalStore(path, max_mb=None)
    for trace in range(40):
        filler.write(_trace(trace))
    now = time.time_ns()
    filler.write([_record(OPEN, span, 0, now - 1000, now, 3000) for span in range(1, SPANS)])
    cap = filler.used_bytes() / MIB / 2
    filler.close()
    first, other = LocalStore(path, max_mb=cap), LocalStore(path, max_mb=cap)
    after_other: dict[str, Any] = {}

    @contextmanager
    def waited() -> Iterator[Any]:
        if not after_other:  # while ``first`` waits for the lock, ``other`` prunes
            other._cap.enforce(other.used_bytes, other._transaction, "t")  # type: ignore[union-attr]
            after_other.update(traces=sorted(_stored(path)), stats=dict(autotrace.stats()))
        with first._transaction() as db:
            yield db

    first._cap.enforce(first.used_bytes, waited, "t")  # type: ignore[union-attr]
    kept = sorted(_stored(path))
    assert f"{OPEN + 1:032x}" in kept and 0 < after_other["stats"]["local_store_pruned_traces"] < 40
    assert kept == after_other["traces"]  # nothing more went: the store was under the target already
    assert autotrace.stats() == after_other["stats"]
