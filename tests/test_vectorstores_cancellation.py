"""Vector stores under cancellation, timeouts and abandonment, against the real libraries on
loopback: Postgres 16 with pgvector (the pgserver wheel) through psycopg 3's async cursors, and
Pinecone's asyncio client against the loopback fake. An interrupted search ends once, WARNING,
with the rows it had handed out; the cancellation reaches the caller unchanged."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

import autotrace
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced, shape
from tests.test_vs_pgvector import postgres  # noqa: F401  (the module's server, with its ``items``)

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("pgserver")

ALL = "SELECT id, content, embedding <-> '[1,0,0]' AS distance FROM items ORDER BY embedding <-> '[1,0,0]'"
#: Rows the server takes a while to produce: each row sleeps.
SLOW = ("SELECT id, content, embedding <-> '[1,0,0]' AS distance, pg_sleep(0.2) FROM items "
        "ORDER BY embedding <-> '[1,0,0]'")


def _install(tmp_path: Path, *integrations: str) -> Traced:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=integrations,
                      export_interval=0.05)
    return Traced(tmp_path / "t.db")


def _ends(records: list[dict[str, Any]]) -> list[tuple[str, str, str | None, int | None]]:
    return [(r["name"], r["level"], r["status_message"], r["doc_count"]) for r in records]


def test_a_stream_open_when_the_event_loop_closes_ends_once_without_errors(
        postgres: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    """``asyncio.run`` returning with a stream open closes every async generator left at once:
    psycopg's inside the traced stream must be closed once, by that stream (not also by the loop,
    which fails with "already running" while the stream closes it, or fails the stream's close)."""
    traced = _install(tmp_path, "pgvector")
    kept: list[Any] = []

    async def scenario() -> Any:
        conn = await psycopg.AsyncConnection.connect(postgres)
        stream = conn.cursor().stream(ALL)
        kept.extend((conn, stream))  # still open when the loop closes
        with autotrace.tenant("acme"):
            return await anext(stream)

    caplog.set_level(logging.ERROR, logger="asyncio")
    firsts = [asyncio.run(scenario()) for _ in range(4)]  # the loop closes its generators in no set order
    assert [r for r in caplog.records if r.name == "asyncio"] == []
    records = traced.records()
    assert shape(records) == [("retriever", "pgvector.query", [])] * 4
    assert _ends(records) == [("pgvector.query", "DEFAULT", None, 1)] * 4
    assert [r["output"][0]["id"] for r in records] == [str(row[0]) for row in firsts] == ["1"] * 4
    assert {r["tenant"] for r in records} == {"acme"}
    for stream in kept[1::2]:
        assert stream.ag_frame is None  # closed
    for conn in kept[::2]:
        asyncio.run(conn.close())


def test_a_stream_whose_closing_is_cancelled_still_ends(postgres: str, tmp_path: Path) -> None:  # noqa: F811
    """Closing a stream left early waits for the server (psycopg cancels the query): a cancellation
    there (the task closing it cancelled, as ``asyncio.run`` does to a dropped stream's close)
    propagates unchanged and ends the search, WARNING, with the row it had handed out."""
    traced = _install(tmp_path, "pgvector")

    async def scenario() -> Any:
        conn = await psycopg.AsyncConnection.connect(postgres)
        try:
            with autotrace.start_chain("request"):
                stream = conn.cursor().stream(ALL)
                first = await anext(stream)
                closing = asyncio.create_task(stream.aclose())
                await asyncio.sleep(0)  # closing: waiting for the server to cancel the query
                closing.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await closing
            return first
        finally:
            await conn.close()  # psycopg leaves it busy: closed, not committed

    first = asyncio.run(scenario())
    records = traced.records()
    assert shape(records) == [("chain", "request", [("retriever", "pgvector.query", [])])]
    assert _ends(records[1:]) == [("pgvector.query", "WARNING", "CancelledError", 1)]
    assert records[1]["output"][0]["id"] == str(first[0])


