"""Critique of this session's Qdrant work, through the real qdrant-client in local mode: a batch
whose requests all carry one tenant's filter of many ids records that filter once, as the
retrieval's, so what each request asks still fits the value size limit."""

from __future__ import annotations

import asyncio

import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models

import autotrace
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("qdrant")

#: A tenant's access list: the documents it may see (about 26 KB of JSON).
ACL = models.Filter(must=[models.FieldCondition(key="doc", match=models.MatchAny(any=[f"d{i}" for i in range(3000)]))])
POINTS = [models.PointStruct(id=i, vector=[1.0, i], payload={"doc": f"d{i}"}) for i in range(10)]


def _requests() -> list[models.QueryRequest]:
    return [models.QueryRequest(query=[1.0, i / 10], limit=i + 1, filter=ACL) for i in range(10)]


def _check(traced: Traced) -> None:
    (batch,) = [r for r in traced.records() if r["type"] == "retriever"]
    assert batch["metadata"]["requests"] == [{"limit": i + 1, "vector_dimensions": 2} for i in range(10)]
    assert batch["metadata"]["filter"] == ACL.model_dump(exclude_none=True)
    assert batch["metadata"]["doc_counts"] == [i + 1 for i in range(10)]
    assert "attributes_truncated" not in autotrace.stats()


def test_a_filter_all_requests_share_is_recorded_once(traced: Traced) -> None:
    """Each request repeated the filter: ``metadata.requests`` was cut at 64 KB inside the third
    one's, a string in which the limits of the other seven were lost."""
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE))
    client.upsert("kb", points=POINTS)
    client.query_batch_points("kb", _requests())
    _check(traced)


def test_a_filter_all_requests_share_is_recorded_once_asyncio(traced: Traced) -> None:
    async def scenario() -> None:
        client = AsyncQdrantClient(":memory:")
        await client.create_collection("kb", vectors_config=models.VectorParams(size=2,
                                                                               distance=models.Distance.COSINE))
        await client.upsert("kb", points=POINTS)
        await client.query_batch_points("kb", requests=_requests())

    asyncio.run(scenario())
    _check(traced)
