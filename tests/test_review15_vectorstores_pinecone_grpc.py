"""Pinecone's gRPC client (``pinecone.grpc``, a compiled transport) through the real SDK to a
loopback grpcio fake of its ``VectorService``: traced like the REST client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace.testing.pinecone_grpc_fake import FakePineconeGrpc
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced, shape

pinecone_grpc = pytest.importorskip("pinecone.grpc")
ValidationError = pytest.importorskip("pinecone.errors.exceptions").ValidationError

VECTORS = [("a", [1.0, 0.0], {"text": "alpha", "lang": "en"}), ("b", [0.0, 1.0], {"text": "beta", "lang": "en"}),
           ("c", [0.7, 0.7], {"text": "gamma", "lang": "fr"})]


@pytest.fixture
def fake() -> Iterator[FakePineconeGrpc]:
    """Started before ``install()``: its server is not traced, so only the client's side is recorded."""
    with FakePineconeGrpc() as server:
        yield server


def _install(tmp_path: Path, *integrations: str) -> Traced:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db",
                      integrations=integrations or ("pinecone",), export_interval=0.05)
    return Traced(tmp_path / "t.db")


def _index(host: str) -> Any:
    return pinecone_grpc.PineconeGRPC(api_key="pc-test", grpc_scheme="http").Index(host=host)


