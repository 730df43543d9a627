"""pgvector searches written the way applications write them, against a real Postgres 16 with
pgvector (the pgserver wheel): ``LIMIT`` given as a parameter (psycopg's ``%s`` and ``%(name)s``,
a raw cursor's ``$n``), a subquery's own ``LIMIT``, tables named with ``sql.Identifier`` and rows
whose distance is NULL."""

from __future__ import annotations

import pytest

from tests.helpers import Traced
from tests.test_vs_pgvector import postgres, traced  # noqa: F401  (the module's server, with its ``items``)

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("pgserver")

SIMILAR = "SELECT id, content, embedding <-> %s::vector AS distance FROM items ORDER BY 3"


def test_a_limit_given_as_a_parameter_is_the_top_k(postgres: str, traced: Traced) -> None:  # noqa: F811
    with psycopg.connect(postgres) as conn:
        by_position = conn.execute(SIMILAR + " LIMIT %s", ("[1,0,0]", 2)).fetchall()
        by_name = conn.execute("SELECT id FROM items WHERE content <> '%%s' ORDER BY embedding <-> %(q)s::vector "
                               "LIMIT %(k)s", {"q": "[0,1,0]", "k": 1}).fetchall()
        raw = psycopg.RawCursor(conn).execute("SELECT id FROM items ORDER BY embedding <=> $1::vector LIMIT $2",
                                              ("[0,0,1]", 3)).fetchall()
        streamed = list(conn.cursor().stream(SIMILAR + " LIMIT %b", ("[1,0,0]", 1)))
        with conn.cursor(name="paged") as cursor:
            fetched = cursor.execute(SIMILAR + " LIMIT %t", ("[1,0,0]", 2)).fetchall()
        not_a_number = conn.execute(SIMILAR + " LIMIT %s", ("[1,0,0]", None)).fetchall()
    records = traced.records()
    assert [(r["name"], r["top_k"], r["doc_count"]) for r in records] == [
        ("pgvector.query", 2, 2), ("pgvector.query", 1, 1), ("pgvector.query", 3, 3), ("pgvector.query", 1, 1),
        ("pgvector.query", 2, 2), ("pgvector.query", None, 3)]
    assert [len(rows) for rows in (by_position, by_name, raw, streamed, fetched, not_a_number)] == [2, 1, 3, 1, 2, 3]
    assert [d["id"] for d in records[1]["output"]] == ["2"]


def test_the_top_k_is_the_limit_of_the_rows_returned(postgres: str, traced: Traced) -> None:  # noqa: F811
    """A subquery's LIMIT bounds its candidates; the statement's own (the last) bounds its rows."""
    with psycopg.connect(postgres) as conn:
        rows = conn.execute("SELECT id, distance FROM (SELECT id, embedding <-> %s::vector AS distance FROM items "
                            "ORDER BY 2 LIMIT 3) AS candidates ORDER BY id LIMIT 1", ("[1,0,0]",)).fetchall()
    (record,) = traced.records()
    assert len(rows) == record["doc_count"] == 1
    assert (record["top_k"], record["metadata"]["collection"]) == (1, "items")


def test_a_schema_qualified_identifier_is_the_collection(postgres: str, traced: Traced) -> None:  # noqa: F811
    query = psycopg.sql.SQL("SELECT id FROM {} ORDER BY embedding <-> %s::vector LIMIT 1")
    with psycopg.connect(postgres) as conn:
        conn.execute(query.format(psycopg.sql.Identifier("public", "items")), ("[1,0,0]",)).fetchall()
        conn.execute(query.format(psycopg.sql.Identifier("items")), ("[1,0,0]",)).fetchall()
    assert [r["metadata"]["collection"] for r in traced.records()] == ["public.items", "items"]


def test_scores_stay_aligned_with_rows_whose_distance_is_null(postgres: str, traced: Traced) -> None:  # noqa: F811
    """A row without an embedding has no distance; sorted descending, Postgres puts it first."""
    with psycopg.connect(postgres) as conn:
        rows = conn.execute("SELECT id, 1 - (embedding <=> %s::vector) AS similarity FROM (VALUES "
                            "(1, '[1,0,0]'::vector), (2, NULL), (3, '[0,1,0]')) AS rows (id, embedding) "
                            "ORDER BY similarity DESC", ("[1,0,0]",)).fetchall()
    (record,) = traced.records()
    assert rows == [(2, None), (1, 1.0), (3, 0.0)]
    assert record["output"] == [{"id": "2"}, {"id": "1", "score": 1.0}, {"id": "3", "score": 0.0}]
    assert (record["metadata"]["scores"], record["metadata"]["top_score"]) == ([None, 1.0, 0.0], 1.0)
