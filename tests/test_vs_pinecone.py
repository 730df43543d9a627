"""Pinecone through its real client over HTTP to a loopback fake of the data-plane API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import autotrace
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced, shape

pinecone = pytest.importorskip("pinecone")
ValidationError = pytest.importorskip("pinecone.errors.exceptions").ValidationError


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


def test_query_namespaces_is_one_retrieval_in_the_callers_trace(tmp_path: Path, fake: FakePinecone) -> None:
    """The client runs one query per namespace on a thread pool: they stay in the caller's trace
    and tenant, under one retrieval of the merged result, instead of tenantless traces."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pinecone",),
                      export_interval=0.05)
    index = pinecone.Pinecone(api_key="pc-test").Index(host=fake.url)
    for ns in ("en", "fr"):
        index.upsert(vectors=[(f"{ns}-1", [1.0, 0.0], {"text": ns}), (f"{ns}-2", [0.0, 1.0], {"text": ns})],
                     namespace=ns)
    with autotrace.tenant("acme"), autotrace.start_chain("request") as request:
        response = index.query_namespaces(vector=[1.0, 0.1], namespaces=["en", "fr"], metric="cosine", top_k=3,
                                          include_metadata=True)
        with pytest.raises(ValidationError, match="metric"):
            index.query_namespaces(vector=[1.0, 0.1], namespaces=["en"], metric="hamming")
    records = Traced(tmp_path / "t.db").trace(request.trace_id)
    assert shape(records) == [("chain", "request", [("retriever", "pinecone.query_namespaces", []),
                                                    ("retriever", "pinecone.query_namespaces", [])])]
    found, failed = records[1:]
    assert [d["id"] for d in found["output"]] == [m.id for m in response.matches]
    assert found["metadata"]["scores"] == pytest.approx([m.score for m in response.matches])
    assert found["doc_count"] == 3 and found["metadata"]["namespaces"] == ["en", "fr"]
    assert found["metadata"]["collection"] == "en, fr" and found["top_k"] == 3
    assert {r["tenant"] for r in records} == {"acme"} and failed["level"] == "ERROR"
