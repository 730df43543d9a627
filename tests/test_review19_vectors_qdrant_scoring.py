"""Qdrant queries whose scores are not the collection's dense distance, through the real
qdrant-client in local mode: ``metadata.metric`` says how to read a retrieval's scores (higher or
lower is closer), so it is recorded only where they are that distance."""

from __future__ import annotations

import asyncio
import warnings

import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from tests.helpers import Traced

pytestmark = pytest.mark.integrations("qdrant")

#: One unnamed Euclid vector (lower is closer) and a sparse one named ``sp`` (dot product).
SPARSE_POINTS = [models.PointStruct(id=i, vector={"": [1.0, i], "sp": models.SparseVector(indices=[1, 2],
                                                                                       values=[1.0, float(i)])})
                 for i in range(5)]


def _retrieval(traced: Traced) -> dict[str, object]:
    (found,) = [r for r in traced.records() if r["type"] == "retriever"]
    return found


def test_a_search_of_a_sparse_vector_by_point_id_records_no_dense_metric(traced: Traced) -> None:
    """``using`` named the sparse vector, but the collection's unnamed dense vector's distance was
    recorded (``metric: l2``, lower is closer) for scores that are sparse dot products (9.0 best)."""
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=2, distance=models.Distance.EUCLID),
                             sparse_vectors_config={"sp": models.SparseVectorParams()})
    client.upsert("kb", points=SPARSE_POINTS)
    client.query_points("kb", query=2, using="sp", limit=2)
    client.query_points("kb", query=2, limit=2)  # the dense vector's own: its distance is recorded

    sparse, dense = [r for r in traced.records() if r["type"] == "retriever"]
    assert sparse["input"] == "id:2"
    assert sparse["metadata"]["scores"] == [9.0, 7.0]
    assert sparse["metadata"]["using"] == "sp"
    assert "metric" not in sparse["metadata"]
    assert dense["metadata"]["metric"] == "l2"


def _text_collection(client: QdrantClient) -> None:
    client.create_collection("kb", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE))
    client.upsert("kb", points=[models.PointStruct(id=i, vector=[1.0, i], payload={"body": f"red fox {i}"})
                                for i in (1, 3)])
    with warnings.catch_warnings():  # local mode: "payload indexes have no effect ... except text ones"
        warnings.simplefilter("ignore")
        client.create_payload_index("kb", "body", field_schema=models.TextIndexParams(type="text", scoring=True))


TEXT_QUERIES = [models.TextQuery(text="red fox"), models.TextQuery(text=models.TextQueryInput(query="red fox"))]


def _check_text(found: dict[str, object]) -> None:
    assert found["input"] == "red fox"
    metadata = found["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["query_type"] == "text"
    assert metadata["using"] == "body"
    assert "metric" not in metadata
    assert found["doc_count"] == 2


@pytest.mark.parametrize("query", TEXT_QUERIES, ids=["text", "input"])
def test_a_text_query_records_its_text_and_kind_not_a_vector_metric(traced: Traced,
                                                                  query: models.TextQuery) -> None:
    """A BM25 ``TextQuery`` (``using``: a payload field) was recorded as a nearest-neighbour search
    with the dense vector's ``metric: cosine``; given as ``TextQueryInput`` its text was lost."""
    client = QdrantClient(":memory:")
    _text_collection(client)
    client.query_points("kb", query=query, using="body", limit=2)
    _check_text(_retrieval(traced))


def test_a_text_query_asyncio(traced: Traced) -> None:
    async def scenario() -> None:
        client = AsyncQdrantClient(":memory:")
        await client.create_collection("kb", vectors_config=models.VectorParams(size=2,
                                                                               distance=models.Distance.COSINE))
        await client.upsert("kb", points=[models.PointStruct(id=i, vector=[1.0, i], payload={"body": f"red fox {i}"})
                                          for i in (1, 3)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            await client.create_payload_index("kb", "body",
                                              field_schema=models.TextIndexParams(type="text", scoring=True))
        await client.query_points("kb", query=TEXT_QUERIES[1], using="body", limit=2)

    asyncio.run(scenario())
    _check_text(_retrieval(traced))


def test_a_batch_of_text_queries_records_their_texts(traced: Traced) -> None:
    client = QdrantClient(":memory:")
    _text_collection(client)
    client.query_batch_points("kb", [models.QueryRequest(query=q, using="body", limit=1) for q in TEXT_QUERIES])
    found = _retrieval(traced)
    assert found["input"] == ["red fox", "red fox"]
    assert found["metadata"]["requests"] == [{"using": "body", "limit": 1, "query": "red fox", "query_type": "text"}] * 2
    assert "metric" not in found["metadata"]


def test_reads_and_writes_kept_to_a_tenants_shard_record_its_shard_key(traced: Traced) -> None:
    """With custom sharding (a shard per tenant), ``shard_key_selector`` says whose points a call
    reads or writes; it was not recorded, so a search of one tenant's shard looked like another's."""
    client = QdrantClient(":memory:")  # local mode keeps no shards: it takes the selector and ignores it
    client.create_collection("kb", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE))
    client.upsert("kb", points=[models.PointStruct(id=1, vector=[1.0, 0.0], payload={"text": "alpha"})],
                  shard_key_selector="acme")
    client.query_points("kb", query=[1.0, 0.0], limit=1, shard_key_selector="acme")
    client.query_points_groups("kb", "text", query=[1.0, 0.0], shard_key_selector=["acme", "globex"])
    fallback = models.ShardKeyWithFallback(target="acme", fallback="default")
    client.scroll("kb", limit=1, shard_key_selector=fallback)
    client.retrieve("kb", [1], shard_key_selector="acme")
    client.delete("kb", points_selector=models.FilterSelector(filter=models.Filter()), shard_key_selector="acme")
    client.query_batch_points("kb", [models.QueryRequest(query=[1.0, 0.0], shard_key="acme"),
                                     models.QueryRequest(query=[1.0, 0.0])])

    records = traced.records()
    assert [(r["name"], r["metadata"].get("shard_key")) for r in records] == [
        ("qdrant.upsert", "acme"), ("qdrant.query_points", "acme"),
        ("qdrant.query_points_groups", ["acme", "globex"]),
        ("qdrant.scroll", {"target": "acme", "fallback": "default"}), ("qdrant.retrieve", "acme"),
        ("qdrant.delete", "acme"), ("qdrant.query_batch_points", None)]
    assert records[5]["metadata"]["filter"] == {}
    assert records[-1]["metadata"]["requests"] == [{"limit": 10, "shard_key": "acme", "vector_dimensions": 2},
                                                   {"limit": 10, "vector_dimensions": 2}]
