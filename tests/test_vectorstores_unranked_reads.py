"""Reads that return stored documents without ranking them are retrievals (Qdrant
``retrieve``/``scroll``, Chroma ``get``/``peek``, Pinecone ``fetch``/``fetch_by_metadata``), calls
returning only counts or ids are not recorded, and Qdrant ``upload_collection`` and Pinecone
``update`` are writes. Through the real clients: Qdrant and Chroma in process, a real Chroma
server, Pinecone over HTTP to the loopback fake.

Each library method is wrapped beneath autotrace by a spy keeping what the library itself
returned, so the tests check that the caller gets that very object back."""

from __future__ import annotations

import asyncio
import functools
import inspect
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models

import autotrace
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced, shape
from tests.test_vectorstores_qdrant_chroma_faiss import chroma_server  # noqa: F401  (a fixture: a real Chroma server)

Install = Callable[..., Traced]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Install:
    """``install(integration, spied={cls: [method, ...]})``: spies put under the library's methods
    first, then autotrace installed over them, writing to a temporary local store."""

    def installing(integration: str, spied: dict[type, list[str]]) -> Traced:
        for cls, names in spied.items():
            for name in names:
                monkeypatch.setattr(cls, name, _spy(getattr(cls, name)))
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(integration,),
                          export_interval=0.05)
        return Traced(tmp_path / "t.db")

    return installing


RETURNED: list[Any] = []


