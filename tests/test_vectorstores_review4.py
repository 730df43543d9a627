"""Fourth review of the vector-store integrations: Pinecone indexes made before ``install()``
or kept after ``uninstall()``, through the real client over HTTP to the loopback fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import autotrace
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced, shape

pinecone = pytest.importorskip("pinecone")

_VECTORS = [("a", [1.0, 0.0], {"text": "alpha"}), ("b", [0.0, 1.0], {"text": "beta"})]


@pytest.fixture
def fake() -> Iterator[FakePinecone]:
    with FakePinecone() as server:
        yield server


def _install(path: Path, integrations: tuple[str, ...] = ("pinecone",)) -> None:
    autotrace.install(local_store="on", local_store_path=path, integrations=integrations, export_interval=0.05)


def test_an_index_made_before_install_is_traced(tmp_path: Path, fake: FakePinecone) -> None:
    """The SDK wraps each index's ``upsert``/``query`` for ``async_req`` when the index is made:
    one made before ``install()`` is recorded all the same, ``async_req`` calls included."""
    index = pinecone.Pinecone(api_key="pc-test").Index(host=fake.url)
    _install(tmp_path / "t.db")
    with autotrace.start_chain("request") as request:
        index.upsert(vectors=_VECTORS, namespace="kb")
        response = index.query(vector=[1.0, 0.1], top_k=1, include_metadata=True, namespace="kb")
        queued = index.query(vector=[0.1, 1.0], top_k=1, namespace="kb", async_req=True).get(timeout=10)
    records = Traced(tmp_path / "t.db").trace(request.trace_id)
    assert shape(records) == [("chain", "request", [("span", "pinecone.upsert", []),
                                                    ("retriever", "pinecone.query", []),
                                                    ("retriever", "pinecone.query", [])])]
    _, upsert, query, later = records
    assert (upsert["metadata"]["count"], upsert["metadata"]["collection"]) == (2, "kb")
    assert [d["id"] for d in query["output"]] == [m.id for m in response.matches] == ["a"]
    assert [d["id"] for d in later["output"]] == [m.id for m in queued.matches] == ["b"]


def test_an_index_made_while_installed_is_not_traced_after_uninstall(tmp_path: Path, fake: FakePinecone) -> None:
    """After ``uninstall()`` the index calls the SDK's own methods: installed again without the
    Pinecone integration, its calls are not recorded."""
    originals = {name: vars(pinecone.Index)[name] for name in ("query", "upsert")}
    _install(tmp_path / "t.db")
    index = pinecone.Pinecone(api_key="pc-test").Index(host=fake.url)
    index.upsert(vectors=_VECTORS, namespace="kb")
    autotrace.uninstall()
    assert {name: vars(pinecone.Index)[name] for name in originals} == originals
    _install(tmp_path / "t2.db", integrations=("faiss",))
    with autotrace.start_chain("request") as request:
        index.upsert(vectors=_VECTORS, namespace="kb")
        assert [m.id for m in index.query(vector=[1.0, 0.1], top_k=1, namespace="kb").matches] == ["a"]
    assert shape(Traced(tmp_path / "t2.db").trace(request.trace_id)) == [("chain", "request", [])]


def test_an_attribute_set_on_the_index_is_kept(tmp_path: Path, fake: FakePinecone) -> None:
    """A method the user puts on one index (a stub, say) is the one called, installed or not."""
    _install(tmp_path / "t.db")
    index = pinecone.Pinecone(api_key="pc-test").Index(host=fake.url)
    index.query = lambda **kwargs: ("stub", kwargs)
    assert index.query(top_k=1) == ("stub", {"top_k": 1})
    del index.query  # the SDK's wrapper gone too: the class's method, traced
    with pytest.raises(AttributeError):
        del index.query
    assert index.query(vector=[1.0, 0.1], top_k=1, namespace="kb").matches == []
    assert [r["name"] for r in Traced(tmp_path / "t.db").records()] == ["pinecone.query"]
