"""pgvector: a search sent in one string after other statements (``SET ...; SELECT ...``, a count
first), against a real Postgres 16 with pgvector (the pgserver wheel). The cursor's current result
is the first statement's; the search's rows are a later one."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import Traced
from tests.test_vs_pgvector import postgres, traced  # noqa: F401  (the module's server, with its ``items``)

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("pgserver")

SEARCH = "SELECT id, content, embedding <-> '[1,0,0]' AS distance FROM items ORDER BY 3 LIMIT 2"
FOUND = [{"id": "1", "score": 0.0, "content": "alpha"}, {"id": "2", "score": 1.4142135623730951, "content": "beta"}]


def _summary(record: dict) -> tuple:
    return record["name"], record["metadata"]["collection"], record["top_k"], record["doc_count"], record["output"]


def test_a_search_after_a_select_records_its_own_rows(postgres: str, traced: Traced) -> None:  # noqa: F811
    """``SELECT count(*) ...; SELECT ... <-> ...`` was recorded with the count's one row (doc_count
    1, a document without id) as the search's results."""
    with psycopg.connect(postgres) as conn:
        cursor = conn.execute(f"SELECT count(*) AS n FROM items; {SEARCH}")
        counted = cursor.fetchall()
        assert cursor.nextset()
        rows = cursor.fetchall()
    assert counted == [(3,)] and [r[0] for r in rows] == [1, 2]
    assert _summary(traced.one()) == ("pgvector.query", "items", 2, 2, FOUND)


def test_a_search_after_set_and_begin_records_its_rows(postgres: str, traced: Traced) -> None:  # noqa: F811
    """Tuning the index for one search (``SET LOCAL hnsw.ef_search``) in the same string left the
    retrieval without results; empty statements and comments between them return no result."""
    statement = f"BEGIN; ; /* tune */ SET LOCAL hnsw.ef_search = 40; -- then search\n{SEARCH}; COMMIT"

    async def search() -> list[tuple]:
        async with await psycopg.AsyncConnection.connect(postgres) as conn:
            cursor = await conn.execute(statement)
            while cursor.pgresult is not None and cursor.pgresult.status != 2 and cursor.nextset():
                pass
            return await cursor.fetchall()

    rows = asyncio.run(search())
    assert [r[0] for r in rows] == [1, 2]
    assert _summary(traced.one()) == ("pgvector.query", "items", 2, 2, FOUND)


def test_the_first_search_is_read_past_a_statement_using_an_operator(postgres: str, traced: Traced) -> None:  # noqa: F811
    """A cleanup ``DELETE`` using a distance operator before the search hid the search: only the
    statement with the first operator was looked at, and it is no query."""
    with psycopg.connect(postgres) as conn:
        cursor = conn.execute(f"DELETE FROM items WHERE embedding <-> '[1,0,0]' < 0; {SEARCH}")
        assert cursor.rowcount == 0 and cursor.nextset()
        rows = cursor.fetchall()
    assert [r[0] for r in rows] == [1, 2]
    assert _summary(traced.one()) == ("pgvector.query", "items", 2, 2, FOUND)
