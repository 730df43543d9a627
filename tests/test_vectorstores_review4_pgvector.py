"""pgvector statements as applications write them, read as code, against a real Postgres 16 with
pgvector (the pgserver wheel): comments and string literals, Jaccard with psycopg placeholders, the
table of the query that searches, the LIMIT of a ranked statement, statements that are no queries
and unnamed columns that are no scores."""

from __future__ import annotations

import json

import pytest

from tests.helpers import Traced
from tests.test_vs_pgvector import postgres, traced  # noqa: F401  (the module's server, with its ``items``)

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("pgserver")

Q = ("[1,0,0]",)


def _summary(records: list[dict]) -> list[tuple]:
    return [(r["metadata"]["collection"], r["top_k"], r["doc_count"]) for r in records]


def test_comments_and_string_literals_are_no_part_of_the_statement(postgres: str, traced: Traced) -> None:  # noqa: F811
    """An operator in a comment made a count a retrieval; an apostrophe in one hid a real search."""
    with psycopg.connect(postgres) as conn:
        counted = conn.execute("SELECT count(*) AS n FROM items /* to rank: embedding <-> q */").fetchone()
        escaped = conn.execute("SELECT id FROM items WHERE content = E'it\\'s <-> x'").fetchall()
        found = conn.execute("SELECT id FROM items -- don't use the index\n"
                             "WHERE content <> 'ann@example.com' ORDER BY embedding <-> %s::vector LIMIT 2", Q).fetchall()
    assert (counted, escaped, found) == ((3,), [], [(1,), (2,)])
    (record,) = traced.records()
    assert _summary([record]) == [("items", 2, 2)] and [d["id"] for d in record["output"]] == ["1", "2"]
    assert "ann@example.com" not in json.dumps(record)  # the statement's text is not recorded


def test_jaccard_written_for_psycopg_placeholders_is_a_search(postgres: str, traced: Traced) -> None:  # noqa: F811
    """With parameters psycopg wants ``%`` doubled: ``<%>`` is written ``<%%>``. The server here
    may predate bit distances (pgvector 0.7): then the search is recorded with its error."""
    with psycopg.connect(postgres) as conn:
        try:
            rows = conn.execute("SELECT id FROM (VALUES (1, '101'::bit(3)), (2, '010'::bit(3))) AS bits (id, b) "
                                "ORDER BY b <%%> %s::bit(3) LIMIT 1", ("100",)).fetchall()
        except psycopg.errors.UndefinedFunction:
            rows = None
    (record,) = traced.records()
    assert (record["metadata"]["operator"], record["metadata"]["metric"], record["top_k"]) == ("<%>", "jaccard", 1)
    assert record["level"] == ("ERROR" if rows is None else "DEFAULT")


def test_the_collection_is_the_table_the_search_reads(postgres: str, traced: Traced) -> None:  # noqa: F811
    """``FROM`` inside a function call (``substring``, ``extract``) names no table, and a CTE
    reading the query's embedding from another table is not where the search ran."""
    with psycopg.connect(postgres) as conn:
        conn.execute("CREATE TEMP TABLE asked (name text, embedding vector(3))")
        conn.execute("INSERT INTO asked VALUES ('x-axis', '[1,0,0]')")
        cut = conn.execute("SELECT id, substring(content FROM 1 FOR 3) AS content, embedding <-> %s::vector AS "
                           "distance FROM items ORDER BY 3 LIMIT 2", Q).fetchall()
        dated = conn.execute("SELECT extract(year FROM now()) AS year, id FROM items "
                             "ORDER BY embedding <=> %s::vector LIMIT 1", Q).fetchall()
        asked = conn.execute("WITH q AS (SELECT embedding FROM asked WHERE name = %s) SELECT i.id, i.embedding "
                             "<=> q.embedding AS distance FROM items i, q ORDER BY 2 LIMIT 2", ("x-axis",)).fetchall()
    assert [len(rows) for rows in (cut, dated, asked)] == [2, 1, 2]
    records = traced.records()
    assert _summary(records) == [("items", 2, 2), ("items", 1, 1), ("items", 2, 2)]
    assert records[0]["output"][0] == {"id": "1", "score": 0.0, "content": "alp"}


def test_the_top_k_is_the_limit_of_a_ranked_statement(postgres: str, traced: Traced) -> None:  # noqa: F811
    """``LIMIT ALL`` is no limit (a subquery's is not the statement's); a statement without
    ``ORDER BY`` only computes distances; ``FETCH FIRST n ROWS ONLY`` is a ``LIMIT``."""
    with psycopg.connect(postgres) as conn:
        unlimited = conn.execute("SELECT id, distance FROM (SELECT id, embedding <-> %s::vector AS distance FROM items "
                                 "ORDER BY 2 LIMIT 2) AS candidates ORDER BY id LIMIT ALL", Q).fetchall()
        computed = conn.execute("SELECT id, embedding <-> %s::vector AS distance FROM items WHERE id = %s LIMIT 1",
                                (*Q, 3)).fetchall()
        fetched = conn.execute("SELECT id FROM items ORDER BY embedding <-> %s::vector FETCH FIRST %s ROWS ONLY",
                               (*Q, 2)).fetchall()
    assert [len(rows) for rows in (unlimited, computed, fetched)] == [2, 1, 2]
    assert _summary(traced.records()) == [("items", None, 2), ("items", None, 1), ("items", 2, 2)]


def test_statements_that_are_no_queries_are_not_retrievals(postgres: str, traced: Traced) -> None:  # noqa: F811
    """``EXPLAIN`` returns a plan, not documents; a ``DELETE`` writes. A query after a ``SET`` in
    the same string still searches (its rows are the second result)."""
    with psycopg.connect(postgres) as conn:
        plan = conn.execute("EXPLAIN SELECT id FROM items ORDER BY embedding <-> %s::vector LIMIT 2", Q).fetchall()
        deleted = conn.execute("DELETE FROM items WHERE embedding <-> %s::vector > 100", Q).rowcount
        conn.execute("SET LOCAL hnsw.ef_search = 40; SELECT id FROM items ORDER BY embedding <-> '[1,0,0]' LIMIT 2")
        conn.rollback()
    assert len(plan) > 1 and deleted == 0
    (record,) = traced.records()
    assert _summary([record]) == [("items", 2, 2)]


def test_an_unnamed_column_that_is_no_score_keeps_the_results(postgres: str, traced: Traced) -> None:  # noqa: F811
    """The last unnamed column (``?column?``) is taken for the distance; when it is some text,
    the ids and the count were lost with it."""
    with psycopg.connect(postgres) as conn:
        rows = conn.execute("SELECT id, embedding <-> %s::vector, 'doc ' || content FROM items ORDER BY 2 LIMIT 2",
                            Q).fetchall()
    (record,) = traced.records()
    assert [r[2] for r in rows] == ["doc alpha", "doc beta"]
    assert record["doc_count"] == 2 and record["output"] == [{"id": "1"}, {"id": "2"}]
    assert record["level"] == "DEFAULT"
