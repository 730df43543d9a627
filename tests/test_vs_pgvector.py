"""pgvector through psycopg 3 against a real Postgres 16 with pgvector (the pgserver wheel)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace.integrations.documents import MAX_DOCUMENTS
from tests.helpers import Traced, shape

pytest.importorskip("pgserver")
psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def postgres(postgres_server: str) -> str:
    """The session's Postgres with this module's ``items`` made afresh (three rows)."""
    with psycopg.connect(postgres_server) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("DROP TABLE IF EXISTS items")
        conn.execute("CREATE TABLE items (id int primary key, content text, embedding vector(3))")
        conn.execute("INSERT INTO items VALUES (1, 'alpha', '[1,0,0]'), (2, 'beta', '[0,1,0]'), "
                     "(3, 'gamma', '[0,0,1]')")
    return postgres_server


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


# -- rows that arrive after the call: Cursor.stream() and named (server-side) cursors --------------

ALL = "SELECT id, content, embedding <-> %s::vector AS distance FROM items ORDER BY embedding <-> %s::vector"
Q = ("[1,0,0]", "[1,0,0]")


def _rows(record: dict[str, Any]) -> list[tuple[str, float, str]]:
    return [(d["id"], d["score"], d["content"]) for d in record["output"]]


def _returned(rows: list[Any]) -> list[tuple[str, float, str]]:
    return [(str(r[0]), pytest.approx(r[2]), r[1]) for r in rows]


def test_a_stream_is_one_retrieval_ending_with_the_stream(postgres: str, traced: Traced) -> None:
    with psycopg.connect(postgres) as conn, autotrace.start_chain("request"):
        cursor = conn.cursor()
        whole = list(cursor.stream(SEARCH, Q))
        chunked = list(cursor.stream(ALL, Q, size=2))  # rows come two by two, still handed out one by one
        stream = cursor.stream(ALL, Q)
        first = next(stream)
        stream.close()  # closed early: psycopg cancels the rest
        for row in cursor.stream(ALL, Q):  # left early: the stream is dropped at once
            broken = row
            break
        cursor.stream(SEARCH, Q)  # never iterated: no query ran, nothing recorded
        assert list(cursor.stream("SELECT id FROM items ORDER BY id")) == [(1,), (2,), (3,)]  # not a search
        assert conn.execute("SELECT 1").fetchone() == (1,)  # the connection is free again
    records = traced.records()
    assert shape(records) == [("chain", "request", [("retriever", "pgvector.query", [])] * 4)]
    entire, in_chunks, closed, left = records[1:]
    assert _rows(entire) == _returned(whole) and entire["doc_count"] == 2
    assert (entire["top_k"], entire["metadata"]["collection"], entire["metadata"]["metric"]) == (2, "items", "l2")
    assert entire["metadata"]["scores"] == [r[2] for r in whole] and entire["metadata"]["top_score"] == 0.0
    assert _rows(in_chunks) == _returned(chunked) and in_chunks["doc_count"] == 3
    assert _rows(closed) == _rows(left) == _returned([first]) == _returned([broken])
    assert closed["doc_count"] == left["doc_count"] == 1
    assert {r["level"] for r in records} == {"DEFAULT"}


def test_a_failing_stream_records_its_error(postgres: str, traced: Traced) -> None:
    with psycopg.connect(postgres) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            list(conn.cursor().stream("SELECT id FROM nowhere ORDER BY embedding <-> '[1,0,0]'"))
    (record,) = traced.records()
    assert record["level"] == "ERROR" and record["metadata"]["collection"] == "nowhere"
    assert record["doc_count"] == 0 and record["output"] == []


def test_a_long_stream_records_a_bounded_sample(postgres: str, traced: Traced) -> None:
    query = ("SELECT g AS id, ('[' || g || ',0,0]')::vector <-> '[0,0,0]' AS distance FROM generate_series(1, 150) g"
             " ORDER BY 2")
    with psycopg.connect(postgres) as conn:
        rows = list(conn.cursor().stream(query))
    (record,) = traced.records()
    assert len(rows) == record["doc_count"] == 150
    assert [d["id"] for d in record["output"]] == [str(r[0]) for r in rows[:MAX_DOCUMENTS]]
    assert record["metadata"]["scores"] == [r[1] for r in rows[:MAX_DOCUMENTS]]
    assert record["metadata"]["documents_recorded"] == MAX_DOCUMENTS
    assert autotrace.stats()["retrieval_documents_truncated"] == 150 - MAX_DOCUMENTS


def test_a_named_cursor_records_the_rows_its_fetches_bring(postgres: str, traced: Traced) -> None:
    with psycopg.connect(postgres) as conn, conn.cursor(name="search") as cursor:
        fetched_all = cursor.execute(SEARCH, Q).fetchall()
        cursor.execute(ALL, Q)
        pages = [cursor.fetchmany(2), cursor.fetchmany(2)]  # the second has fewer: the end
        cursor.execute(ALL, Q)
        ones = [cursor.fetchone() for _ in range(4)]  # None at the end
        cursor.itersize = 2
        iterated = list(cursor.execute(ALL, Q, binary=True))
        cursor.execute("SELECT id FROM items ORDER BY id")  # not a search
        assert cursor.fetchall() == [(1,), (2,), (3,)]
    records = traced.records()
    assert [r["name"] for r in records] == ["pgvector.query"] * 4
    everything, paged, one_by_one, by_iteration = records
    assert _rows(everything) == _returned(fetched_all) and everything["top_k"] == 2
    assert _rows(paged) == _returned(pages[0] + pages[1]) and paged["doc_count"] == 3
    assert ones[3] is None and _rows(one_by_one) == _returned(ones[:3]) and one_by_one["doc_count"] == 3
    assert _rows(by_iteration) == _returned(iterated) and by_iteration["doc_count"] == 3


def test_a_named_cursor_search_ends_when_closed_executed_again_or_dropped(postgres: str, traced: Traced) -> None:
    with psycopg.connect(postgres) as conn:
        with conn.cursor(name="closed") as cursor:
            first = cursor.execute(ALL, Q).fetchone()
        cursor = conn.cursor(name="again")
        replaced = cursor.execute(ALL, Q).fetchmany(2)
        cursor.execute(SEARCH, ("[0,1,0]", "[0,1,0]"))  # ends the previous search
        cursor.close()
        dropped = conn.cursor(name="dropped")
        kept = dropped.execute(ALL, Q).fetchone()
        del dropped  # freed with rows unread
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.cursor(name="failed").execute("SELECT id FROM nowhere ORDER BY embedding <-> '[1,0,0]'")
    records = traced.records()
    assert [r["name"] for r in records] == ["pgvector.query"] * 5
    closed, previous, never_fetched, freed, failed = records
    assert _rows(closed) == _returned([first]) and _rows(previous) == _returned(replaced)
    assert (closed["doc_count"], previous["doc_count"], never_fetched["doc_count"], freed["doc_count"]) == (1, 2, 0, 1)
    assert _rows(freed) == _returned([kept])
    assert [r["level"] for r in records] == ["DEFAULT"] * 4 + ["ERROR"]
    assert failed["metadata"]["collection"] == "nowhere"


def test_a_fetch_that_fails_ends_the_named_cursor_search_with_its_error(postgres: str, traced: Traced) -> None:
    with psycopg.connect(postgres) as conn:
        cursor = conn.cursor(name="gone")
        cursor.execute(ALL, Q)
        conn.commit()  # the server closes the cursor with the transaction
        with pytest.raises(psycopg.errors.InvalidCursorName):
            cursor.fetchone()
    (record,) = traced.records()
    assert record["level"] == "ERROR" and record["doc_count"] == 0


def test_async_stream_and_named_cursor(postgres: str, traced: Traced) -> None:
    async def scenario() -> tuple[list[Any], Any, list[Any]]:
        async with await psycopg.AsyncConnection.connect(postgres) as conn:
            streamed = [row async for row in conn.cursor().stream(SEARCH, Q)]
            stream = conn.cursor().stream(ALL, Q)
            first = await anext(stream)
            await stream.aclose()
            async with conn.cursor(name="search") as cursor:
                await cursor.execute(ALL, Q)
                fetched = [row async for row in cursor]
            return streamed, first, fetched

    streamed, first, fetched = asyncio.run(scenario())
    records = traced.records()
    assert [r["name"] for r in records] == ["pgvector.query"] * 3
    assert [_rows(r) for r in records] == [_returned(streamed), _returned([first]), _returned(fetched)]
    assert [r["doc_count"] for r in records] == [2, 1, 3]


def test_executemany_is_not_a_retrieval(postgres: str, traced: Traced) -> None:
    """``executemany`` runs a statement once per parameter set, for writes: its results are
    discarded unless ``returning=True``, and then sit in sets the caller walks with ``nextset()``.
    It is left alone (see the module's docstring)."""
    with psycopg.connect(postgres) as conn:
        cursor = conn.cursor()
        cursor.executemany(SEARCH, [Q, ("[0,1,0]", "[0,1,0]")], returning=True)
        assert [c.fetchone()[0] for c in cursor.results()] == [1, 2]
    assert traced.records() == []


def test_uninstall_restores_the_cursors(postgres: str, traced: Traced) -> None:
    def patched() -> list[bool]:
        return [hasattr(method, "__wrapped__") for method in (
            psycopg.Cursor.stream, psycopg.AsyncCursor.stream, psycopg.ServerCursor.__next__,
            psycopg.ServerCursor.execute, psycopg.AsyncServerCursor.__anext__)]

    assert all(patched())
    autotrace.uninstall()
    assert not any(patched())
    with psycopg.connect(postgres) as conn, conn.cursor(name="plain") as cursor:
        assert [row[0] for row in cursor.execute(ALL, Q)] == [1, 2, 3]


def test_the_distance_operators_of_later_pgvector_releases_are_searches_too(postgres: str, traced: Traced) -> None:
    """``<+>`` (L1), ``<~>`` (Hamming) and ``<%>`` (Jaccard) came with pgvector 0.7; old code let such a
    search go unrecorded. The server here may predate them: then each is recorded with its error."""
    with psycopg.connect(postgres) as conn:
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        supported = tuple(int(part) for part in version.split(".")[:2]) >= (0, 7)
        statements = ("SELECT id FROM items ORDER BY embedding <+> '[1,0,0]' LIMIT 1",
                      "SELECT id FROM items ORDER BY binary_quantize(embedding) <~> '101'::bit(3) LIMIT 1",
                      "SELECT id FROM items ORDER BY binary_quantize(embedding) <%> '101'::bit(3) LIMIT 1")
        for statement in statements:
            try:
                conn.execute(statement).fetchall()
            except psycopg.errors.Error:
                assert not supported
                conn.rollback()
    records = traced.records()
    assert [(r["type"], r["name"], r["metadata"]["metric"], r["metadata"]["operator"]) for r in records] == [
        ("retriever", "pgvector.query", "l1", "<+>"), ("retriever", "pgvector.query", "hamming", "<~>"),
        ("retriever", "pgvector.query", "jaccard", "<%>")]
    assert {r["level"] for r in records} == ({"DEFAULT"} if supported else {"ERROR"})
