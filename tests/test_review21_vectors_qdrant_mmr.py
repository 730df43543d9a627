"""Qdrant, for real (local mode): a nearest-neighbour query with maximal marginal relevance
(``NearestQuery(mmr=Mmr(...))``, as langchain-qdrant's ``QdrantVectorStore`` sends for its MMR
search) returns its hits in the order MMR picks them, their scores (the vectors' distances) not
best first. The retrieval said nothing of MMR: it looked like a plain search whose scores were out
of order, with no word of the candidates it chose from."""

from __future__ import annotations

import pytest

from tests.helpers import Traced

pytest.importorskip("qdrant_client")
from qdrant_client import QdrantClient, models

pytestmark = pytest.mark.integrations("qdrant")

MMR = models.Mmr(diversity=0.9, candidates_limit=8)


def _client() -> QdrantClient:
    client = QdrantClient(":memory:")
    client.create_collection("c", vectors_config=models.VectorParams(size=2, distance=models.Distance.EUCLID))
    client.upsert("c", [models.PointStruct(id=i, vector=[float(i), 0.5 * i]) for i in range(8)])
    return client


def test_an_mmr_query_records_its_mmr(traced: Traced) -> None:
    client = _client()
    query = models.NearestQuery(nearest=[0.0, 0.0], mmr=MMR)
    points = client.query_points("c", query, limit=3).points
    scores = [p.score for p in points]
    assert [p.id for p in points] == [0, 7, 3] and scores != sorted(scores)  # MMR's order, not the closest first
    records = traced.records()
    assert [r["name"] for r in records] == ["qdrant.upsert", "qdrant.query_points"]
    record = records[1]
    assert record["output"] == [{"id": 0, "score": 0.0}, {"id": 7, "score": scores[1]}, {"id": 3, "score": scores[2]}]
    assert record["top_k"] == 3
    metadata = record["metadata"]
    assert metadata["mmr"] == {"diversity": 0.9, "candidates_limit": 8}
    assert metadata["metric"] == "l2" and metadata["vector_dimensions"] == 2
    assert "query_type" not in metadata  # still a nearest-neighbour search of a vector


def test_a_batch_request_and_a_prefetch_with_mmr_record_it(traced: Traced) -> None:
    client = _client()
    query = models.NearestQuery(nearest=[0.0, 0.0], mmr=MMR)
    client.query_batch_points("c", [models.QueryRequest(query=query, limit=2),
                                    models.QueryRequest(query=[0.0, 0.0], limit=2)])
    client.query_points("c", models.FusionQuery(fusion=models.Fusion.RRF),
                        prefetch=[models.Prefetch(query=query, limit=4), models.Prefetch(query=[1.0, 0.5], limit=4)],
                        limit=2)
    batch, fused = traced.records()[1:]
    assert batch["metadata"]["requests"] == [
        {"limit": 2, "vector_dimensions": 2, "mmr": {"diversity": 0.9, "candidates_limit": 8}},
        {"limit": 2, "vector_dimensions": 2}]
    assert fused["metadata"]["prefetch"] == [
        {"limit": 4, "vector_dimensions": 2, "mmr": {"diversity": 0.9, "candidates_limit": 8}},
        {"limit": 4, "vector_dimensions": 2}]
