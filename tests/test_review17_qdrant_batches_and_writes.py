"""Seventeenth review of the Qdrant integration, through the real qdrant-client in local mode: what
each request of a batch asks (its query, limit and filter: a tenant's filter inside a batch), the
fusion of a hybrid query, and the writes other than upsert/delete (payload and vector updates,
``batch_update_points``) as spans with counts and the filter selecting their points."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models

import autotrace
from autotrace.integrations.documents import MAX_DOCUMENTS
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("qdrant")

_ACME = models.Filter(must=[models.FieldCondition(key="tenant", match=models.MatchValue(value="acme"))])
_ACME_DUMP = {"must": [{"key": "tenant", "match": {"value": "acme"}}]}
_CONFIG = {"dense": models.VectorParams(size=2, distance=models.Distance.COSINE)}
_POINTS = [models.PointStruct(id=i, vector={"dense": [1.0, float(i)], "words": models.SparseVector(
    indices=[i], values=[1.0])}, payload={"tenant": "acme" if i % 2 else "other", "text": f"doc {i}"})
    for i in range(1, 7)]


def _client() -> QdrantClient:
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=_CONFIG, sparse_vectors_config={"words": models.SparseVectorParams()})
    client.upsert("kb", points=_POINTS)
    return client


def _retrievals(traced: Traced) -> list[dict[str, Any]]:
    return [r for r in traced.records() if r["type"] == "retriever"]


def test_a_batch_records_each_requests_query_limit_and_filter(traced: Traced) -> None:
    client = _client()
    responses = client.query_batch_points("kb", [
        models.QueryRequest(query=[1.0, 0.5], using="dense", limit=2, filter=_ACME),
        models.QueryRequest(query=[1.0, 0.2], using="dense", limit=3, score_threshold=0.1, offset=1),
        models.QueryRequest(query=models.FusionQuery(fusion=models.Fusion.RRF), prefetch=[
            models.Prefetch(query=[1.0, 0.5], using="dense", limit=4, filter=_ACME),
            models.Prefetch(query=models.SparseVector(indices=[1], values=[1.0]), using="words")])])
    (batch,) = _retrievals(traced)
    assert batch["metadata"]["requests"] == [
        {"using": "dense", "limit": 2, "filter": _ACME_DUMP, "vector_dimensions": 2},
        {"using": "dense", "limit": 3, "score_threshold": 0.1, "offset": 1, "vector_dimensions": 2},
        {"limit": 10, "query_type": "fusion", "fusion": "rrf", "prefetch": 2}]
    assert batch["metadata"]["doc_counts"] == [len(r.points) for r in responses] == [2, 3, 3]
    assert batch["metadata"]["queries"] == 3 and batch["top_k"] is None  # the limits differ
    assert "filter" not in batch["metadata"] and "vector_dimensions" not in batch["metadata"]


def test_what_all_requests_share_is_the_retrievals(traced: Traced) -> None:
    """One tenant's filter on every request is the retrieval's filter, their limit its top_k,
    their point-id queries its query (as Chroma records several query texts)."""
    client = _client()
    client.query_batch_points("kb", [models.QueryRequest(query=1, using="dense", limit=2, filter=_ACME),
                                     models.QueryRequest(query=3, using="dense", limit=2, filter=_ACME)])
    client.query_batch_points("kb", requests=[models.QueryRequest(query=[1.0, 0.5], using="dense")] * 2)
    by_id, by_vector = _retrievals(traced)
    assert (by_id["input"], by_id["top_k"], by_id["metadata"]["filter"]) == (["id:1", "id:3"], 2, _ACME_DUMP)
    assert by_id["metadata"]["requests"] == [{"using": "dense", "limit": 2, "query": q}  # the filter: once
                                             for q in ("id:1", "id:3")]
    assert (by_vector["input"], by_vector["top_k"], by_vector["metadata"]["vector_dimensions"]) == (None, 10, 2)
    assert by_vector["metadata"]["metric"] == "cosine" and "filter" not in by_vector["metadata"]


def test_a_batch_of_more_requests_than_described_counts_those_left_out(traced: Traced) -> None:
    client = _client()
    client.query_batch_points("kb", [models.QueryRequest(query=[1.0, 0.5], using="dense", limit=1, filter=_ACME)]
                              * (MAX_DOCUMENTS + 3))
    (batch,) = _retrievals(traced)
    assert batch["metadata"]["queries"] == MAX_DOCUMENTS + 3 and len(batch["metadata"]["requests"]) == MAX_DOCUMENTS
    assert (batch["top_k"], batch["metadata"]["filter"]) == (1, _ACME_DUMP)  # shared by all, the undescribed too
    assert "vector_dimensions" not in batch["metadata"]  # only said of requests all described
    assert autotrace.stats()["retrieval_requests_truncated"] == 3


def test_the_async_client_records_a_batchs_requests(traced: Traced) -> None:
    async def scenario() -> None:
        client = AsyncQdrantClient(":memory:")
        await client.create_collection("kb", vectors_config=_CONFIG)
        await client.upsert("kb", points=[models.PointStruct(id=i, vector={"dense": [1.0, float(i)]},
                                                             payload={"tenant": "acme"}) for i in range(1, 4)])
        await client.query_batch_points("kb", [models.QueryRequest(query=[1.0, 0.5], using="dense", filter=_ACME),
                                               models.QueryRequest(query=2, using="dense", limit=1)])

    asyncio.run(scenario())
    (batch,) = _retrievals(traced)
    assert batch["metadata"]["requests"] == [
        {"using": "dense", "limit": 10, "filter": _ACME_DUMP, "vector_dimensions": 2},
        {"using": "dense", "limit": 1, "query": "id:2"}]
    assert batch["metadata"]["doc_counts"] == [3, 1]


def test_a_hybrid_query_records_its_fusion_and_its_prefetches_filters(traced: Traced) -> None:
    client = _client()
    prefetch = [models.Prefetch(query=[1.0, 0.5], using="dense", limit=5, filter=_ACME),
                models.Prefetch(query=models.SparseVector(indices=[1], values=[1.0]), using="words", limit=7)]
    client.query_points("kb", query=models.FusionQuery(fusion=models.Fusion.DBSF), prefetch=prefetch, limit=3)
    client.query_points("kb", models.RrfQuery(rrf=models.Rrf(k=30)), None, prefetch, limit=3)
    client.query_points_groups("kb", "tenant", models.FusionQuery(fusion=models.Fusion.RRF), prefetch=prefetch)
    dbsf, rrf, grouped = _retrievals(traced)
    described = [{"using": "dense", "limit": 5, "filter": _ACME_DUMP, "vector_dimensions": 2},
                 {"using": "words", "limit": 7, "query_type": "sparse"}]
    assert {k: dbsf["metadata"].get(k) for k in ("query_type", "fusion", "prefetch")} == {
        "query_type": "fusion", "fusion": "dbsf", "prefetch": described}
    assert {k: rrf["metadata"].get(k) for k in ("query_type", "fusion", "rrf_k", "prefetch")} == {
        "query_type": "rrf", "fusion": "rrf", "rrf_k": 30, "prefetch": described}
    assert {k: grouped["metadata"].get(k) for k in ("query_type", "fusion", "group_by")} == {
        "query_type": "fusion", "fusion": "rrf", "group_by": "tenant"}


def test_a_query_records_its_score_threshold_and_its_pages_offset(traced: Traced) -> None:
    """Either explains results fewer than ``top_k`` or other than the best: a threshold that
    dropped some, a page after the first."""
    client = _client()
    page = client.query_points("kb", [1.0, 0.5], "dense", None, None, None, 2, 1, True, False, 0.5)
    client.query_points("kb", [1.0, 0.5], using="dense", limit=2, offset=0)
    client.query_points_groups("kb", "tenant", [1.0, 0.5], using="dense", score_threshold=0.99)
    second, first, grouped = _retrievals(traced)
    assert [p.id for p in page.points] == [d["id"] for d in second["output"]] == [2, 3]
    assert {k: second["metadata"].get(k) for k in ("offset", "score_threshold")} == {"offset": 1, "score_threshold": 0.5}
    assert "offset" not in first["metadata"] and "score_threshold" not in first["metadata"]
    assert grouped["metadata"]["score_threshold"] == 0.99 and "offset" not in grouped["metadata"]


def _writes(traced: Traced) -> list[tuple[str, dict[str, Any]]]:
    return [(r["name"], {k: v for k, v in r["metadata"].items() if k not in ("store", "collection")})
            for r in traced.records() if r["type"] == "span" and r["name"] != "qdrant.upsert"]


def test_payload_and_vector_writes_are_spans_with_counts_and_filters(traced: Traced) -> None:
    client = _client()
    client.set_payload("kb", {"seen": True}, points=[1, 3])
    client.overwrite_payload("kb", {"tenant": "acme"}, models.FilterSelector(filter=_ACME))
    client.delete_payload("kb", ["seen"], models.PointIdsList(points=[1]))
    client.clear_payload("kb", points_selector=_ACME)
    client.update_vectors("kb", [models.PointVectors(id=2, vector={"dense": [0.0, 1.0]})], update_filter=_ACME)
    client.delete_vectors("kb", ["dense"], points=[6])
    client.delete("kb", points_selector=_ACME)
    client.batch_update_points("kb", [
        models.UpsertOperation(upsert=models.PointsList(points=[models.PointStruct(id=9, vector={"dense": [1.0, 1.0]})])),
        models.DeleteOperation(delete=models.PointIdsList(points=[2])),
        models.DeleteOperation(delete=models.PointIdsList(points=[4]))])
    assert _writes(traced) == [
        ("qdrant.set_payload", {"operation": "set_payload", "count": 2}),
        ("qdrant.overwrite_payload", {"operation": "overwrite_payload", "filter": _ACME_DUMP}),
        ("qdrant.delete_payload", {"operation": "delete_payload", "count": 1}),
        ("qdrant.clear_payload", {"operation": "clear_payload", "filter": _ACME_DUMP}),
        ("qdrant.update_vectors", {"operation": "update_vectors", "count": 1, "filter": _ACME_DUMP}),
        ("qdrant.delete_vectors", {"operation": "delete_vectors", "count": 1}),
        ("qdrant.delete", {"operation": "delete", "filter": _ACME_DUMP}),
        ("qdrant.batch_update_points", {"operation": "batch_update_points", "count": 3,
                                        "operations": {"upsert": 1, "delete": 2}})]
    points = {p.id: p.payload for p in client.scroll("kb")[0]}  # the writes took effect
    assert points == {1: {}, 3: {}, 5: {}, 6: {"tenant": "other", "text": "doc 6"}, 9: {}}


def test_a_failing_write_is_an_error_raised_unchanged(traced: Traced) -> None:
    async def scenario() -> None:
        client = AsyncQdrantClient(":memory:")
        with pytest.raises(ValueError, match="missing") as raised:
            await client.set_payload("missing", {"k": 1}, points=[1])
        assert type(raised.value) is ValueError
        with pytest.raises(ValueError, match="missing"):
            await client.batch_update_points("missing", [models.DeleteOperation(
                delete=models.PointIdsList(points=[1]))])

    asyncio.run(scenario())
    records = traced.records()
    assert [(r["name"], r["type"], r["level"], r["metadata"].get("count")) for r in records] == [
        ("qdrant.set_payload", "span", "ERROR", 1), ("qdrant.batch_update_points", "span", "ERROR", 1)]
    assert all("missing" in r["status_message"] for r in records)