def test_pgvector_timeouts_and_cancellations_end_warning(postgres: str, tmp_path: Path) -> None:  # noqa: F811
    """``wait_for`` around ``execute`` and a named cursor's fetch, and a task cancelled while it
    reads a stream: each search ends WARNING (interrupted), the caller gets the timeout or the
    cancellation; a server-side ``statement_timeout`` is the statement failing: ERROR."""
    traced = _install(tmp_path, "pgvector")

    async def scenario() -> list[str]:
        seen: list[str] = []
        async with await psycopg.AsyncConnection.connect(postgres, autocommit=True) as conn:
            with autotrace.start_chain("request"):
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(conn.execute(SLOW), 0.05)
                seen.append("execute")
        async with await psycopg.AsyncConnection.connect(postgres) as conn:
            cursor = conn.cursor(name="paged")
            await cursor.execute(SLOW)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(cursor.fetchall(), 0.05)
            seen.append("fetch")
        async with await psycopg.AsyncConnection.connect(postgres) as conn:
            reading = asyncio.create_task(anext(conn.cursor().stream(SLOW)))
            await asyncio.sleep(0.05)
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
            seen.append("stream")
        async with await psycopg.AsyncConnection.connect(postgres) as conn:
            await conn.execute("SET statement_timeout = 50")
            with pytest.raises(psycopg.errors.QueryCanceled):
                await anext(conn.cursor().stream(SLOW))
            seen.append("statement_timeout")
        return seen

    assert asyncio.run(scenario()) == ["execute", "fetch", "stream", "statement_timeout"]
    records = traced.records()
    assert shape(records) == [("chain", "request", [("retriever", "pgvector.query", [])])] + [
        ("retriever", "pgvector.query", [])] * 3
    assert _ends(records[1:]) == [("pgvector.query", "WARNING", "CancelledError", None),
                                  ("pgvector.query", "WARNING", "CancelledError", 0),
                                  ("pgvector.query", "WARNING", "CancelledError", 0),
                                  ("pgvector.query", "ERROR", "QueryCanceled: canceling statement due to statement "
                                                              "timeout", 0)]
    assert records[0]["level"] == "DEFAULT"


class _SlowPinecone(FakePinecone):
    """The fake, answering after ``delay`` seconds; a client that gave up is not an error here."""

    delay = 0.0

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        time.sleep(self.delay)
        try:
            super()._handle(handler)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def slow_pinecone() -> Iterator[_SlowPinecone]:
    with _SlowPinecone() as server:
        server.vectors = {"kb": {"a": ([1.0, 0.0], {"text": "alpha"}), "b": ([0.0, 1.0], {"text": "beta"})},
                          "kc": {"c": ([1.0, 1.0], {"text": "gamma"})}}
        yield server


def test_pinecone_asyncio_calls_timed_out_end_warning(tmp_path: Path, slow_pinecone: _SlowPinecone) -> None:
    """``wait_for`` around each asyncio call: a retrieval (or write span) ends WARNING; the
    per-namespace queries of ``query_namespaces`` enrich its one retrieval, so nothing else is left;
    the client's own ``timeout`` is the call failing: ERROR."""
    pinecone = pytest.importorskip("pinecone")
    traced = _install(tmp_path, "pinecone")
    calls = {"query": lambda i: i.query(vector=[1.0, 0.0], top_k=2, namespace="kb"),
             "query_namespaces": lambda i: i.query_namespaces(vector=[1.0, 0.0], top_k=2, namespaces=["kb", "kc"],
                                                              metric="cosine"),
             "fetch": lambda i: i.fetch(ids=["a"], namespace="kb"),
             "upsert": lambda i: i.upsert(vectors=[("z", [1.0, 1.0])], namespace="kb")}

    async def scenario() -> None:
        index = await pinecone.AsyncPinecone(api_key="pc-test").index(host=slow_pinecone.url)
        slow_pinecone.delay = 0.3
        with autotrace.start_chain("request"):
            for call in calls.values():
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(call(index), 0.05)
        with pytest.raises(Exception) as own:
            await index.query(vector=[1.0, 0.0], top_k=2, namespace="kb", timeout=0.05)
        assert type(own.value).__name__ == "PineconeTimeoutError"

    asyncio.run(scenario())
    records = traced.records()
    assert shape(records) == [("chain", "request", [("retriever", "pinecone.query", []),
                                                    ("retriever", "pinecone.query_namespaces", []),
                                                    ("retriever", "pinecone.fetch", []),
                                                    ("span", "pinecone.upsert", [])]),
                              ("retriever", "pinecone.query", [])]
    assert [(r["level"], r["status_message"]) for r in records[1:5]] == [("WARNING", "CancelledError")] * 4
    assert records[0]["level"] == "DEFAULT"
    assert records[5]["level"] == "ERROR" and records[5]["status_message"].startswith("PineconeTimeoutError")
