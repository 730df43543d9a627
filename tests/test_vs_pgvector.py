"""pgvector through psycopg 3 against a real Postgres 16 with pgvector (the pgserver wheel)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import autotrace
from tests.helpers import Traced

pgserver = pytest.importorskip("pgserver")
psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    # a directory of its own, not under pytest's numbered temporary directories: another pytest
    # process on the machine prunes those it counts as old, and the server runs as another user
    data = Path(tempfile.mkdtemp(prefix="autotrace-pg-"))
    try:
        server = pgserver.get_server(data, cleanup_mode="stop")
        uri = server.get_uri()
        with psycopg.connect(uri) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute("DROP TABLE IF EXISTS items")
            conn.execute("CREATE TABLE items (id int primary key, content text, embedding vector(3))")
            conn.execute("INSERT INTO items VALUES (1, 'alpha', '[1,0,0]'), (2, 'beta', '[0,1,0]'), "
                         "(3, 'gamma', '[0,0,1]')")
        yield uri
        server.cleanup()
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def traced(tmp_path: Path) -> Traced:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pgvector",),
                      export_interval=0.05)
    return Traced(tmp_path / "t.db")


SEARCH = "SELECT id, content, embedding <-> %s::vector AS distance FROM items ORDER BY embedding <-> %s::vector LIMIT 2"


def test_similarity_query_is_a_retrieval(postgres: str, traced: Traced) -> None:
    with psycopg.connect(postgres) as conn:
        rows = conn.execute(SEARCH, ("[1,0,0]", "[1,0,0]")).fetchall()
        conn.execute("SELECT count(*) FROM items").fetchone()  # plain SQL is not traced
        cosine = conn.cursor().execute("SELECT id FROM items ORDER BY embedding <=> '[0,1,0]' LIMIT 1").fetchall()
    records = traced.records()
    assert [(r["type"], r["name"]) for r in records] == [("retriever", "pgvector.query")] * 2
    search, by_cosine = records
    assert search["doc_count"] == len(rows) == 2
    assert [d["id"] for d in search["output"]] == [str(r[0]) for r in rows]
    assert search["metadata"]["scores"] == pytest.approx([r[2] for r in rows])
    assert search["output"][0]["content"] == "alpha"
    assert search["metadata"]["collection"] == "items" and search["top_k"] == 2
    assert search["metadata"]["metric"] == "l2"
    assert by_cosine["metadata"]["metric"] == "cosine" and by_cosine["doc_count"] == len(cosine) == 1


def test_async_cursor_and_errors(postgres: str, traced: Traced) -> None:
    async def scenario() -> list[Any]:
        async with await psycopg.AsyncConnection.connect(postgres) as conn:
            cursor = await conn.execute(SEARCH, ("[0,0,1]", "[0,0,1]"))
            rows = await cursor.fetchall()
            with pytest.raises(psycopg.errors.UndefinedTable):
                await conn.execute("SELECT id FROM nowhere ORDER BY embedding <-> '[1,0,0]' LIMIT 1")
            return rows

    rows = asyncio.run(scenario())
    found, failed = traced.records()
    assert found["doc_count"] == len(rows) and found["output"][0]["id"] == str(rows[0][0])
    assert failed["level"] == "ERROR" and failed["metadata"]["collection"] == "nowhere"


def test_binary_results_are_read_like_text_ones(postgres: str, traced: Traced) -> None:
    with psycopg.connect(postgres) as conn:
        rows = conn.cursor().execute(SEARCH, ("[0,1,0]", "[0,1,0]"), binary=True).fetchall()
    (record,) = traced.records()
    assert record["doc_count"] == len(rows) == 2
    assert [d["id"] for d in record["output"]] == [str(r[0]) for r in rows]
    assert record["metadata"]["scores"] == pytest.approx([r[2] for r in rows])
    assert record["output"][0]["content"] == rows[0][1] == "beta"


def test_results_not_there_yet_are_unknown_not_empty(postgres: str, traced: Traced) -> None:
    with psycopg.connect(postgres) as conn:
        with conn.pipeline():  # results arrive at the sync, after execute returned
            cursor = conn.execute(SEARCH, ("[1,0,0]", "[1,0,0]"))
        assert len(cursor.fetchall()) == 2
    (record,) = traced.records()
    assert record["name"] == "pgvector.query" and record["doc_count"] is None and record["output"] is None


def test_an_operator_inside_a_string_literal_is_not_a_vector_search(postgres: str, traced: Traced) -> None:
    with psycopg.connect(postgres) as conn:
        assert conn.execute("SELECT to_tsquery('fat <-> rat') AS q").fetchone() == ("'fat' <-> 'rat'",)
        conn.execute("SELECT id FROM items WHERE content <> 'a <-> b' ORDER BY embedding <=> '[0,1,0]' LIMIT 1")
    (record,) = traced.records()
    assert record["metadata"]["metric"] == "cosine" and record["doc_count"] == 1
