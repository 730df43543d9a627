"""Chroma: a delete records how many documents it deleted (chromadb answers ``{"deleted": n}``)
and the most it may delete (``limit``), through the real chromadb in memory."""

from __future__ import annotations

import pytest

from tests.helpers import Traced

chromadb = pytest.importorskip("chromadb")
pytestmark = pytest.mark.integrations("chroma")


def _collection(name: str) -> object:
    collection = chromadb.EphemeralClient().get_or_create_collection(name)
    collection.add(ids=["a", "b", "c", "d"], embeddings=[[1, 0], [0, 1], [1, 1], [2, 1]],
                   metadatas=[{"tenant": "acme"}, {"tenant": "other"}, {"tenant": "acme"}, {"tenant": "acme"}])
    return collection


def test_a_delete_records_what_it_deleted(traced: Traced) -> None:
    """A delete by filter recorded no count at all (a purge that deleted nothing looked like one
    that deleted thousands), nor its ``limit``; one by ids and filter only the ids it named."""
    collection = _collection("deleted20")
    first = collection.delete(where={"tenant": "acme"}, limit=2)
    second = collection.delete(ids=["b"], where={"tenant": "acme"})  # "b" is another tenant's: kept
    if not isinstance(first, dict) or "deleted" not in first:
        pytest.skip("a chromadb whose delete says nothing of what it deleted")
    assert (first, second, collection.count()) == ({"deleted": 2}, {"deleted": 0}, 2)
    records = [r for r in traced.records() if r["name"] == "chroma.delete"]
    assert [r["metadata"] for r in records] == [
        {"store": "chroma", "operation": "delete", "filter": {"tenant": "acme"}, "limit": 2, "deleted": 2,
         "collection": "deleted20"},
        {"store": "chroma", "operation": "delete", "filter": {"tenant": "acme"}, "count": 1, "deleted": 0,
         "collection": "deleted20"}]
    assert [r["level"] for r in records] == ["DEFAULT", "DEFAULT"]


def test_a_failed_delete_is_recorded_and_raised(traced: Traced) -> None:
    collection = _collection("deletefails20")
    with pytest.raises(Exception) as raised:
        collection.delete(where={"tenant": {"$bogus": 1}})
    (record,) = [r for r in traced.records() if r["name"] == "chroma.delete"]
    assert record["level"] == "ERROR" and record["status_message"].startswith(type(raised.value).__name__)
    assert "deleted" not in record["metadata"]
