"""Seventeenth review: a Chroma delete selecting its documents by ``where`` (one tenant's) records
that filter, through the real chromadb (in memory, with embeddings given)."""

from __future__ import annotations

import pytest

from tests.helpers import Traced

pytestmark = pytest.mark.integrations("chroma")


def test_a_chroma_delete_by_filter_records_it(traced: Traced) -> None:
    chromadb = pytest.importorskip("chromadb")
    collection = chromadb.EphemeralClient().get_or_create_collection("tenants17")
    collection.add(ids=["a", "b", "c"], embeddings=[[1, 0], [0, 1], [1, 1]], documents=["x", "y", "z"],
                   metadatas=[{"tenant": "acme"}, {"tenant": "other"}, {"tenant": "acme"}])
    collection.delete(where={"tenant": "acme"})
    collection.delete(None, None, {"$contains": "y"})
    collection.delete(ids=["c"])
    assert collection.count() == 0
    assert [(r["name"], r["metadata"]) for r in traced.records()[1:]] == [
        ("chroma.delete", {"store": "chroma", "operation": "delete", "filter": {"tenant": "acme"},
                           "deleted": 2, "collection": "tenants17"}),
        ("chroma.delete", {"store": "chroma", "operation": "delete", "where_document": {"$contains": "y"},
                           "deleted": 1, "collection": "tenants17"}),
        ("chroma.delete", {"store": "chroma", "operation": "delete", "count": 1, "deleted": 1,
                           "collection": "tenants17"})]  # chromadb counts the ids named
