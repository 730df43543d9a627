"""pgvector: every fetch of every server-side (named) cursor goes through the integration, to see
the rows of a vector search as they are handed out. Against a real Postgres 16 with pgvector (the
pgserver wheel)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

from autotrace.integrations.documents import MAX_DOCUMENTS
from tests.helpers import Traced
from tests.test_vs_pgvector import postgres, traced  # noqa: F401  (the module's server, with its ``items``)

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("pgserver")

ROWS = 500
PLAIN = f"SELECT g AS id FROM generate_series(1, {ROWS}) g"
SEARCH = (f"SELECT g AS id, '[1,0,0]'::vector <-> '[0,1,0]' AS distance FROM generate_series(1, {ROWS}) g "
          "ORDER BY g")


def _weakref_calls(run: Callable[[], Any]) -> int:
    """How many Python functions of the ``weakref`` module ``run`` calls."""
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call" and frame.f_code.co_filename.endswith("weakref.py"):
            calls += 1

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return calls


def test_iterating_server_cursors_costs_no_weak_lookup_per_row(postgres: str, traced: Traced) -> None:  # noqa: F811
    """Each row handed out by any server-side cursor, a vector search or not, was looked up in a
    ``WeakKeyDictionary`` (Python code costing more than psycopg's own ``__next__``): iterating a
    plain named cursor ran 2.7 times slower once installed. The work per row is now constant."""
    with psycopg.connect(postgres) as conn:
        for sql in (PLAIN, SEARCH):
            with conn.cursor(name="rows") as cursor:
                cursor.itersize = 100
                cursor.execute(sql)
                got: list[Any] = []
                calls = _weakref_calls(lambda cursor=cursor, got=got: got.extend(cursor))
            assert [row[0] for row in got] == list(range(1, ROWS + 1))
            assert calls <= 5, (sql, calls)  # the search's end only (its finaliser detached), not per row
    record = traced.one()
    assert (record["name"], record["doc_count"], record["metadata"]["documents_recorded"]) == (
        "pgvector.query", ROWS, MAX_DOCUMENTS)
    assert record["output"] == [{"id": str(i), "score": 1.4142135623730951} for i in range(1, MAX_DOCUMENTS + 1)]
