"""Pinecone's integrated-inference records API over REST (sync and asyncio clients):
``upsert_records`` a write span with its count, ``search`` of those records a retrieval."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import autotrace
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced, shape

pinecone = pytest.importorskip("pinecone")
ValidationError = pytest.importorskip("pinecone.errors.exceptions").ValidationError

RECORDS = [{"_id": "a", "text": "refunds within thirty days", "lang": "en"},
           {"id": "b", "text": "shipping takes five days", "lang": "en"},
           {"_id": "c", "text": "remboursement sous trente jours", "lang": "fr"}]


@pytest.fixture
def fake() -> Iterator[FakePinecone]:
    with FakePinecone() as server:
        yield server


def _install(tmp_path: Path) -> Traced:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pinecone",),
                      export_interval=0.05)
    return Traced(tmp_path / "t.db")


def _check(traced: Traced, found: Any) -> None:
    records = traced.records()
    assert shape(records) == [("chain", "request", [("span", "pinecone.upsert_records", []),
                                                    ("retriever", "pinecone.search", []),
                                                    ("span", "pinecone.upsert_records", [])])]
    _, upsert, search, failed = records
    assert (upsert["metadata"]["count"], upsert["metadata"]["collection"]) == (3, "kb")
    assert (search["input"], search["top_k"], search["doc_count"], search["metadata"]["collection"]) == (
        "refunds days", 2, 2, "kb")
    assert [(d["id"], d["score"], d["content"]) for d in search["output"]] == [
        (h.id, h.score, h.fields["text"]) for h in found.result.hits] == [
        ("a", 1.0, "refunds within thirty days"), ("b", 0.5, "shipping takes five days")]
    assert search["metadata"]["scores"] == [1.0, 0.5]
    assert failed["level"] == "ERROR" and failed["metadata"]["count"] == 0


def test_upsert_records_then_search_them(tmp_path: Path, fake: FakePinecone) -> None:
    traced = _install(tmp_path)
    index = pinecone.Pinecone(api_key="pc-test").Index(host=fake.url)
    with autotrace.start_chain("request"):
        assert index.upsert_records(namespace="kb", records=RECORDS).record_count == 3
        found = index.search(namespace="kb", top_k=2, inputs={"text": "refunds days"}, fields=["text"])
        with pytest.raises(ValidationError, match="non-empty"):
            index.upsert_records(namespace="kb", records=[])
    _check(traced, found)
    assert [path for path, _ in fake.requests] == ["/records/namespaces/kb/upsert", "/records/namespaces/kb/search"]


def test_upsert_records_then_search_them_asyncio(tmp_path: Path, fake: FakePinecone) -> None:
    traced = _install(tmp_path)

    async def scenario() -> Any:
        index = await pinecone.AsyncPinecone(api_key="pc-test").index(host=fake.url)
        try:
            with autotrace.start_chain("request"):
                await index.upsert_records(namespace="kb", records=RECORDS)
                found = await index.search(namespace="kb", top_k=2, inputs={"text": "refunds days"})
                with pytest.raises(ValidationError, match="non-empty"):
                    await index.upsert_records(namespace="kb", records=[])
            return found
        finally:
            await index.close()

    _check(traced, asyncio.run(scenario()))
