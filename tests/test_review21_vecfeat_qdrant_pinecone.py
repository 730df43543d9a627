"""Twenty-first review, vector-store recording gaps: a Qdrant ``RrfQuery``'s prefetch weights
(qdrant-client in local mode), and a Pinecone query by a sparse vector alone (the SDK's gRPC
client against the loopback ``VectorService`` fake, which now answers sparse queries, deletes by
filter and leaves data alone on a ``dry_run`` update, as Pinecone does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace.testing.pinecone_grpc_fake import FakePineconeGrpc
from tests.helpers import Traced

_VECTORS = [{"id": "a", "values": [1.0, 0.0], "sparse_values": {"indices": [1, 7], "values": [0.5, 0.5]},
             "metadata": {"tenant": "acme", "text": "alpha"}},
            {"id": "b", "values": [0.0, 1.0], "sparse_values": {"indices": [7], "values": [2.0]},
             "metadata": {"tenant": "globex", "text": "beta"}},
            {"id": "c", "values": [0.6, 0.8], "metadata": {"tenant": "acme", "text": "gamma"}}]


@pytest.mark.integrations("qdrant")
def test_an_rrf_query_records_its_prefetch_weights(traced: Traced) -> None:
    """``Rrf(weights=[...])`` changes the ranking (here the dense stage outweighs the sparse one)
    but was not recorded: two fusions with the same ``k`` and different weights looked alike."""
    qdrant = pytest.importorskip("qdrant_client")
    models = qdrant.models
    client = qdrant.QdrantClient(":memory:")
    client.create_collection("kb", vectors_config={"dense": models.VectorParams(size=2, distance=models.Distance.COSINE)},
                             sparse_vectors_config={"words": models.SparseVectorParams()})
    client.upsert("kb", points=[models.PointStruct(id=i, vector={"dense": [1.0, float(i)], "words": models.SparseVector(
        indices=[i], values=[1.0])}) for i in range(1, 5)])
    prefetch = [models.Prefetch(query=[1.0, 0.1], using="dense", limit=3),
                models.Prefetch(query=models.SparseVector(indices=[4], values=[1.0]), using="words", limit=3)]
    weighted = client.query_points("kb", models.RrfQuery(rrf=models.Rrf(k=30, weights=[3.0, 0.5])),
                                   prefetch=prefetch, limit=2)
    client.query_points("kb", models.RrfQuery(rrf=models.Rrf(weights=[0.5, 3.0])), prefetch=prefetch, limit=2)
    client.query_batch_points("kb", [models.QueryRequest(query=models.RrfQuery(rrf=models.Rrf(weights=[1.0, 2.0])),
                                                         prefetch=prefetch, limit=2)])
    first, second, batch = (r for r in traced.records() if r["type"] == "retriever")
    assert [p.id for p in weighted.points] == [d["id"] for d in first["output"]]
    assert {k: first["metadata"].get(k) for k in ("query_type", "fusion", "rrf_k", "rrf_weights")} == {
        "query_type": "rrf", "fusion": "rrf", "rrf_k": 30, "rrf_weights": [3.0, 0.5]}
    assert {k: second["metadata"].get(k) for k in ("fusion", "rrf_k", "rrf_weights")} == {
        "fusion": "rrf", "rrf_k": None, "rrf_weights": [0.5, 3.0]}
    assert batch["metadata"]["requests"] == [{"limit": 2, "query_type": "rrf", "fusion": "rrf",
                                              "rrf_weights": [1.0, 2.0], "prefetch": 2}]


@pytest.fixture
def fake() -> Iterator[FakePineconeGrpc]:
    pytest.importorskip("pinecone.grpc")
    with FakePineconeGrpc() as server:
        yield server


def _index(host: str) -> Any:
    import pinecone.grpc

    return pinecone.grpc.PineconeGRPC(api_key="pc-test", grpc_scheme="http").Index(host=host)


def test_a_sparse_only_query_is_recorded_as_sparse(tmp_path: Path, fake: FakePineconeGrpc) -> None:
    """A query by ``sparse_vector`` alone was recorded with no query at all (no dimensions, no
    kind): as if nothing had been asked. It is now ``query_type`` ``sparse`` with its size; a
    hybrid query keeps its dense dimensions and records the sparse size too."""
    from pinecone import SparseValues

    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pinecone",),
                      export_interval=0.05)
    index = _index(fake.host)
    index.upsert(vectors=_VECTORS, namespace="kb")
    sparse = index.query(top_k=5, sparse_vector={"indices": [1, 7], "values": [1.0, 1.0]}, namespace="kb",
                         include_metadata=True)
    hybrid = index.query(top_k=2, vector=[1.0, 0.0], sparse_vector=SparseValues(indices=[7], values=[1.0]),
                         namespace="kb")
    merged = index.query_namespaces(namespaces=["kb"], metric="dotproduct", top_k=1,
                                    sparse_vector={"indices": [7], "values": [1.0]})
    assert [(m.id, m.score) for m in sparse.matches] == [("b", 2.0), ("a", 1.0)]  # "c" shares no index
    records = [r for r in Traced(tmp_path / "t.db").records() if r["type"] == "retriever"]
    by_sparse, by_both, by_namespaces = records[0], records[1], records[-1]
    assert [(d["id"], d["score"], d["content"]) for d in by_sparse["output"]] == [("b", 2.0, "beta"),
                                                                                  ("a", 1.0, "alpha")]
    assert {k: by_sparse["metadata"].get(k) for k in ("query_type", "sparse_size", "vector_dimensions")} == {
        "query_type": "sparse", "sparse_size": 2, "vector_dimensions": None}
    assert (by_sparse["top_k"], by_sparse["input"]) == (5, None)
    assert [m.id for m in hybrid.matches] == [d["id"] for d in by_both["output"]] == ["b", "a"]
    assert {k: by_both["metadata"].get(k) for k in ("query_type", "sparse_size", "vector_dimensions")} == {
        "query_type": None, "sparse_size": 1, "vector_dimensions": 2}
    assert by_namespaces["name"] == "pinecone.query_namespaces" and [m.id for m in merged.matches] == ["b"]
    assert {k: by_namespaces["metadata"].get(k) for k in ("query_type", "sparse_size")} == {
        "query_type": "sparse", "sparse_size": 1}


def test_the_fake_deletes_by_filter_and_leaves_data_alone_on_a_dry_run(fake: FakePineconeGrpc) -> None:
    """The fake's delete by filter deleted nothing, and a ``dry_run`` update changed the vectors
    it matched: Pinecone deletes the vectors the filter matches, and a dry run only counts them."""
    index = _index(fake.host)
    index.upsert(vectors=_VECTORS, namespace="kb")
    counted = index.update(filter={"tenant": "acme"}, set_metadata={"seen": True}, dry_run=True, namespace="kb")
    assert counted.matched_records == 2
    assert all("seen" not in v.metadata for v in index.fetch(ids=["a", "b", "c"], namespace="kb").vectors.values())
    updated = index.update(filter={"tenant": "acme"}, set_metadata={"seen": True}, namespace="kb")
    assert updated.matched_records == 2
    assert {vid: v.metadata.get("seen") for vid, v in index.fetch(ids=["a", "b", "c"], namespace="kb").vectors.items()
            } == {"a": True, "b": None, "c": True}
    index.delete(filter={"tenant": {"$eq": "acme"}}, namespace="kb")
    assert sorted(index.fetch(ids=["a", "b", "c"], namespace="kb").vectors) == ["b"]
    index.delete(delete_all=True, namespace="kb")
    assert not index.fetch(ids=["b"], namespace="kb").vectors
