"""Pinecone through its real client over HTTP to a loopback fake of the data-plane API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import autotrace
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced

pinecone = pytest.importorskip("pinecone")


@pytest.fixture
def fake() -> Iterator[FakePinecone]:
    with FakePinecone() as server:
        yield server


def test_query_upsert_delete(tmp_path: Path, fake: FakePinecone) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pinecone",),
                      export_interval=0.05)
    index = pinecone.Pinecone(api_key="pc-test").Index(host=fake.url)
    index.upsert(vectors=[("a", [1.0, 0.0], {"text": "alpha"}), ("b", [0.0, 1.0], {"text": "beta"}),
                          ("c", [0.7, 0.7], {"text": "gamma"})], namespace="kb")
    response = index.query(vector=[1.0, 0.1], top_k=2, include_metadata=True, namespace="kb")
    index.delete(ids=["a"], namespace="kb")
    upsert, query, delete = Traced(tmp_path / "t.db").records()
    assert (upsert["name"], upsert["metadata"]["count"], upsert["metadata"]["collection"]) == ("pinecone.upsert", 3, "kb")
    assert (delete["name"], delete["metadata"]["count"]) == ("pinecone.delete", 1)
    assert query["type"] == "retriever" and query["doc_count"] == len(response.matches) == 2
    assert [d["id"] for d in query["output"]] == [m.id for m in response.matches]
    assert query["metadata"]["scores"] == pytest.approx([m.score for m in response.matches])
    assert query["output"][0]["content"] == response.matches[0].metadata["text"]
    assert query["top_k"] == 2 and query["metadata"]["vector_dimensions"] == 2


def test_the_asyncio_client(tmp_path: Path, fake: FakePinecone) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pinecone",),
                      export_interval=0.05)

    async def scenario() -> list[str]:
        index = await pinecone.AsyncPinecone(api_key="pc-test").index(host=fake.url)
        await index.upsert(vectors=[("a", [1.0, 0.0], {"text": "alpha"}), ("b", [0.0, 1.0], {"text": "beta"})],
                           namespace="kb")
        response = await index.query(vector=[1.0, 0.1], top_k=1, include_metadata=True, namespace="kb")
        await index.delete(ids=["a"], namespace="kb")
        await index.close()
        return [m.id for m in response.matches]

    ids = asyncio.run(scenario())
    upsert, query, delete = Traced(tmp_path / "t.db").records()
    assert (upsert["name"], upsert["metadata"]["count"], delete["name"]) == ("pinecone.upsert", 2, "pinecone.delete")
    assert query["type"] == "retriever" and [d["id"] for d in query["output"]] == ids == ["a"]
    assert query["output"][0]["content"] == "alpha" and query["top_k"] == 1
