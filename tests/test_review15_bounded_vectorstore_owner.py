"""A framework's (or the user's) retrieval that owns many store searches holds a bounded amount of
the stores' scores until it ends: each search used to add a deferred computation with up to 100
scores to the owner, so a retrieval searching in a loop grew without bound while it ran. Real
Qdrant (in memory)."""

from __future__ import annotations

import pytest
from qdrant_client import QdrantClient, models

import autotrace
from autotrace._ended import DEFERRED
from autotrace.integrations.documents import MAX_DOCUMENTS
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("qdrant")

_SEARCHES = 2_000
_LIMIT = 20


def test_an_owner_of_many_searches_keeps_the_first_scores_and_holds_a_bounded_amount(traced: Traced) -> None:
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
    client.upsert("kb", points=[models.PointStruct(id=i, vector=[1.0, float(i), 0.5]) for i in range(50)])
    with autotrace.start_retrieval("multi-search", query="q") as owner:
        first = client.query_points("kb", query=[1.0, 1.0, 0.5], limit=_LIMIT)
        for _ in range(_SEARCHES - 1):
            client.query_points("kb", query=[1.0, 2.0, 0.5], limit=_LIMIT)
        assert len(owner._fields[DEFERRED]) == 1  # one computation, however many searches
    (record,) = traced.trace(owner.trace_id)
    assert record["metadata"]["scores"] == [p.score for p in first.points]  # the first search's, as before
    kept = MAX_DOCUMENTS // _LIMIT  # searches whose scores are held until the owner ends
    assert autotrace.stats()["retrieval_owner_scores_dropped"] == _SEARCHES - kept
