"""Vector-store calls in argument forms the libraries accept, through the real clients: a Chroma
query restricted to some ids, Qdrant's batch of requests and Pinecone's namespaces given as
iterators (Pinecone's client talks to the loopback fake of its REST API)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import autotrace
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("chroma")


def test_chroma_query_restricted_to_ids_records_them(traced: Traced) -> None:
    chromadb = pytest.importorskip("chromadb")
    from chromadb.api.models.Collection import Collection

    collection = chromadb.EphemeralClient().get_or_create_collection("restricted")
    collection.add(ids=["a", "b", "c"], embeddings=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], documents=["x", "y", "z"])
    by_keyword = collection.query([1.0, 0, 0], n_results=2, ids=["b", "c"], where_document={"$contains": "y"})
    at = list(inspect.signature(Collection.query).parameters)[1:]
    positional = [None] * (at.index("n_results") + 1)
    positional[0], positional[at.index("ids")], positional[at.index("n_results")] = [[1.0, 0, 0]], "c", 1
    by_position = collection.query(*positional)
    plain = collection.query([1.0, 0, 0], n_results=1)
    records = traced.records()[1:]
    assert [r["name"] for r in records] == ["chroma.query"] * 3
    assert by_keyword["ids"] == [["b"]] and by_position["ids"] == [["c"]] and plain["ids"] == [["a"]]
    assert [r["metadata"] for r in records] == [
        {"store": "chroma", "collection": "restricted", "metric": "l2", "top_k": 2, "doc_count": 1, "scores": [2.0], "top_score": 2.0,
         "ids": ["b", "c"], "where_document": {"$contains": "y"}, "queries": 1, "vector_dimensions": 3},
        {"store": "chroma", "collection": "restricted", "metric": "l2", "top_k": 1, "doc_count": 1, "scores": [2.0], "top_score": 2.0,
         "ids": ["c"], "queries": 1, "vector_dimensions": 3},
        {"store": "chroma", "collection": "restricted", "metric": "l2", "top_k": 1, "doc_count": 1, "scores": [0.0], "top_score": 0.0,
         "queries": 1, "vector_dimensions": 3}]
    assert [r["output"] for r in records] == [[{"id": "b", "score": 2.0, "content": "y"}],
                                              [{"id": "c", "score": 2.0, "content": "z"}],
                                              [{"id": "a", "score": 0.0, "content": "x"}]]


@pytest.mark.integrations("qdrant")
def test_qdrant_batch_of_requests_given_as_an_iterator(traced: Traced) -> None:
    """The client takes any iterable of requests: a generator is still one recorded retrieval, one
    count per query in ``doc_counts`` (counting the requests beforehand would consume them)."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    client.upsert("kb", [models.PointStruct(id=i, vector=[3.0 - i, 0.0, 0.0]) for i in range(3)])
    responses = client.query_batch_points("kb", (models.QueryRequest(query=[1.0, 0.0, 0.0], limit=k)
                                                 for k in (1, 2)))
    records = traced.records()
    assert [(r["type"], r["name"]) for r in records] == [("span", "qdrant.upsert"),
                                                         ("retriever", "qdrant.query_batch_points")]
    batch = records[1]
    assert [[p.id for p in r.points] for r in responses] == [[0], [0, 1]]
    assert batch["output"] == [{"id": 0, "score": 3.0}, {"id": 0, "score": 3.0}, {"id": 1, "score": 2.0}]
    assert batch["metadata"] == {"store": "qdrant", "collection": "kb", "doc_count": 3, "scores": [3.0, 3.0, 2.0],
                                 "doc_counts": [1, 2], "top_score": 3.0}


def test_pinecone_query_namespaces_given_as_an_iterator(tmp_path: Path) -> None:
    """The client reads ``namespaces`` once, as any iterable: recording them must not consume
    them first (the call would then query no namespace, and fail)."""
    pinecone = pytest.importorskip("pinecone")
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pinecone",),
                      export_interval=0.05)
    with FakePinecone() as fake:
        index = pinecone.Pinecone(api_key="pc-test").Index(host=fake.url)
        for ns in ("en", "fr"):
            index.upsert(vectors=[(f"{ns}-1", [1.0, 0.0], {"text": ns})], namespace=ns)
        response = index.query_namespaces(vector=[1.0, 0.1], namespaces=iter(["en", "fr"]), metric="cosine", top_k=3)
    records = [r for r in Traced(tmp_path / "t.db").records() if r["type"] == "retriever"]
    assert [m.id for m in response.matches] == ["en-1", "fr-1"]
    assert [(r["name"], r["level"], r["doc_count"]) for r in records] == [("pinecone.query_namespaces", "DEFAULT", 2)]
    assert [d["id"] for d in records[0]["output"]] == ["en-1", "fr-1"]
    metadata = records[0]["metadata"]
    score = pytest.approx(response.matches[0].score)
    assert metadata.pop("collection") in ("en", "fr")  # unknown to the call: the first namespace queried adds it
    assert metadata == {"store": "pinecone", "top_k": 3, "doc_count": 2, "scores": [score, score],
                        "vector_dimensions": 2, "metric": "cosine", "top_score": score}
