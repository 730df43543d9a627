"""Vector-store calls recorded through the real clients: Qdrant's group lookups,
query kinds and ``upload_points``; Chroma's query texts, ``where_document``, ``update`` and its
async collections (against a real local Chroma server); FAISS's ``range_search``."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from tests.helpers import Traced

pytestmark = pytest.mark.integrations("qdrant", "faiss", "chroma")


def _qdrant(client: QdrantClient) -> QdrantClient:
    """``kb`` (chunks whose ``author`` is a point of ``authors``) and ``authors`` in ``client``."""
    for name in ("kb", "authors"):
        client.create_collection(name, vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
    client.upsert("kb", points=[models.PointStruct(id=i, vector=[float(i), 1.0, 0.5],
                                                   payload={"text": f"doc {i}", "author": [10, 11, "x"][i % 3]})
                                for i in range(1, 6)])
    many = {f"k{i}": i for i in range(30)}
    client.upsert("authors", points=[
        models.PointStruct(id=10, vector=[1.0, 0.0, 0.0], payload={"name": "Ann", "bio": "b" * 300, **many}),
        models.PointStruct(id=11, vector=[0.0, 1.0, 0.0], payload={"name": "Bob", "tags": ["x", "y"]})])
    return client


def test_qdrant_grouped_search_records_each_groups_lookup(traced: Traced) -> None:
    client = _qdrant(QdrantClient(":memory:"))
    response = client.query_points_groups("kb", "author", [1.0, 1.0, 0.5], limit=3, group_size=2,
                                          with_lookup="authors")
    selected = client.query_points_groups("kb", "author", [1.0, 1.0, 0.5], limit=3, group_size=2,
                                          with_lookup=models.WithLookup(collection="authors", with_payload=["name"]))
    plain = client.query_points_groups("kb", "author", [1.0, 1.0, 0.5], limit=3, group_size=2)
    records = [r for r in traced.records() if r["name"] == "qdrant.query_points_groups"]
    assert len(records) == 3
    whole, names, without = records
    assert [(g.id, g.lookup and g.lookup.id) for g in response.groups] == [(11, 11), ("x", None), (10, 10)]
    ann = {"name": "Ann", "bio": "b" * 200, **{f"k{i}": i for i in range(18)}}  # 20 keys, values cut at 200
    assert [d["metadata"] for d in whole["output"]] == [
        {"group": 11, "lookup": {"id": 11, "payload": {"name": "Bob", "tags": "['x', 'y']"}}}, {"group": 11},
        {"group": "x"}, {"group": "x"},
        {"group": 10, "lookup": {"id": 10, "payload": ann}}]
    assert [(d["id"], d["score"], d["content"]) for d in whole["output"]] == [
        (hit.id, hit.score, hit.payload["text"]) for group in response.groups for hit in group.hits]
    assert whole["doc_count"] == 5 and whole["metadata"]["doc_counts"] == [2, 2, 1]
    assert [d["metadata"].get("lookup") for d in names["output"]] == [
        {"id": 11, "payload": {"name": "Bob"}}, None, None, None, {"id": 10, "payload": {"name": "Ann"}}]
    assert [g.lookup for g in selected.groups][1] is None and plain.groups[0].lookup is None
    assert [d["metadata"] for d in without["output"]] == [{"group": g.id} for g in plain.groups for _ in g.hits]


def test_qdrant_grouped_lookup_async_client(traced: Traced) -> None:
    async def scenario() -> models.GroupsResult:
        client = AsyncQdrantClient(":memory:")
        for name in ("kb", "authors"):
            await client.create_collection(name, vectors_config=models.VectorParams(
                size=3, distance=models.Distance.DOT))
        await client.upsert("kb", points=[models.PointStruct(id=1, vector=[1.0, 0.0, 0.0], payload={"author": 7})])
        await client.upsert("authors", points=[models.PointStruct(id=7, vector=[1.0, 0.0, 0.0],
                                                                  payload={"name": "Cy"})])
        return await client.query_points_groups("kb", "author", [1.0, 0.0, 0.0], with_lookup="authors")

    response = asyncio.run(scenario())
    grouped = traced.records()[-1]
    assert grouped["name"] == "qdrant.query_points_groups" and response.groups[0].lookup.id == 7
    assert grouped["output"] == [{"id": 1, "score": 1.0, "metadata": {"group": 7,
                                                                       "lookup": {"id": 7, "payload": {"name": "Cy"}}}}]


def test_qdrant_query_kinds_record_their_type(traced: Traced) -> None:
    client = _qdrant(QdrantClient(":memory:"))
    recommended = client.query_points("kb", query=models.RecommendQuery(
        recommend=models.RecommendInput(positive=[1], negative=[5])), limit=2)
    fused = client.query_points("kb", prefetch=[models.Prefetch(query=[1.0, 1.0, 0.5], limit=3),
                                                models.Prefetch(query=[5.0, 1.0, 0.5], limit=3)],
                                query=models.FusionQuery(fusion=models.Fusion.RRF), limit=2)
    sparse = models.SparseVector(indices=[0], values=[1.0])
    with pytest.raises(ValueError):  # kb has no sparse vectors: the call fails as it would untraced
        client.query_points("kb", query=sparse, using="words")
    records = [r for r in traced.records() if r["name"] == "qdrant.query_points"]
    assert [r["metadata"].get("query_type") for r in records] == ["recommend", "fusion", "sparse"]
    assert [r.get("input") for r in records] == [None, None, None]
    assert [d["id"] for d in records[0]["output"]] == [p.id for p in recommended.points]
    assert [d["id"] for d in records[1]["output"]] == [p.id for p in fused.points]
    assert records[2]["level"] == "ERROR"


def test_qdrant_upload_points_is_a_write(traced: Traced) -> None:
    client = _qdrant(QdrantClient(":memory:"))
    client.upload_points("kb", [models.PointStruct(id=20, vector=[1.0, 2.0, 3.0]),
                                models.PointStruct(id=21, vector=[1.0, 2.0, 3.0])])
    client.upload_points("kb", (models.PointStruct(id=i, vector=[1.0, 2.0, 3.0]) for i in range(30, 33)))

    async def scenario() -> int:
        other = AsyncQdrantClient(":memory:")
        await other.create_collection("kb", vectors_config=models.VectorParams(size=3,
                                                                               distance=models.Distance.DOT))
        other.upload_points("kb", [models.PointStruct(id=1, vector=[1.0, 0.0, 0.0])])  # synchronous here
        return (await other.count("kb")).count

    assert asyncio.run(scenario()) == 1 and client.count("kb").count == 10
    uploads = [r for r in traced.records() if r["name"] == "qdrant.upload_points"]
    common = {"store": "qdrant", "operation": "upload_points", "collection": "kb"}
    assert [(r["type"], r["metadata"]) for r in uploads] == [  # a generator is not counted: that would consume it
        ("span", {**common, "count": 2}), ("span", common), ("span", {**common, "count": 1})]


def _chroma(name: str) -> Any:
    """A collection ``name`` of three documents, embedded by a deterministic local function
    (chromadb's default one downloads a model)."""
    chromadb = pytest.importorskip("chromadb")
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class Embedder(EmbeddingFunction):
        def __init__(self) -> None:
            pass

        @staticmethod
        def name() -> str:
            return "fixed-embedder"

        def get_config(self) -> dict[str, Any]:
            return {}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> Embedder:
            return Embedder()

        def __call__(self, input: Documents) -> Embeddings:
            return [np.array([float(len(t)), float(t.count("a")), 1.0], dtype="float32") for t in input]

    collection = chromadb.EphemeralClient().get_or_create_collection(name, embedding_function=Embedder())
    collection.add(ids=["a", "b", "c"], documents=["alpha", "beta", "gamma ray"],
                   metadatas=[{"k": 1}, {"k": 2}, {"k": 3}])
    return collection


def test_chroma_query_texts_by_keyword_and_position(traced: Traced) -> None:
    collection = _chroma("texts7")
    positional = collection.query(None, ["alphx"], n_results=2)
    one = collection.query(query_texts="beta", n_results=1)
    two = collection.query(query_texts=["alpha", "gamma rax"], n_results=2, where={"k": {"$gte": 1}})
    records = [r for r in traced.records() if r["name"] == "chroma.query"]
    assert [r["input"] for r in records] == ["alphx", "beta", ["alpha", "gamma rax"]]
    by_position, single, pair = records
    assert by_position["output"] == [{"id": "a", "score": 1.0, "content": "alpha"},
                                     {"id": "b", "score": 1.0, "content": "beta"}]
    assert [d["id"] for d in by_position["output"]] == positional["ids"][0]
    assert by_position["metadata"]["scores"] == positional["distances"][0] == [1.0, 1.0]
    assert (by_position["top_k"], by_position["doc_count"], by_position["metadata"]["collection"]) == (2, 2, "texts7")
    assert single["output"] == [{"id": "b", "score": 0.0, "content": "beta"}] and one["ids"] == [["b"]]
    assert [(d["id"], d["score"]) for d in pair["output"]] == [
        (i, d) for ids, distances in zip(two["ids"], two["distances"], strict=True)
        for i, d in zip(ids, distances, strict=True)] == [("a", 0.0), ("b", 2.0), ("c", 0.0), ("a", 17.0)]
    assert pair["metadata"]["doc_counts"] == [2, 2] and pair["metadata"]["filter"] == {"k": {"$gte": 1}}


def test_chroma_where_document_and_update(traced: Traced) -> None:
    collection = _chroma("wheredoc7")
    found = collection.query(query_texts=["alpha"], n_results=3, where_document={"$contains": "ta"})
    got = collection.get(where_document={"$contains": "gamma"})
    collection.get(None, None, None, None, {"$contains": "al"})
    by_vector = collection.query(query_embeddings=[[5.0, 2.0, 1.0]], n_results=3, where_document={"$contains": "b"})
    collection.update(ids=["a", "b"], documents=["alpha2", "beta2"])
    records = traced.records()
    assert [r["name"] for r in records] == ["chroma.add", "chroma.query", "chroma.get", "chroma.get",
                                            "chroma.query", "chroma.update"]
    _, query, get, positional, vector, update = records
    assert by_vector["ids"] == [["b"]] and vector["output"][0]["id"] == "b"
    assert {k: vector["metadata"][k] for k in ("where_document", "queries", "vector_dimensions")} == {
        "where_document": {"$contains": "b"}, "queries": 1, "vector_dimensions": 3}
    assert query["metadata"]["where_document"] == {"$contains": "ta"}
    assert [d["id"] for d in query["output"]] == found["ids"][0] == ["b"]
    assert get["metadata"]["where_document"] == {"$contains": "gamma"} and get["output"] == [
        {"id": "c", "content": "gamma ray"}] and got["ids"] == ["c"]
    assert positional["metadata"]["where_document"] == {"$contains": "al"}
    assert update["type"] == "span" and update["metadata"] == {"store": "chroma", "operation": "update",
                                                               "count": 2, "collection": "wheredoc7"}
    assert collection.get("a")["documents"] == ["alpha2"]


def test_faiss_range_search_records_neighbours_best_first(traced: Traced) -> None:
    import faiss

    index = faiss.IndexFlatL2(3)
    index.add(np.array([[0, 0, 0], [1, 1, 1], [5, 5, 5], [1, 1, 0.9]], dtype="float32"))
    limits, distances, ids = index.range_search(np.array([[0.9, 1, 1], [10, 10, 10]], dtype="float32"), 3.5)
    inner = faiss.IndexFlatIP(3)
    inner.add(np.diag([1.0, 3.0, 2.0]).astype("float32"))
    _, ip_distances, ip_ids = inner.range_search(np.ones((1, 3), dtype="float32"), 0.5)
    binary = faiss.IndexBinaryFlat(16)
    binary.add(np.array([[3, 0], [1, 0], [255, 255]], dtype="uint8"))
    binary.range_search(np.zeros((1, 2), dtype="uint8"), 5)
    l2, ip, hamming = traced.records()
    assert ids.tolist() == [0, 1, 3] and limits.tolist() == [0, 3, 3]  # faiss's own order: not best first
    assert (l2["type"], l2["name"], l2["metadata"]["collection"]) == ("retriever", "faiss.range_search",
                                                                      "IndexFlatL2")
    assert [d["id"] for d in l2["output"]] == [1, 3, 0]
    assert l2["metadata"]["scores"] == pytest.approx(sorted(distances.tolist()))
    assert l2["metadata"]["top_score"] == pytest.approx(float(distances.min()))
    assert (l2["doc_count"], l2["metadata"]["doc_counts"], l2["metadata"]["queries"]) == (3, [3, 0], 2)
    assert (l2["metadata"]["radius"], l2["metadata"]["metric"], l2.get("top_k")) == (3.5, "l2", None)
    assert ip_ids.tolist() == [0, 1, 2] and ip["metadata"]["metric"] == "inner_product"
    assert [(d["id"], d["score"]) for d in ip["output"]] == [(1, 3.0), (2, 2.0), (0, 1.0)]
    assert ip["metadata"]["top_score"] == float(ip_distances.max()) == 3.0
    assert (hamming["metadata"]["metric"], hamming["metadata"]["vector_dimensions"]) == ("hamming", 16)
    assert [(d["id"], d["score"]) for d in hamming["output"]] == [(1, 1.0), (0, 2.0)]


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[int]:
    """A real Chroma server (the package's own ``chroma run``) on a loopback port."""
    pytest.importorskip("chromadb")
    binary = Path(sys.executable).with_name("chroma")
    if not binary.exists():
        pytest.skip("the chroma command is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(binary), "run", "--path", str(tmp_path / "chroma"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "chroma server did not start"
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(10)


def test_chroma_async_collection_calls_are_recorded(traced: Traced, chroma_server: int) -> None:
    import chromadb

    async def scenario() -> tuple[Any, Any]:
        client = await chromadb.AsyncHttpClient(host="127.0.0.1", port=chroma_server)
        collection = await client.get_or_create_collection("asyncdocs")
        await collection.add(ids=["a", "b", "c"], embeddings=[[1, 0, 0], [0, 1, 0], [0, 0, 1]],
                             documents=["alpha", "beta", "gamma"], metadatas=[{"k": 1}, {"k": 2}, {"k": 3}])
        found = await collection.query([[1, 0.1, 0]], n_results=2, where={"k": {"$lte": 2}})
        got = await collection.get(ids=["c"])
        await collection.update(ids=["c"], embeddings=[[0, 0, 2]], documents=["gamma2"])
        await collection.upsert(ids=["d"], embeddings=[[1, 1, 0]], documents=["delta"])
        await collection.delete(ids=["a", "b"])
        return found, got

    found, got = asyncio.run(scenario())
    records = [r for r in traced.records() if r["name"].startswith("chroma.")]
    assert [(r["type"], r["name"]) for r in records] == [
        ("span", "chroma.add"), ("retriever", "chroma.query"), ("retriever", "chroma.get"),
        ("span", "chroma.update"), ("span", "chroma.upsert"), ("span", "chroma.delete")]
    add, query, get, update, upsert, delete = records
    assert [r["metadata"]["count"] for r in (add, update, upsert, delete)] == [3, 1, 1, 2]
    assert query["output"] == [{"id": i, "score": d, "content": c} for i, d, c in zip(
        found["ids"][0], found["distances"][0], found["documents"][0], strict=True)]
    assert [d["id"] for d in query["output"]] == ["a", "b"]
    assert (query["top_k"], query["metadata"]["filter"], query["metadata"]["collection"]) == (
        2, {"k": {"$lte": 2}}, "asyncdocs")
    assert (query["metadata"]["queries"], query["metadata"]["vector_dimensions"], query["doc_count"]) == (1, 3, 2)
    assert get["output"] == [{"id": "c", "content": "gamma"}] and got["ids"] == ["c"]
