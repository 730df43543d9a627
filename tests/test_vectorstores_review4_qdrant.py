"""Fourth review of the vector-store integrations: the distance metric of Qdrant searches, where
the client holds the collection (local mode), through the real qdrant-client."""

from __future__ import annotations

import asyncio

import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from tests.helpers import Traced

pytestmark = pytest.mark.integrations("qdrant")

_NAMED = {"dot": models.VectorParams(size=2, distance=models.Distance.DOT),
          "far": models.VectorParams(size=2, distance=models.Distance.EUCLID)}


def _client(client: QdrantClient) -> QdrantClient:
    """``plain`` (one unnamed cosine vector, aliased ``kb``) and ``named`` (dot and euclid vectors)."""
    client.create_collection("plain", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE))
    client.create_collection("named", vectors_config=_NAMED,
                             sparse_vectors_config={"words": models.SparseVectorParams()})
    client.update_collection_aliases([models.CreateAliasOperation(
        create_alias=models.CreateAlias(collection_name="plain", alias_name="kb"))])
    client.upsert("plain", points=[models.PointStruct(id=i, vector=[1.0, float(i)], payload={"group": i % 2})
                                   for i in range(1, 4)])
    client.upsert("named", points=[models.PointStruct(id=i, vector={
        "dot": [1.0, float(i)], "far": [float(i), 0.0], "words": models.SparseVector(indices=[i], values=[1.0])})
        for i in range(1, 4)])
    return client


def _metrics(traced: Traced) -> list[tuple[str, str | None]]:
    return [(r["name"], r["metadata"].get("metric")) for r in traced.records() if r["type"] == "retriever"]


def test_a_local_search_records_the_searched_vectors_metric(traced: Traced) -> None:
    client = _client(QdrantClient(":memory:"))
    client.query_points("plain", [1.0, 0.5], limit=2)
    client.query_points("kb", 2, limit=2)  # an alias; a point's id
    client.query_points("named", [1.0, 0.5], using="dot")
    client.query_points("named", models.NearestQuery(nearest=[1.0, 0.5]), using="far")
    client.query_points("named", models.SparseVector(indices=[1], values=[1.0]), using="words")
    client.query_points("named", models.FusionQuery(fusion=models.Fusion.RRF), prefetch=[
        models.Prefetch(query=[1.0, 0.5], using="dot"), models.Prefetch(query=[1.0, 0.5], using="far")])
    client.query_points_groups("plain", "group", [1.0, 0.5], limit=2)
    client.query_batch_points("named", [models.QueryRequest(query=[1.0, 0.5], using="dot"),
                                        models.QueryRequest(query=[0.5, 1.0], using="dot")])
    client.query_batch_points("named", [models.QueryRequest(query=[1.0, 0.5], using="dot"),
                                        models.QueryRequest(query=[1.0, 0.5], using="far")])
    assert _metrics(traced) == [("qdrant.query_points", "cosine"), ("qdrant.query_points", "cosine"),
                                ("qdrant.query_points", "inner_product"), ("qdrant.query_points", "l2"),
                                ("qdrant.query_points", None), ("qdrant.query_points", None),
                                ("qdrant.query_points_groups", "cosine"),
                                ("qdrant.query_batch_points", "inner_product"), ("qdrant.query_batch_points", None)]


def test_the_async_local_client_records_the_metric(traced: Traced) -> None:
    async def scenario() -> None:
        client = AsyncQdrantClient(":memory:")
        await client.create_collection("named", vectors_config=_NAMED)
        await client.upsert("named", points=[models.PointStruct(id=1, vector={"dot": [1.0, 0.0], "far": [0.0, 1.0]})])
        await client.query_points("named", [1.0, 0.5], using="far")
        with pytest.raises(ValueError, match="missing"):  # the client's own error, unchanged
            await client.query_points("missing", [1.0, 0.5])

    asyncio.run(scenario())
    assert _metrics(traced) == [("qdrant.query_points", "l2"), ("qdrant.query_points", None)]
