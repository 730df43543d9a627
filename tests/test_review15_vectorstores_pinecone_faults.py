"""Faults in the Pinecone wrappers that keep thread-pool work in the caller's context
(``query_namespaces``, the gRPC ``*_async`` futures): autotrace's own steps raise, the user's call
returns or raises exactly what it would untraced."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace.integrations.vectorstores import pinecone as integration
from autotrace.testing.pinecone_grpc_fake import FakePineconeGrpc
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced, shape

pinecone = pytest.importorskip("pinecone")
pinecone_grpc = pytest.importorskip("pinecone.grpc")
ValidationError = pytest.importorskip("pinecone.errors.exceptions").ValidationError

VECTOR = [1.0, 0.1]


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("autotrace step failed")


@pytest.fixture
def indexes() -> Iterator[tuple[Any, Any]]:
    """A REST and a gRPC index, each with namespaces ``en`` and ``fr``, made before ``install()``."""
    with FakePinecone() as rest, FakePineconeGrpc() as grpc:
        made = (pinecone.Pinecone(api_key="pc-test").Index(host=rest.url),
                pinecone_grpc.PineconeGRPC(api_key="pc-test", grpc_scheme="http").Index(host=grpc.host))
        for index in made:
            for ns in ("en", "fr"):
                index.upsert(vectors=[(f"{ns}-1", [1.0, 0.0], {"text": ns}), (f"{ns}-2", [0.0, 1.0])], namespace=ns)
        yield made


def _calls(rest: Any, grpc: Any) -> list[Any]:
    """What the user sees of each call: merged matches, a future's result, the errors raised."""
    seen: list[Any] = []
    for index in (rest, grpc):
        merged = index.query_namespaces(vector=VECTOR, namespaces=["en", "fr"], metric="cosine", top_k=3)
        seen.append([(m.id, round(m.score, 6)) for m in merged.matches])
        with pytest.raises(ValidationError, match="metric") as raised:
            index.query_namespaces(vector=VECTOR, namespaces=["en"], metric="hamming")
        seen.append(str(raised.value))
    seen.append([m.id for m in grpc.query_async(vector=VECTOR, top_k=2, namespace="fr").result(timeout=10).matches])
    seen.append(grpc.upsert_async(vectors=[("x", [1.0, 1.0])], namespace="scratch").result(timeout=10).upserted_count)
    merged = grpc.query_namespaces_async(vector=VECTOR, namespaces=["en"], metric="cosine", top_k=1)
    seen.append([m.id for m in merged.result(timeout=10).matches])
    error = grpc.query_async(vector=VECTOR, id="en-1", top_k=1, namespace="en").exception(timeout=10)
    seen.append((type(error), str(error)))
    return seen


def _install(tmp_path: Path) -> Traced:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pinecone",),
                      export_interval=0.05)
    return Traced(tmp_path / "t.db")


@pytest.mark.parametrize("step", ["proxy", "executor"])
def test_the_callers_context_failing_leaves_the_calls_as_they_are(
        tmp_path: Path, indexes: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    """The proxy that carries the caller's context (or the executor it hands the SDK) cannot be
    made: the call runs on the index as it is, with the same results and errors, and the
    failure is counted."""
    untraced = _calls(*indexes)
    traced = _install(tmp_path)
    cls = integration._InCallersContext if step == "proxy" else integration._SubmitsInContext
    monkeypatch.setattr(cls, "__init__", _boom)
    assert _calls(*indexes) == untraced
    assert autotrace.stats()["internal_errors.pinecone"] == (9 if step == "proxy" else 4)  # each call; the futures' four
    retrievals = [r["name"] for r in traced.records() if r["type"] == "retriever"]
    assert retrievals.count("pinecone.query_namespaces") == 5  # the merged ones; a future's, wherever it ran


@pytest.mark.parametrize("part", ["_describe_namespaces", "_results"])
def test_describing_or_reading_a_namespaces_query_failing(
        tmp_path: Path, indexes: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch, part: str) -> None:
    untraced = _calls(*indexes)
    monkeypatch.setattr(integration, part, _boom)  # before install: the wrappers are built over it
    traced = _install(tmp_path)
    with autotrace.start_chain("request"):
        assert _calls(*indexes) == untraced
    if part == "_results":  # the retrieval is still recorded, without its documents
        namespaces = [r for r in traced.records() if r["name"] == "pinecone.query_namespaces"]
        assert [r["doc_count"] for r in namespaces] == [None] * 5
        assert autotrace.stats()["internal_errors.pinecone.results"] >= 5
    else:
        assert autotrace.stats()["internal_errors.pinecone.search"] == 5


def test_a_future_made_with_nothing_recording_is_left_alone(tmp_path: Path, indexes: tuple[Any, Any]) -> None:
    """Outside any observation, a gRPC future's query is its own trace, in the submitting tenant."""
    traced = _install(tmp_path)
    with autotrace.tenant("acme"):
        indexes[1].query_async(vector=VECTOR, top_k=1, namespace="en").result(timeout=10)
    (query,) = traced.records()
    assert shape([query]) == [("retriever", "pinecone.query", [])] and query["tenant"] == "acme"
