"""Vector stores through their real clients in memory: Qdrant (sync, async, batch), FAISS, Chroma.
Doc counts, ids and scores are asserted against what the store returned to the caller."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
from opentelemetry import trace
from qdrant_client import AsyncQdrantClient, QdrantClient, models

import autotrace
from autotrace.integrations.base import Patcher
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("qdrant", "faiss", "chroma")


def _qdrant() -> QdrantClient:
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
    return client


POINTS = [models.PointStruct(id=i, vector=[float(i), 1.0, 0.5], payload={"text": f"doc {i}"}) for i in range(1, 5)]


def test_qdrant_query_write_and_batch(traced: Traced) -> None:
    client = _qdrant()
    client.upsert("kb", points=POINTS)
    flt = models.Filter(must=[models.FieldCondition(key="text", match=models.MatchValue(value="doc 2"))])
    response = client.query_points("kb", query=[1.0, 1.0, 0.5], limit=3)
    filtered = client.query_points("kb", query=[1.0, 1.0, 0.5], limit=3, query_filter=flt)
    batch = client.query_batch_points("kb", requests=[models.QueryRequest(query=[1.0, 1.0, 0.5], limit=2),
                                                      models.QueryRequest(query=[4.0, 1.0, 0.5], limit=1)])
    client.delete("kb", points_selector=models.PointIdsList(points=[1, 2]))
    records = traced.records()
    assert shape(records) == [("span", "qdrant.upsert", []), ("retriever", "qdrant.query_points", []),
                              ("retriever", "qdrant.query_points", []), ("retriever", "qdrant.query_batch_points", []),
                              ("span", "qdrant.delete", [])]
    upsert, query, with_filter, batched, delete = records
    assert upsert["metadata"] == {"store": "qdrant", "operation": "upsert", "count": 4, "collection": "kb"}
    assert delete["metadata"]["count"] == 2
    assert query["doc_count"] == len(response.points) == 3
    assert [d["id"] for d in query["output"]] == [p.id for p in response.points]
    assert query["metadata"]["scores"] == [p.score for p in response.points]
    assert query["metadata"]["top_score"] == response.points[0].score
    assert query["output"][0]["content"] == response.points[0].payload["text"]
    assert query["top_k"] == 3 and query["metadata"]["vector_dimensions"] == 3
    assert with_filter["doc_count"] == len(filtered.points) == 1
    assert with_filter["metadata"]["filter"]["must"][0]["key"] == "text"
    assert batched["doc_count"] == 3 and batched["metadata"]["doc_counts"] == [len(b.points) for b in batch]


def test_qdrant_async_client(traced: Traced) -> None:
    async def scenario() -> list[float]:
        client = AsyncQdrantClient(":memory:")
        await client.create_collection("kb", vectors_config=models.VectorParams(size=3,
                                                                                distance=models.Distance.DOT))
        await client.upsert("kb", points=POINTS)
        response = await client.query_points("kb", query=[0.0, 1.0, 0.0], limit=2)
        return [p.score for p in response.points]

    scores = asyncio.run(scenario())
    records = traced.records()
    assert [r["name"] for r in records] == ["qdrant.upsert", "qdrant.query_points"]
    assert records[1]["metadata"]["scores"] == scores and records[1]["doc_count"] == 2


def test_faiss_search_single_and_batch(traced: Traced) -> None:
    import faiss

    index = faiss.IndexFlatL2(3)
    index.add(np.array([[0, 0, 0], [1, 1, 1], [5, 5, 5]], dtype="float32"))
    distances, ids = index.search(np.array([[0.9, 1, 1]], dtype="float32"), 2)
    _, batch_i = index.search(np.array([[0, 0, 0], [5, 5, 5]], dtype="float32"), 5)  # k > ntotal: -1 ids
    inner = faiss.IndexFlatIP(3)
    inner.add(np.eye(3, dtype="float32"))
    inner.search(np.array([[1, 0, 0]], dtype="float32"), 1)
    single, batched, inner_product = traced.records()
    assert (single["name"], single["metadata"]["collection"], single["top_k"]) == ("faiss.search", "IndexFlatL2", 2)
    assert [d["id"] for d in single["output"]] == ids[0].tolist()
    assert single["metadata"]["scores"] == pytest.approx(distances[0].tolist())
    valid = [int((row != -1).sum()) for row in batch_i]
    assert batched["metadata"]["doc_counts"] == valid and batched["doc_count"] == sum(valid) == 6
    assert inner_product["metadata"]["collection"] == "IndexFlatIP" and inner_product["doc_count"] == 1


def test_chroma_query_get_and_writes(traced: Traced) -> None:
    chromadb = pytest.importorskip("chromadb")
    collection = chromadb.EphemeralClient().get_or_create_collection("docs")
    collection.add(ids=["a", "b", "c"], embeddings=[[1, 0, 0], [0, 1, 0], [0, 0, 1]],
                   documents=["alpha", "beta", "gamma"])
    result = collection.query(query_embeddings=[[1, 0, 0]], n_results=2)
    got = collection.get(ids=["b"])
    collection.upsert(ids=["d"], embeddings=[[1, 1, 0]], documents=["delta"])
    collection.delete(ids=["a", "b"])
    records = traced.records()
    assert [r["name"] for r in records] == ["chroma.add", "chroma.query", "chroma.get", "chroma.upsert",
                                            "chroma.delete"]
    add, query, get, upsert, delete = records
    assert (add["metadata"]["count"], upsert["metadata"]["count"], delete["metadata"]["count"]) == (3, 1, 2)
    assert [d["id"] for d in query["output"]] == result["ids"][0]
    assert query["metadata"]["scores"] == result["distances"][0]
    assert query["output"][0]["content"] == "alpha" and query["metadata"]["collection"] == "docs"
    assert get["doc_count"] == len(got["ids"]) == 1


def test_a_framework_retriever_owns_the_search(traced: Traced) -> None:
    client = _qdrant()
    client.upsert("kb", points=POINTS)
    with autotrace.start_retrieval("framework-retriever", query="q") as outer:
        response = client.query_points("kb", query=[1.0, 1.0, 0.5], limit=2)
    records = traced.trace(outer.trace_id)
    assert shape(records) == [("retriever", "framework-retriever", [])]
    assert records[0]["metadata"]["store"] == "qdrant" and records[0]["metadata"]["collection"] == "kb"
    assert records[0]["metadata"]["scores"] == [p.score for p in response.points]


def test_errors_propagate_unchanged(traced: Traced) -> None:
    client = _qdrant()
    with pytest.raises(ValueError, match="missing"):
        client.query_points("missing", query=[1.0, 1.0, 0.5])
    (record,) = traced.records()
    assert record["level"] == "ERROR" and record["name"] == "qdrant.query_points"


def test_a_changed_api_disables_only_that_patch(traced: Traced, caplog: pytest.LogCaptureFixture) -> None:
    patcher = Patcher("qdrant")
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        assert patcher.wrap("qdrant_client", "QdrantClient.renamed_search", lambda *a: None) is False
        assert patcher.wrap("qdrant_client", "QdrantClient.renamed_search", lambda *a: None) is False
    assert caplog.text.count("cannot patch qdrant_client.QdrantClient.renamed_search") == 1
    assert autotrace.stats()["integration_patch_skipped.qdrant"] == 2
    client = _qdrant()
    client.query_points("kb", query=[1.0, 1.0, 0.5])
    assert [r["name"] for r in traced.records()] == ["qdrant.query_points"]


def test_uninstall_restores_the_stores(traced: Traced) -> None:
    import faiss

    assert hasattr(QdrantClient.query_points, "__wrapped__") and hasattr(faiss.IndexFlatL2.search, "__wrapped__")
    autotrace.uninstall()
    assert not hasattr(QdrantClient.query_points, "__wrapped__")
    assert not hasattr(faiss.IndexFlatL2.search, "__wrapped__")


def test_chroma_embeddings_computed_by_the_store_nest_under_its_call(traced: Traced) -> None:
    chromadb = pytest.importorskip("chromadb")
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class LocalEmbedder(EmbeddingFunction):
        """A local embedding function (no model download) recording an embedding, as a client would."""

        def __init__(self) -> None:
            pass

        @staticmethod
        def name() -> str:
            return "local-embedder"

        def get_config(self) -> dict:
            return {}

        @staticmethod
        def build_from_config(config: dict) -> LocalEmbedder:
            return LocalEmbedder()

        def __call__(self, input: Documents) -> Embeddings:
            with autotrace.start_embedding("embed", model="e-1", input=list(input)):
                return [np.array([float(len(t)), 1.0, 0.5], dtype="float32") for t in input]

    collection = chromadb.EphemeralClient().get_or_create_collection("nested", embedding_function=LocalEmbedder())
    collection.add(ids=["a", "b"], documents=["alpha", "be"])
    with autotrace.start_agent("request"):
        result = collection.query(query_texts=["alphz"], n_results=1)
        assert trace.get_current_span().name == "request"
    with autotrace.start_retrieval("framework-retriever"):  # a framework's retriever owns the search
        collection.query(query_texts=["alphz"], n_results=1)
    assert result["ids"] == [["a"]]
    assert shape(traced.records()) == [
        ("span", "chroma.add", [("embedding", "embed", [])]),
        ("agent", "request", [("retriever", "chroma.query", [("embedding", "embed", [])])]),
        ("retriever", "framework-retriever", [("embedding", "embed", [])]),
    ]


def test_work_inside_a_store_call_nests_under_it_sync_and_async(traced: Traced) -> None:
    """What the client runs for the call (its local backend, traced here) is a child of the call."""
    def trace_backend(client: QdrantClient | AsyncQdrantClient) -> None:
        for method in ("upsert", "query_points"):
            setattr(client._client, method, autotrace.observe(name=f"backend.{method}")(
                getattr(client._client, method)))

    sync_client = _qdrant()
    trace_backend(sync_client)
    sync_client.upsert("kb", points=POINTS)
    sync_client.query_points("kb", query=[1.0, 1.0, 0.5], limit=2)

    async def scenario() -> None:
        client = AsyncQdrantClient(":memory:")
        await client.create_collection("kb", vectors_config=models.VectorParams(size=3,
                                                                                distance=models.Distance.DOT))
        trace_backend(client)
        await client.upsert("kb", points=POINTS)
        await client.query_points("kb", query=[0.0, 1.0, 0.0], limit=2)

    asyncio.run(scenario())
    nested = [("span", "qdrant.upsert", [("span", "backend.upsert", [])]),
              ("retriever", "qdrant.query_points", [("span", "backend.query_points", [])])]
    assert shape(traced.records()) == nested + nested


def test_a_failed_store_call_restores_the_callers_context(traced: Traced) -> None:
    client = _qdrant()
    with autotrace.start_chain("request"):
        with pytest.raises(ValueError, match="missing"):
            client.query_points("missing", query=[1.0, 1.0, 0.5])
        with pytest.raises(ValueError, match="missing"):
            client.upsert("missing", points=POINTS)
        assert trace.get_current_span().name == "request"
    records = traced.records()
    assert shape(records) == [("chain", "request", [("retriever", "qdrant.query_points", []),
                                                    ("span", "qdrant.upsert", [])])]
    assert [r["level"] for r in records] == ["DEFAULT", "ERROR", "ERROR"]
