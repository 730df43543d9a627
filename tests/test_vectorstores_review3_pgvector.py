"""pgvector searches whose parameters come from numpy, against a real Postgres 16 with pgvector
(the pgserver wheel)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import Traced
from tests.test_vs_pgvector import postgres, traced  # noqa: F401  (the module's server, with its ``items``)

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("pgserver")

SIMILAR = "SELECT id, content, embedding <-> %s::vector AS distance FROM items ORDER BY 3"


def test_a_limit_given_as_a_numpy_integer_is_the_top_k(postgres: str, traced: Traced) -> None:  # noqa: F811
    """psycopg sends a numpy integer as a number: ``k`` computed with numpy was no ``top_k``."""
    with psycopg.connect(postgres) as conn:
        by_position = conn.execute(SIMILAR + " LIMIT %s", ("[1,0,0]", np.int64(2))).fetchall()
        by_name = conn.execute("SELECT id FROM items ORDER BY embedding <-> %(q)s::vector LIMIT %(k)s",
                               {"q": "[0,1,0]", "k": np.int32(1)}).fetchall()
        flag = conn.execute(SIMILAR + " LIMIT %s::int", ("[1,0,0]", True)).fetchall()
    records = traced.records()
    assert [len(rows) for rows in (by_position, by_name, flag)] == [2, 1, 1]
    assert [(r["top_k"], r["doc_count"]) for r in records] == [(2, 2), (1, 1), (None, 1)]
    assert [type(r["metadata"]["top_k"]) for r in records[:2]] == [int, int]
