"""Pinecone's batched upsert (``batch_size=``) over REST, sync and asyncio: a batch the server
refuses does not raise (pinecone 10 reports it in ``UpsertResponse.errors``), so the write span
says so itself: level ERROR with how many batches and items failed and the first error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace.testing.pinecone_grpc_fake import FakePineconeGrpc
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced

pinecone = pytest.importorskip("pinecone")

#: A vector of the wrong dimension: the batch holding it is refused.
VECTORS = [("a", [1.0, 0.0]), ("b", [0.0, 1.0]), ("c", [1.0, 1.0, 1.0]), ("d", [0.5, 0.5]), ("e", [0.2, 0.8])]
REFUSED = "[400] Vector dimension 3 does not match the dimension of the index 2"
FAILED = f"1 of 3 batches failed (2 of 5 items): {REFUSED}"


class _RefusingPinecone(FakePinecone):
    """Refuses (400) an upsert holding a vector of another dimension than 2, as Pinecone does."""

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        body = json.loads(raw or b"{}")
        status, answer = 200, None
        if handler.path.endswith("/vectors/upsert") and any(len(v["values"]) != 2 for v in body["vectors"]):
            status, answer = 400, {"code": 3, "message": REFUSED.removeprefix("[400] ")}
        self.answer(handler, answer if answer is not None else self.handle(handler.path, body), status)


@pytest.fixture
def fake() -> Iterator[FakePinecone]:
    with _RefusingPinecone() as server:
        yield server


def _install(tmp_path: Path) -> Traced:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pinecone",),
                      export_interval=0.05)
    return Traced(tmp_path / "t.db")


def _check(records: list[dict[str, Any]], response: Any, whole: Any) -> None:
    assert response.has_errors and response.failed_item_count == 2 and response.upserted_count == 3
    assert not whole.has_errors
    batched, complete = records
    assert (batched["name"], batched["level"], batched["status_message"]) == ("pinecone.upsert", "ERROR", FAILED)
    assert batched["metadata"]["count"] == 5 and batched["metadata"]["collection"] == "kb"
    assert (complete["name"], complete["level"], complete["status_message"]) == ("pinecone.upsert", "DEFAULT", None)
    assert complete["metadata"]["count"] == 2


def test_a_batched_upsert_with_a_refused_batch_is_a_failed_write(tmp_path: Path, fake: FakePinecone) -> None:
    traced = _install(tmp_path)
    index = pinecone.Pinecone(api_key="pc-test").Index(host=fake.url)
    response = index.upsert(vectors=VECTORS, namespace="kb", batch_size=2, show_progress=False)
    whole = index.upsert(vectors=VECTORS[:2], namespace="kb", batch_size=2, show_progress=False)
    _check(traced.records(), response, whole)


def test_a_batched_upsert_with_a_refused_batch_is_a_failed_write_asyncio(tmp_path: Path,
                                                                          fake: FakePinecone) -> None:
    traced = _install(tmp_path)

    async def scenario() -> tuple[Any, Any]:
        index = await pinecone.AsyncPinecone(api_key="pc-test").index(host=fake.url)
        try:
            response = await index.upsert(vectors=VECTORS, namespace="kb", batch_size=2, show_progress=False,
                                          max_concurrency=1)
            whole = await index.upsert(vectors=VECTORS[:2], namespace="kb", batch_size=2, show_progress=False)
        finally:
            await index.close()
        return response, whole

    response, whole = asyncio.run(scenario())
    _check(traced.records(), response, whole)



def test_a_batched_upsert_with_a_refused_batch_is_a_failed_write_grpc(tmp_path: Path) -> None:
    pinecone_grpc = pytest.importorskip("pinecone.grpc")

    class Refusing(FakePineconeGrpc):
        @staticmethod
        def upsert(namespace: Any, body: dict[str, Any]) -> dict[str, Any]:
            if any(len(v.get("values", [])) != 2 for v in body["vectors"]):
                raise ValueError("dimension")  # the client sees the call fail (UNKNOWN)
            return FakePineconeGrpc.upsert(namespace, body)

    with Refusing() as server:
        traced = _install(tmp_path)
        index = pinecone_grpc.PineconeGRPC(api_key="pc-test", grpc_scheme="http").Index(host=server.host)
        response = index.upsert(vectors=VECTORS, namespace="kb", batch_size=2, show_progress=False, max_concurrency=1)
        whole = index.upsert(vectors=VECTORS[:2], namespace="kb", batch_size=2, show_progress=False)
        index.close()
    assert response.has_errors and response.failed_item_count == 2 and not whole.has_errors
    batched, complete = traced.records()
    assert (batched["level"], batched["metadata"]["count"], complete["level"]) == ("ERROR", 5, "DEFAULT")
    assert batched["status_message"].startswith("1 of 3 batches failed (2 of 5 items): ")

# -- the Documents API of schema-based indexes (``index.documents``) ---------------------------

DOCS = [{"_id": "d1", "text": "refunds within thirty days", "lang": "en", "emb": [1.0, 0.0]},
        {"_id": "d2", "text": "shipping takes five days", "lang": "en", "emb": [0.0, 1.0]},
        {"_id": "d3", "text": "remboursement sous trente jours", "lang": "fr", "emb": [0.7, 0.7]}]


class _DocumentsPinecone(FakePinecone):
    """Pinecone's Documents API (``/namespaces/{ns}/documents/...``): upsert (a document without
    ``text`` is refused, 400), search by a ``text`` clause (the share of its words a document's
    text holds) or a ``dense_vector`` one (cosine), fetch by ids or by an equality filter
    (``limit`` a page), delete by ids."""

    def __init__(self) -> None:
        super().__init__()
        self.documents: dict[str, dict[str, dict[str, Any]]] = {}

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)) or b"{}")
        _, _, namespace, _, action = handler.path.split("?")[0].split("/")
        stored = self.documents.setdefault(namespace, {})
        status, answer = 200, getattr(self, f"_{action}")(namespace, stored, body)
        if answer is None:
            status, answer = 400, {"error": {"code": "INVALID_ARGUMENT", "message": "text is required"}}
        self.answer(handler, answer, status)

    @staticmethod
    def _upsert(namespace: str, stored: dict[str, Any], body: dict[str, Any]) -> dict[str, Any] | None:
        if any("text" not in d for d in body["documents"]):
            return None
        stored.update((d["_id"], d) for d in body["documents"])
        return {"upserted_count": len(body["documents"])}

    def _search(self, namespace: str, stored: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        (clause,) = body["score_by"]
        if clause["type"] == "text":
            words = set(clause["query"].lower().split())

            def score(d: dict[str, Any]) -> float:
                return len(words & set(d["text"].lower().split())) / len(words)
        else:
            def score(d: dict[str, Any]) -> float:
                return self._cosine(clause["values"], d[clause["field"]])
        admitted = [d for d in stored.values() if all(d.get(k) == v for k, v in (body.get("filter") or {}).items())]
        ranked = sorted(admitted, key=lambda d: (-score(d), d["_id"]))[: body["top_k"]]
        wanted = body.get("include_fields") or []
        return {"matches": [{"_id": d["_id"], "_score": score(d), **{k: d[k] for k in wanted if k in d}}
                            for d in ranked], "namespace": namespace, "usage": {"read_units": 1}}

    @staticmethod
    def _fetch(namespace: str, stored: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if "ids" in body:
            found = [stored[i] for i in body["ids"] if i in stored]
            page = {}
        else:
            admitted = sorted((d for d in stored.values() if all(d.get(k) == v for k, v in body["filter"].items())),
                              key=lambda d: d["_id"])
            start = int(body.get("pagination_token") or 0)
            found = admitted[start:start + body["limit"]]
            page = {"pagination": {"next": str(start + body["limit"])}} if start + body["limit"] < len(admitted) else {}
        return {"documents": {d["_id"]: d for d in found}, "namespace": namespace, "usage": {"read_units": 1}, **page}

    @staticmethod
    def _delete(namespace: str, stored: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        for doc_id in body.get("ids", []):
            stored.pop(doc_id, None)
        return {}


@pytest.fixture
def documents() -> Iterator[_DocumentsPinecone]:
    with _DocumentsPinecone() as server:
        yield server


def _check_documents(records: list[dict[str, Any]], by_text: Any, by_vector: Any, fetched: Any, paged: Any,
                     batched: Any) -> None:
    upsert, text, vector, fetch, page, delete, refused = records
    assert (upsert["name"], upsert["type"], upsert["metadata"]["count"], upsert["metadata"]["collection"]) == (
        "pinecone.documents.upsert", "span", 3, "kb")
    assert (text["name"], text["type"], text["input"], text["top_k"], text["doc_count"]) == (
        "pinecone.documents.search", "retriever", "refunds days", 2, 2)
    assert text["metadata"]["filter"] == {"lang": "en"} and text["metadata"]["score_by"] == ["text"]
    assert [(d["id"], d["score"], d["content"]) for d in text["output"]] == [
        (m.id, m.score, m.text) for m in by_text.matches] == [
        ("d1", 1.0, "refunds within thirty days"), ("d2", 0.5, "shipping takes five days")]
    assert text["metadata"]["scores"] == [1.0, 0.5]
    assert vector["metadata"]["score_by"] == ["dense_vector"] and vector["metadata"]["vector_dimensions"] == 2
    assert [d["id"] for d in vector["output"]] == [m.id for m in by_vector.matches] == ["d1"]
    assert vector.get("input") is None and "content" not in vector["output"][0]  # no fields asked for
    assert (fetch["name"], fetch["metadata"]["operation"], fetch["metadata"]["ids"], fetch["doc_count"]) == (
        "pinecone.documents.fetch", "fetch", ["d3", "zz"], 1)
    assert fetch["output"] == [{"id": "d3", "content": "remboursement sous trente jours"}] and list(fetched.documents) == ["d3"]
    assert (page["top_k"], page["metadata"]["filter"], page["doc_count"], page["metadata"]["next_page_offset"]) == (
        1, {"lang": "en"}, 1, paged.pagination.next)
    assert (delete["name"], delete["metadata"]["count"]) == ("pinecone.documents.delete", 1)
    assert batched.has_errors and batched.failed_item_count == 1
    assert (refused["name"], refused["level"], refused["metadata"]["count"]) == (
        "pinecone.documents.batch_upsert", "ERROR", 3)
    assert refused["status_message"].startswith("1 of 2 batches failed (1 of 3 items): ")


def _documents_calls() -> list[tuple[str, dict[str, Any]]]:
    from pinecone.models.documents.score_by import TextQuery
    return [("upsert", {"namespace": "kb", "documents": DOCS}),
            ("search", {"namespace": "kb", "top_k": 2, "filter": {"lang": "en"}, "include_fields": ["text"],
                        "score_by": [TextQuery(query="refunds days", fields=["text"])]}),
            ("search", {"namespace": "kb", "top_k": 1, "score_by": [{"type": "dense_vector", "field": "emb",
                                                                     "values": [1.0, 0.1]}]}),
            ("fetch", {"namespace": "kb", "ids": ["d3", "zz"]}),
            ("fetch", {"namespace": "kb", "filter": {"lang": "en"}, "limit": 1}),
            ("delete", {"namespace": "kb", "ids": ["d2"]}),
            ("batch_upsert", {"namespace": "kb", "batch_size": 2, "show_progress": False, "max_concurrency": 1,
                              "documents": [{"_id": "d4", "text": "four"}, {"_id": "d5", "text": "five"},
                                            {"_id": "d6", "lang": "en"}]})]


def test_the_documents_api_searches_and_fetches_are_retrievals(tmp_path: Path, documents: FakePinecone) -> None:
    traced = _install(tmp_path)
    api = pinecone.Pinecone(api_key="pc-test").Index(host=documents.url).documents
    results = [getattr(api, method)(**kwargs) for method, kwargs in _documents_calls()]
    _check_documents(traced.records(), *results[1:5], results[6])


def test_the_documents_api_searches_and_fetches_are_retrievals_asyncio(tmp_path: Path,
                                                                        documents: FakePinecone) -> None:
    traced = _install(tmp_path)

    async def scenario() -> list[Any]:
        index = await pinecone.AsyncPinecone(api_key="pc-test").index(host=documents.url)
        try:
            return [await getattr(index.documents, method)(**kwargs) for method, kwargs in _documents_calls()]
        finally:
            await index.close()

    results = asyncio.run(scenario())
    _check_documents(traced.records(), *results[1:5], results[6])