def _found(record: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    return [(d["id"], d.get("score"), d.get("content")) for d in record["output"]]


def test_grpc_reads_and_writes_are_recorded_like_rest(tmp_path: Path, fake: FakePineconeGrpc) -> None:
    """With the gRPC integration installed too: the compiled transport opens no grpcio channel,
    so each call is exactly one observation, with no gRPC client span under it, and no trace
    context reaches the server."""
    traced = _install(tmp_path, "pinecone", "grpc")
    index = _index(fake.host)
    index.upsert(vectors=VECTORS, namespace="kb")
    with autotrace.start_chain("request"):
        response = index.query(vector=[1.0, 0.1], top_k=2, include_metadata=True, namespace="kb",
                               filter={"lang": "en"})
        fetched = index.fetch(ids=["c", "zz"], namespace="kb")
        page = index.fetch_by_metadata(filter={"lang": "en"}, namespace="kb", limit=1)
    index.update(id="a", set_metadata={"seen": True}, namespace="kb")
    index.delete(ids=["b", "c"], namespace="kb")
    records = traced.records()
    assert shape(records) == [("span", "pinecone.upsert", []), ("chain", "request", [
        ("retriever", "pinecone.query", []), ("retriever", "pinecone.fetch", []),
        ("retriever", "pinecone.fetch_by_metadata", [])]), ("span", "pinecone.update", []),
        ("span", "pinecone.delete", [])]
    upsert, _, query, fetch, by_metadata, update, delete = records
    assert [(r["metadata"]["count"], r["metadata"]["collection"]) for r in (upsert, update, delete)] == [
        (3, "kb"), (1, "kb"), (2, "kb")]
    assert query["type"] == "retriever" and query["doc_count"] == len(response.matches) == 2
    assert _found(query) == [(m.id, m.score, m.metadata["text"]) for m in response.matches]
    assert query["metadata"]["scores"] == [m.score for m in response.matches]
    assert (query["top_k"], query["metadata"]["vector_dimensions"], query["metadata"]["collection"],
            query["metadata"]["filter"]) == (2, 2, "kb", {"lang": "en"})
    assert _found(fetch) == [("c", None, "gamma")] == [(v.id, None, v.metadata["text"])
                                                       for v in fetched.vectors.values()]
    assert (fetch["metadata"]["operation"], fetch["metadata"]["ids"]) == ("fetch", ["c", "zz"])
    assert _found(by_metadata) == [("a", None, "alpha")] and by_metadata["metadata"]["next_page_offset"] == "1"
    assert page.pagination is not None and page.pagination.next == "1"
    assert [method for method, _ in fake.requests] == ["Upsert", "Query", "Fetch", "FetchByMetadata", "Update",
                                                       "Delete"]
    assert not any("traceparent" in metadata for metadata in fake.metadata)


def test_grpc_futures_keep_the_callers_tenant_and_nest_under_it(tmp_path: Path, fake: FakePineconeGrpc) -> None:
    """``*_async`` runs the traced method on the index's executor: in the caller's context, so
    under its observation and tenant, not as tenantless traces of their own."""
    traced = _install(tmp_path)
    index = _index(fake.host)
    index.upsert(vectors=VECTORS, namespace="kb")
    with autotrace.tenant("acme"), autotrace.start_chain("request") as request:
        queried = index.query_async(vector=[1.0, 0.1], top_k=1, namespace="kb").result(timeout=10)
        merged = index.query_namespaces_async(vector=[1.0, 0.1], namespaces=["kb", "empty"], metric="cosine",
                                              top_k=2).result(timeout=10)
        index.upsert_async(vectors=[("d", [1.0, 1.0])], namespace="kb").result(timeout=10)
        index.fetch_async(ids=["d"], namespace="kb").result(timeout=10)
        failed = index.query_async(vector=[1.0, 0.1, 0.0], top_k=1, id="a", namespace="kb").exception(timeout=10)
    assert isinstance(failed, ValidationError)
    records = traced.trace(request.trace_id)
    assert shape(records) == [("chain", "request", [
        ("retriever", "pinecone.query", []), ("retriever", "pinecone.query_namespaces", []),
        ("span", "pinecone.upsert", []), ("retriever", "pinecone.fetch", []), ("retriever", "pinecone.query", [])])]
    assert {r["tenant"] for r in records} == {"acme"} and len(traced.records()) == 1 + len(records)
    query, namespaces, _, fetch, error = records[1:]
    assert _found(query) == [(m.id, m.score, None) for m in queried.matches] == [("a", queried.matches[0].score,
                                                                                  None)]
    assert namespaces["doc_count"] == 2 and [d["id"] for d in namespaces["output"]] == [m.id for m in merged.matches]
    assert namespaces["metadata"]["namespaces"] == ["kb", "empty"]
    assert fetch["doc_count"] == 1 and error["level"] == "ERROR"


def test_grpc_records_search_is_a_retrieval(tmp_path: Path) -> None:
    """The gRPC index's records API goes over REST (to the index host): ``upsert_records`` a
    span with the count, ``search`` a retrieval of its hits."""
    with FakePinecone() as rest:
        traced = _install(tmp_path)
        index = pinecone_grpc.GrpcIndex(host=rest.url, api_key="pc-test", grpc_scheme="http")
        index.upsert_records(namespace="kb", records=[{"_id": "a", "text": "alpha notes"},
                                                      {"id": "b", "text": "beta notes"}])
        found = index.search(namespace="kb", top_k=1, inputs={"text": "alpha"})
    upsert, search = traced.records()
    assert (upsert["name"], upsert["metadata"]["count"], upsert["metadata"]["collection"]) == (
        "pinecone.upsert_records", 2, "kb")
    assert (search["name"], search["input"], search["doc_count"]) == ("pinecone.search", "alpha", 1)
    assert _found(search) == [(h.id, h.score, h.fields["text"]) for h in found.result.hits] == [
        ("a", 1.0, "alpha notes")]


def test_uninstall_restores_the_grpc_client(tmp_path: Path, fake: FakePineconeGrpc) -> None:
    original = {name: pinecone_grpc.GrpcIndex.__dict__[name] for name in ("query", "query_async", "upsert_records")}
    traced = _install(tmp_path)
    assert all(pinecone_grpc.GrpcIndex.__dict__[name] is not method for name, method in original.items())
    autotrace.uninstall()
    assert all(pinecone_grpc.GrpcIndex.__dict__[name] is method for name, method in original.items())
    _index(fake.host).query_async(vector=[1.0, 0.0], top_k=1, namespace="kb").result(timeout=10)
    assert traced.path.exists() and fake.requests == [("Query", {"namespace": "kb", "top_k": 1, "vector": [1.0, 0.0]})]
