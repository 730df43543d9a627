"""Vector-store edge cases through the real clients: argument forms each library accepts, and
searches whose results are too many to record whole."""

from __future__ import annotations

import inspect
import uuid

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import autotrace
from autotrace.integrations.documents import MAX_DOCUMENTS
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("qdrant", "faiss", "chroma")


def test_a_huge_search_records_a_bounded_sample(traced: Traced) -> None:
    import faiss

    index = faiss.IndexFlatL2(4)
    index.add(np.random.default_rng(0).random((500, 4), dtype="float32"))
    _, ids = index.search(np.zeros((30, 4), dtype="float32"), 100)
    (record,) = traced.records()
    assert record["doc_count"] == 3000 and record["metadata"]["doc_counts"] == [100] * 30
    assert len(record["output"]) == len(record["metadata"]["scores"]) == MAX_DOCUMENTS
    assert [d["id"] for d in record["output"]] == ids.ravel()[:MAX_DOCUMENTS].tolist()
    assert record["metadata"]["documents_recorded"] == MAX_DOCUMENTS
    assert autotrace.stats()["retrieval_documents_truncated"] == 3000 - MAX_DOCUMENTS


def test_chroma_query_by_one_flat_vector(traced: Traced) -> None:
    chromadb = pytest.importorskip("chromadb")
    collection = chromadb.EphemeralClient().get_or_create_collection("flat")
    collection.add(ids=["a", "b"], embeddings=[[1, 0, 0], [0, 1, 0]], documents=["alpha", "beta"])
    as_list = collection.query(query_embeddings=[1, 0, 0], n_results=1)  # chroma takes one vector as one query
    as_array = collection.query(query_embeddings=np.array([0, 1, 0], dtype="float32"), n_results=1)
    records = traced.records()[1:]
    assert [r["name"] for r in records] == ["chroma.query", "chroma.query"]
    assert [r["output"][0]["id"] for r in records] == [as_list["ids"][0][0], as_array["ids"][0][0]]
    assert all(r["metadata"]["queries"] == 1 and r["metadata"]["vector_dimensions"] == 3 for r in records)


def test_qdrant_query_points_positional_and_numpy_arguments(traced: Traced) -> None:
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
    client.upsert("kb", points=[models.PointStruct(id=i, vector=[float(i), 1.0, 0.5], payload={"text": f"doc {i}"})
                                for i in range(1, 5)])
    flt = models.Filter(must=[models.FieldCondition(key="text", match=models.MatchValue(value="doc 2"))])
    positional = client.query_points("kb", [1.0, 1.0, 0.5], None, None, flt, None, 1)
    client.query_points("kb", query=np.array([1.0, 1.0, 0.5]), limit=2)
    client.query_points("kb", query=models.NearestQuery(nearest=[1.0, 1.0, 0.5]), limit=2)
    _, by_position, by_array, nearest = traced.records()
    assert by_position["top_k"] == 1 and by_position["doc_count"] == len(positional.points) == 1
    assert by_position["metadata"]["filter"]["must"][0]["key"] == "text"
    assert by_array["metadata"]["vector_dimensions"] == nearest["metadata"]["vector_dimensions"] == 3


def test_a_huge_search_inside_a_framework_retriever_counts_nothing_as_left_out(traced: Traced) -> None:
    """The owner records (and counts) the documents its framework returns; the store's own
    results are not recorded there, so none of them is counted as truncated."""
    import faiss

    index = faiss.IndexFlatL2(4)
    index.add(np.random.default_rng(0).random((500, 4), dtype="float32"))
    with autotrace.start_retrieval("framework-retriever", query="q"):
        distances, _ = index.search(np.zeros((30, 4), dtype="float32"), 100)
    (record,) = traced.records()
    assert record["name"] == "framework-retriever" and record["metadata"]["store"] == "faiss"
    assert record["metadata"]["scores"] == pytest.approx(distances.ravel()[:MAX_DOCUMENTS].tolist())
    assert "retrieval_documents_truncated" not in autotrace.stats()


def test_faiss_binary_index_search_is_a_retrieval(traced: Traced) -> None:
    import faiss

    index = faiss.IndexBinaryFlat(16)  # 16 bits: rows of 2 bytes, Hamming distances
    index.add(np.random.default_rng(0).integers(0, 255, (10, 2), dtype="uint8"))
    distances, ids = index.search(np.zeros((1, 2), dtype="uint8"), 3)
    (record,) = traced.records()
    assert (record["type"], record["name"], record["metadata"]["collection"]) == ("retriever", "faiss.search",
                                                                                 "IndexBinaryFlat")
    assert [d["id"] for d in record["output"]] == ids[0].tolist() and record["doc_count"] == 3
    assert record["metadata"]["scores"] == distances[0].tolist() and record["metadata"]["vector_dimensions"] == 16


def test_qdrant_search_by_a_points_id_records_the_id_not_a_query_text(traced: Traced) -> None:
    """A point id (an integer, a UUID or its string) as ``query`` searches by that point's vector."""
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
    point = uuid.UUID("6a2f41a3-c54c-4f7f-8d5b-3b8f3e3f2a11")
    client.upsert("kb", points=[models.PointStruct(id=1, vector=[1.0, 1.0, 0.5]),
                                models.PointStruct(id=str(point), vector=[0.0, 1.0, 0.5])])
    by_int = client.query_points("kb", query=1, limit=1)
    client.query_points("kb", query=str(point), limit=1)
    client.query_points("kb", query=models.NearestQuery(nearest=point), limit=1)
    records = traced.records()[1:]
    assert [r["input"] for r in records] == ["id:1", f"id:{point}", f"id:{point}"]
    assert "vector_dimensions" not in records[0]["metadata"]
    assert [d["id"] for d in records[0]["output"]] == [p.id for p in by_int.points]


def test_chroma_arguments_given_by_position(traced: Traced) -> None:
    chromadb = pytest.importorskip("chromadb")
    from chromadb.api.models.Collection import Collection

    collection = chromadb.EphemeralClient().get_or_create_collection("positional")
    collection.add(["a", "b"], [[1, 0, 0], [0, 1, 0]], [{"k": 1}, {"k": 2}], ["alpha", "beta"])
    at = list(inspect.signature(Collection.query).parameters)[1:]  # chromadb 1.x added ids before n_results
    query = [None] * (at.index("where") + 1)
    query[0], query[at.index("n_results")], query[at.index("where")] = [[1, 0, 0]], 1, {"k": 1}
    found = collection.query(*query)
    got = collection.get(None, {"k": 2}, 1)
    _, search, fetched = traced.records()
    assert (search["top_k"], search["metadata"]["filter"], search["doc_count"]) == (1, {"k": 1}, len(found["ids"][0]))
    assert (fetched["top_k"], fetched["metadata"]["filter"], fetched["doc_count"]) == (1, {"k": 2}, len(got["ids"]))
