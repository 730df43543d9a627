"""Vector-store methods that are recorded too: Qdrant's grouped search, Pinecone's ``search``
(``search_records``), and pgvector rows that arrive after the call (``stream()``, named cursors)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pinecone
import pytest
from pinecone.errors.exceptions import PineconeValueError
from pinecone.models.vectors.search import SearchQuery
from qdrant_client import AsyncQdrantClient, QdrantClient, models

import autotrace
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("qdrant")

POINTS = [models.PointStruct(id=i, vector=[float(i), 1.0, 0.5], payload={"text": f"doc {i}", "src": "ab"[i % 2]})
          for i in range(1, 6)]


def _hits(response: models.GroupsResult) -> list[tuple[int, float, str]]:
    return [(hit.id, hit.score, group.id) for group in response.groups for hit in group.hits]


def test_qdrant_grouped_search_records_each_groups_hits(traced: Traced) -> None:
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
    client.upsert("kb", points=POINTS)
    flt = models.Filter(must_not=[models.HasIdCondition(has_id=[5])])
    response = client.query_points_groups("kb", "src", [1.0, 1.0, 0.5], limit=2, group_size=2)
    positional = client.query_points_groups("kb", "src", [1.0, 1.0, 0.5], None, None, flt, None, 1, 1)
    empty = client.query_points_groups("kb", "missing_field", query=[1.0, 1.0, 0.5])
    records = traced.records()
    assert shape(records) == [("span", "qdrant.upsert", [])] + [("retriever", "qdrant.query_points_groups", [])] * 3
    grouped, by_position, nothing = records[1:]
    assert [(d["id"], d["score"], d["metadata"]["group"]) for d in grouped["output"]] == _hits(response)
    assert [(d["id"], d["metadata"]["group"]) for d in grouped["output"]] == [(1, "b"), (3, "b"), (2, "a"), (4, "a")]
    assert grouped["output"][0]["content"] == "doc 1" and grouped["doc_count"] == 4
    assert grouped["metadata"]["groups"] == 2 and grouped["metadata"]["doc_counts"] == [2, 2]
    assert grouped["metadata"]["scores"] == [hit.score for group in response.groups for hit in group.hits]
    assert grouped["metadata"]["top_score"] == response.groups[0].hits[0].score
    assert (grouped["top_k"], grouped["metadata"]["group_by"], grouped["metadata"]["group_size"]) == (2, "src", 2)
    assert grouped["metadata"]["collection"] == "kb" and grouped["metadata"]["vector_dimensions"] == 3
    assert [(d["id"], d["metadata"]["group"]) for d in by_position["output"]] == [(1, "b")] == [
        (h, g) for h, _, g in _hits(positional)]
    assert by_position["metadata"]["groups"] == 1 and by_position["metadata"]["doc_counts"] == [1]
    assert (by_position["top_k"], by_position["metadata"]["group_size"]) == (1, 1)
    assert by_position["metadata"]["filter"] == {"must_not": [{"has_id": [5]}]}
    assert empty.groups == [] and nothing["doc_count"] == 0 and nothing["output"] == []
    assert nothing["metadata"]["groups"] == 0 and nothing["metadata"]["doc_counts"] == []
    assert (nothing["top_k"], nothing["metadata"]["group_size"]) == (10, 3)


def test_qdrant_grouped_search_async_client(traced: Traced) -> None:
    async def scenario() -> models.GroupsResult:
        client = AsyncQdrantClient(":memory:")
        await client.create_collection("kb", vectors_config=models.VectorParams(size=3,
                                                                                distance=models.Distance.DOT))
        await client.upsert("kb", points=POINTS)
        return await client.query_points_groups("kb", group_by="src", query=[0.0, 1.0, 0.0], limit=1, group_size=3)

    response = asyncio.run(scenario())
    records = traced.records()
    assert [r["name"] for r in records] == ["qdrant.upsert", "qdrant.query_points_groups"]
    grouped = records[1]
    assert [(d["id"], d["score"], d["metadata"]["group"]) for d in grouped["output"]] == _hits(response)
    assert grouped["doc_count"] == 3 and grouped["metadata"]["groups"] == 1


@pytest.fixture
def fake_pinecone() -> Iterator[FakePinecone]:
    with FakePinecone() as server:
        yield server


RECORDS = [("a", [1.0, 0.0], {"text": "alpha vector notes", "lang": "en"}),
           ("b", [0.0, 1.0], {"text": "beta notes", "lang": "en"}),
           ("c", [0.7, 0.7], {"text": "gamma", "lang": "fr"})]


def _pinecone_install(tmp_path: Path) -> Traced:
    autotrace.install(local_store="on", local_store_path=tmp_path / "p.db", integrations=("pinecone",),
                      export_interval=0.05)
    return Traced(tmp_path / "p.db")


def _found(record: dict[str, Any]) -> list[tuple[str, float, str | None]]:
    return [(d["id"], d["score"], d.get("content")) for d in record["output"]]


def _returned(response: Any) -> list[tuple[str, float, str | None]]:
    return [(h.id, h.score, h.fields.get("text")) for h in response.result.hits]


def test_pinecone_records_search_and_its_alias(tmp_path: Path, fake_pinecone: FakePinecone) -> None:
    traced = _pinecone_install(tmp_path)
    index = pinecone.Pinecone(api_key="pc-test").Index(host=fake_pinecone.url)
    index.upsert(vectors=RECORDS, namespace="kb")
    with autotrace.start_chain("request"):
        by_vector = index.search(namespace="kb", top_k=2, vector=[1.0, 0.1], filter={"lang": "en"})
        by_text = index.search_records(namespace="kb", top_k=1, inputs={"text": "beta notes"}, fields=["text"],
                                       rerank={"model": "bge-reranker-v2-m3", "rank_fields": ["text"]})
        legacy = index.search(namespace="kb", query=SearchQuery(inputs={"text": "notes"}, top_k=3))
        by_id = index.search(namespace="kb", query={"id": "c", "top_k": 1, "inputs": {}},
                             fields=["lang"])
        with pytest.raises(PineconeValueError, match="namespace"):
            index.search(namespace=" ", top_k=1, vector=[1.0, 0.0])
    records = traced.records()
    assert shape(records) == [("span", "pinecone.upsert", []), ("chain", "request", [
        ("retriever", "pinecone.search", []), ("retriever", "pinecone.search_records", []),
        ("retriever", "pinecone.search", []), ("retriever", "pinecone.search", []),
        ("retriever", "pinecone.search", [])])]
    vector, text, query, ident, failed = records[2:]
    assert _found(vector) == _returned(by_vector) and [d["id"] for d in vector["output"]] == ["a", "c"]
    assert (vector["top_k"], vector["doc_count"], vector["metadata"]["vector_dimensions"]) == (2, 2, 2)
    assert vector["metadata"]["collection"] == "kb" and vector["metadata"]["filter"] == {"lang": "en"}
    assert vector["metadata"]["scores"] == [h.score for h in by_vector.result.hits]
    assert vector["input"] is None
    assert _found(text) == _returned(by_text) == [("b", 1.0, "beta notes")]
    assert (text["input"], text["top_k"], text["metadata"]["rerank"]) == ("beta notes", 1, "bge-reranker-v2-m3")
    assert _found(query) == _returned(legacy) and query["doc_count"] == 3
    assert (query["input"], query["top_k"]) == ("notes", 3)
    assert _found(ident) == _returned(by_id) == [("c", pytest.approx(1.0), None)] and ident["input"] == "id:c"
    assert failed["level"] == "ERROR" and failed["metadata"]["collection"] == " "
    assert text["metadata"] == {"store": "pinecone", "collection": "kb", "top_k": 1, "rerank": "bge-reranker-v2-m3",
                                "doc_count": 1, "scores": [1.0], "top_score": 1.0}
    assert [path for path, _ in fake_pinecone.requests].count("/records/namespaces/kb/search") == 4


def test_pinecone_records_search_asyncio(tmp_path: Path, fake_pinecone: FakePinecone) -> None:
    traced = _pinecone_install(tmp_path)

    async def scenario() -> tuple[Any, Any]:
        index = await pinecone.AsyncPinecone(api_key="pc-test").index(host=fake_pinecone.url)
        await index.upsert(vectors=RECORDS, namespace="kb")
        found = await index.search(namespace="kb", top_k=1, vector={"values": [0.0, 1.0]})
        alias = await index.search_records(namespace="kb", top_k=2, inputs={"text": "alpha"})
        await index.close()
        return found, alias

    found, alias = asyncio.run(scenario())
    records = traced.records()
    assert [r["name"] for r in records] == ["pinecone.upsert", "pinecone.search", "pinecone.search_records"]
    search, records_search = records[1:]
    assert _found(search) == _returned(found) and search["metadata"]["vector_dimensions"] == 2
    assert _found(records_search) == _returned(alias) and records_search["doc_count"] == 2
    assert records_search["input"] == "alpha"