def _spy(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method``, keeping each value it returns in ``RETURNED`` (what autotrace's wrapper got)."""
    if inspect.iscoroutinefunction(method):
        async def spied_async(*args: Any, **kwargs: Any) -> Any:
            RETURNED.append(await method(*args, **kwargs))
            return RETURNED[-1]

        return functools.wraps(method)(spied_async)

    def spied(*args: Any, **kwargs: Any) -> Any:
        RETURNED.append(method(*args, **kwargs))
        return RETURNED[-1]

    return functools.wraps(method)(spied)


@pytest.fixture(autouse=True)
def _returned() -> Iterator[None]:
    RETURNED.clear()
    yield
    RETURNED.clear()


def _view(record: dict[str, Any]) -> dict[str, Any]:
    """The fields a retrieval or write is about."""
    return {k: record[k] for k in ("type", "name", "level", "output", "doc_count", "top_k", "metadata")}


def _retrieval(name: str, output: list[dict[str, Any]], top_k: int | None = None,
               **metadata: Any) -> dict[str, Any]:
    store, operation = name.split(".")
    fields = {"store": store, "operation": operation, "doc_count": len(output), **metadata}
    if top_k is not None:
        fields["top_k"] = top_k
    return {"type": "retriever", "name": name, "level": "DEFAULT", "output": output, "doc_count": len(output),
            "top_k": top_k, "metadata": fields}


def _write(name: str, **metadata: Any) -> dict[str, Any]:
    store, operation = name.split(".")
    return {"type": "span", "name": name, "level": "DEFAULT", "output": None, "doc_count": None, "top_k": None,
            "metadata": {"store": store, "operation": operation, **metadata}}


# -- Qdrant -----------------------------------------------------------------------------------------
QDRANT_METHODS = ["retrieve", "scroll", "count"]
POINTS = [models.PointStruct(id=i, vector=[float(i), 1.0, 0.5], payload={"text": f"doc {i}", "g": i % 2})
          for i in range(1, 6)]
ODD = models.Filter(must=[models.FieldCondition(key="g", match=models.MatchValue(value=1))])
DOCS = {i: {"id": i, "content": f"doc {i}"} for i in range(1, 6)}


def test_qdrant_retrieve_and_scroll_are_unranked_retrievals(install: Install) -> None:
    traced = install("qdrant", {QdrantClient: QDRANT_METHODS})
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
    client.upsert("kb", points=POINTS)
    got = client.retrieve("kb", [3, 1, 99])  # 99 is not stored: asked for, not found
    first, offset = page = client.scroll("kb", scroll_filter=ODD, limit=2)
    last = client.scroll(collection_name="kb", scroll_filter=ODD, limit=2, offset=offset)
    counted = client.count("kb")  # a number: not recorded
    assert [got, page, last, counted] == RETURNED and all(a is b for a, b in zip([got, page, last, counted],
                                                                                 RETURNED, strict=True))
    assert ([p.id for p in got], [p.id for p in first], offset, [p.id for p in last[0]], last[1]) == (
        [3, 1], [1, 3], 5, [5], None)
    records = traced.records()
    assert shape(records) == [("span", "qdrant.upsert", []), ("retriever", "qdrant.retrieve", []),
                              ("retriever", "qdrant.scroll", []), ("retriever", "qdrant.scroll", [])]
    assert [_view(r) for r in records[1:]] == [
        _retrieval("qdrant.retrieve", [DOCS[3], DOCS[1]], collection="kb", ids=[3, 1, 99]),
        _retrieval("qdrant.scroll", [DOCS[1], DOCS[3]], 2, collection="kb", filter=ODD.model_dump(exclude_none=True),
                   next_page_offset=5),
        _retrieval("qdrant.scroll", [DOCS[5]], 2, collection="kb", filter=ODD.model_dump(exclude_none=True))]
    assert all("scores" not in r["metadata"] and "top_score" not in r["metadata"] for r in records)


def test_qdrant_ids_and_offsets_are_recorded_by_the_id_rule(install: Install) -> None:
    traced = install("qdrant", {})
    client = QdrantClient(":memory:")
    client.create_collection("uuids", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    ids = sorted(uuid.UUID(int=i * 2**100) for i in range(1, 4))
    client.upsert("uuids", points=[models.PointStruct(id=str(i), vector=[1.0, 0.0]) for i in ids])
    client.retrieve("uuids", ids=ids[:1])
    points, offset = client.scroll("uuids", limit=1)
    _, retrieve, scroll = traced.records()
    assert retrieve["metadata"]["ids"] == [str(ids[0])] and retrieve["output"] == [{"id": str(ids[0])}]
    assert scroll["metadata"]["next_page_offset"] == str(offset) == str(ids[1])
    assert scroll["output"] == [{"id": points[0].id}]


def test_qdrant_async_retrieve_scroll_and_upload_collection(install: Install) -> None:
    traced = install("qdrant", {AsyncQdrantClient: QDRANT_METHODS})

    async def scenario() -> tuple[list[Any], int]:
        client = AsyncQdrantClient(":memory:")
        await client.create_collection("kb", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
        await client.upsert("kb", points=POINTS)
        got = await client.retrieve("kb", ids=[2])
        page = await client.scroll("kb", None, 3)
        client.upload_collection("kb", vectors=[[1.0, 0.0, 0.0]], ids=[7])  # synchronous in the async client
        counted = await client.count("kb")
        return [got, page, counted], counted.count

    results, total = asyncio.run(scenario())
    assert all(a is b for a, b in zip(results, RETURNED, strict=True)) and len(RETURNED) == 3 and total == 6
    records = traced.records()
    assert [(r["type"], r["name"]) for r in records] == [
        ("span", "qdrant.upsert"), ("retriever", "qdrant.retrieve"), ("retriever", "qdrant.scroll"),
        ("span", "qdrant.upload_collection")]
    assert [_view(r) for r in records[1:]] == [
        _retrieval("qdrant.retrieve", [DOCS[2]], collection="kb", ids=[2]),
        _retrieval("qdrant.scroll", [DOCS[1], DOCS[2], DOCS[3]], 3, collection="kb", next_page_offset=4),
        _write("qdrant.upload_collection", count=1, collection="kb")]


def test_qdrant_upload_collection_is_a_write_counted_without_consuming(install: Install) -> None:
    traced = install("qdrant", {})
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upload_collection("kb", np.ones((3, 2), dtype="float32"))
    client.upload_collection("kb", ([1.0, float(i)] for i in range(4)), ids=(10 + i for i in range(4)))
    client.upload_collection("kb", vectors=[[1.0, 2.0], [2.0, 1.0]], payload=[{"a": 1}, {"a": 2}], ids=[20, 21])
    assert client.count("kb").count == 9  # the generators were the store's to consume
    assert [_view(r) for r in traced.records()] == [  # an iterator is not counted: that would consume it
        _write("qdrant.upload_collection", count=3, collection="kb"),
        _write("qdrant.upload_collection", collection="kb"),
        _write("qdrant.upload_collection", count=2, collection="kb")]


def test_unranked_reads_are_bounded_like_searches(install: Install) -> None:
    traced = install("qdrant", {})
    client = QdrantClient(":memory:")
    client.create_collection("big", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert("big", points=[models.PointStruct(id=i, vector=[1.0, 0.0]) for i in range(1, 151)])
    got = client.retrieve("big", ids=list(range(1, 151)))
    page, offset = client.scroll("big", limit=150)
    assert (len(got), len(page), offset) == (150, 150, None)
    _, retrieve, scroll = traced.records()
    assert retrieve["metadata"]["ids"] == list(range(1, 101)) and retrieve["metadata"]["ids_requested"] == 150
    for record in (retrieve, scroll):
        assert (record["doc_count"], len(record["output"]), record["metadata"]["documents_recorded"]) == (150, 100, 100)
        assert record["output"][:2] == [{"id": 1}, {"id": 2}]
    assert "next_page_offset" not in scroll["metadata"] and "ids" not in scroll["metadata"]
    assert autotrace.stats()["retrieval_documents_truncated"] == 100


def test_an_unranked_read_fails_unchanged_and_joins_a_framework_retriever(install: Install) -> None:
    traced = install("qdrant", {})
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    client.upsert("kb", points=POINTS)
    with pytest.raises(ValueError, match="missing"):
        client.scroll("missing", limit=2)
    with autotrace.start_retrieval("framework-retriever", query="q") as outer:
        client.retrieve("kb", ids=[1])
    records = traced.records()
    assert shape(records) == [("span", "qdrant.upsert", []), ("retriever", "qdrant.scroll", []),
                              ("retriever", "framework-retriever", [])]
    failed, owner = records[1], records[2]
    assert (failed["level"], failed["metadata"]["operation"], failed["output"]) == ("ERROR", "scroll", None)
    assert owner["metadata"] == {"store": "qdrant", "collection": "kb"} and owner["trace_id"] == outer.trace_id


# -- Chroma -----------------------------------------------------------------------------------------
def _chroma_docs(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"id": i, "content": c} for i, c in pairs]


def test_chroma_get_and_peek_record_what_was_asked(install: Install) -> None:
    chromadb = pytest.importorskip("chromadb")
    from chromadb.api.models.Collection import Collection

    traced = install("chroma", {Collection: ["get", "peek", "count"]})
    collection = chromadb.EphemeralClient().get_or_create_collection("unranked")
    collection.add(ids=["a", "b", "c"], embeddings=[[1, 0, 0], [0, 1, 0], [0, 0, 1]],
                   documents=["alpha", "beta", "gamma"], metadatas=[{"k": 1}, {"k": 2}, {"k": 1}])
    by_ids = collection.get(ids=["b", "a"], limit=5)
    by_filter = collection.get(where={"k": 1}, where_document={"$contains": "al"})
    both = collection.get(["a", "c"], None, None, None, {"$contains": "gam"})
    one = collection.get("c", include=[])
    peeked = collection.peek(2)
    counted = collection.count()  # a number: not recorded
    returned = [by_ids, by_filter, both, one, peeked, counted]
    assert all(a is b for a, b in zip(returned, RETURNED, strict=True)) and len(RETURNED) == 6 and counted == 3
    records = traced.records()
    assert [(r["type"], r["name"]) for r in records] == [("span", "chroma.add")] + [
        ("retriever", "chroma.get")] * 4 + [("retriever", "chroma.peek")]
    assert [_view(r) for r in records[1:]] == [
        _retrieval("chroma.get", _chroma_docs(*zip(by_ids["ids"], by_ids["documents"], strict=True)), 5,
                   collection="unranked", ids=["b", "a"]),
        _retrieval("chroma.get", _chroma_docs(("a", "alpha")), collection="unranked", filter={"k": 1},
                   where_document={"$contains": "al"}),
        _retrieval("chroma.get", _chroma_docs(("c", "gamma")), collection="unranked", ids=["a", "c"],
                   where_document={"$contains": "gam"}),
        _retrieval("chroma.get", [{"id": "c"}], collection="unranked", ids=["c"]),
        _retrieval("chroma.peek", _chroma_docs(*zip(peeked["ids"], peeked["documents"], strict=True)), 2,
                   collection="unranked")]


def test_chroma_async_get_records_its_operation_and_ids(install: Install, chroma_server: int) -> None:  # noqa: F811
    import chromadb
    from chromadb.api.models.AsyncCollection import AsyncCollection

    traced = install("chroma", {AsyncCollection: ["get"]})

    async def scenario() -> Any:
        client = await chromadb.AsyncHttpClient(host="127.0.0.1", port=chroma_server)
        collection = await client.get_or_create_collection("unranked-async")
        await collection.add(ids=["a", "b"], embeddings=[[1, 0, 0], [0, 1, 0]], documents=["alpha", "beta"])
        return await collection.get(ids=["b"], where_document={"$contains": "be"})

    got = asyncio.run(scenario())
    assert [got] == RETURNED and RETURNED[0] is got
    get = next(r for r in traced.records() if r["name"] == "chroma.get")
    assert _view(get) == _retrieval("chroma.get", _chroma_docs(("b", "beta")), collection="unranked-async",
                                    ids=["b"], where_document={"$contains": "be"})


# -- Pinecone ---------------------------------------------------------------------------------------
VECTORS = [("a", [1.0, 0.0], {"text": "alpha", "g": 1}), ("b", [0.0, 1.0], {"text": "beta", "g": 1}),
           ("c", [0.7, 0.7], {"text": "gamma", "g": 2})]
PINECONE_METHODS = ["fetch", "fetch_by_metadata", "update", "list_paginated"]


@pytest.fixture
def fake() -> Iterator[FakePinecone]:
    with FakePinecone() as server:
        yield server


def _pinecone_expected() -> list[dict[str, Any]]:
    return [_retrieval("pinecone.fetch", [{"id": "b", "content": "beta"}, {"id": "a", "content": "alpha"}],
                       collection="kb", ids=["b", "a", "zz"]),
            _retrieval("pinecone.fetch_by_metadata", [{"id": "a", "content": "alpha"}], 1, collection="kb",
                       filter={"g": 1}, next_page_offset="1"),
            _retrieval("pinecone.fetch_by_metadata", [{"id": "b", "content": "beta"}], 1, collection="kb",
                       filter={"g": 1}),
            _write("pinecone.update", count=1, collection="kb"),
            _write("pinecone.update", filter={"g": 1}, collection="kb")]


def test_pinecone_fetch_and_update(install: Install, fake: FakePinecone) -> None:
    import pinecone
    from pinecone.index import Index

    traced = install("pinecone", {Index: PINECONE_METHODS})
    index = pinecone.Pinecone(api_key="pc-test").Index(host=fake.url)
    index.upsert(vectors=VECTORS, namespace="kb")
    fetched = index.fetch(ids=["b", "a", "zz"], namespace="kb")
    first = index.fetch_by_metadata(filter={"g": 1}, namespace="kb", limit=1)
    last = index.fetch_by_metadata(filter={"g": 1}, namespace="kb", limit=1, pagination_token=first.pagination.next)
    updated = index.update(id="a", set_metadata={"text": "alpha2"}, namespace="kb")
    matched = index.update(filter={"g": 1}, set_metadata={"seen": True}, namespace="kb")
    listed = index.list_paginated(namespace="kb")  # ids only: not recorded
    pages = list(index.list(namespace="kb"))
    returned = [fetched, first, last, updated, matched, listed]
    assert all(a is b for a, b in zip(returned, RETURNED[:6], strict=True)) and len(RETURNED) == 7  # list's page
    assert (list(fetched.vectors), last.pagination, matched.matched_records) == (["b", "a"], None, 2)
    assert [v.id for v in listed.vectors] == [v.id for v in pages[0].vectors] == ["a", "b", "c"]
    assert fake.vectors["kb"]["a"][1] == {"text": "alpha2", "g": 1, "seen": True}
    records = traced.records()
    assert [_view(r) for r in records] == [_write("pinecone.upsert", count=3, collection="kb"),
                                           *_pinecone_expected()]


def test_pinecone_asyncio_fetch_and_update(install: Install, fake: FakePinecone) -> None:
    import pinecone
    from pinecone.async_client.async_index import AsyncIndex

    traced = install("pinecone", {AsyncIndex: PINECONE_METHODS})

    async def scenario() -> list[Any]:
        index = await pinecone.AsyncPinecone(api_key="pc-test").index(host=fake.url)
        await index.upsert(vectors=VECTORS, namespace="kb")
        fetched = await index.fetch(ids=["b", "a", "zz"], namespace="kb")
        first = await index.fetch_by_metadata(filter={"g": 1}, namespace="kb", limit=1)
        last = await index.fetch_by_metadata(filter={"g": 1}, namespace="kb", limit=1,
                                             pagination_token=first.pagination.next)
        updated = await index.update(id="a", set_metadata={"text": "alpha2"}, namespace="kb")
        matched = await index.update(filter={"g": 1}, set_metadata={"seen": True}, namespace="kb")
        listed = await index.list_paginated(namespace="kb")
        await index.close()
        return [fetched, first, last, updated, matched, listed]

    returned = asyncio.run(scenario())
    assert all(a is b for a, b in zip(returned, RETURNED, strict=True)) and len(RETURNED) == 6
    assert [_view(r) for r in traced.records()] == [_write("pinecone.upsert", count=3, collection="kb"),
                                                    *_pinecone_expected()]
