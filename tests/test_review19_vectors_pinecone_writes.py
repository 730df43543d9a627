"""Pinecone writes that select their vectors by filter, or all of a namespace's, through the real
client over HTTP to the loopback fake: the span says which (a tenant's delete told from a wipe of
the namespace), as a Qdrant or Chroma write by filter does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import autotrace
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced

pinecone = pytest.importorskip("pinecone")

VECTORS = [("a", [1.0, 0.0], {"tenant": "acme"}), ("b", [0.0, 1.0], {"tenant": "globex"})]
EXPECTED = [
    ("pinecone.update", {"filter": {"tenant": "acme"}, "dry_run": True, "collection": "kb"}),
    ("pinecone.delete", {"filter": {"tenant": {"$eq": "acme"}}, "collection": "kb"}),
    ("pinecone.delete", {"delete_all": True, "collection": "kb"}),
    ("pinecone.delete", {"count": 1, "collection": "kb"}),
]


@pytest.fixture
def fake() -> Iterator[FakePinecone]:
    with FakePinecone() as server:
        yield server


def _writes(tmp_path: Path) -> list[tuple[str, dict[str, object]]]:
    records = Traced(tmp_path / "t.db").records()
    return [(r["name"], {k: v for k, v in r["metadata"].items() if k not in ("store", "operation")})
            for r in records if r["name"] != "pinecone.upsert"]


def _install(tmp_path: Path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pinecone",),
                      export_interval=0.05)


def test_a_write_by_filter_or_of_everything_records_what_it_selects(tmp_path: Path, fake: FakePinecone) -> None:
    """Each of these was a span with only ``count: None`` and the namespace: a delete of one
    tenant's vectors, a wipe of the namespace and a dry run looked the same."""
    _install(tmp_path)
    index = pinecone.Pinecone(api_key="pc-test").Index(host=fake.url)
    index.upsert(vectors=VECTORS, namespace="kb")
    index.update(filter={"tenant": "acme"}, set_metadata={"seen": True}, dry_run=True, namespace="kb")
    index.delete(filter={"tenant": {"$eq": "acme"}}, namespace="kb")
    index.delete(delete_all=True, namespace="kb")
    index.delete(ids=["b"], namespace="kb")
    assert _writes(tmp_path) == EXPECTED


def test_a_write_by_filter_asyncio(tmp_path: Path, fake: FakePinecone) -> None:
    _install(tmp_path)

    async def scenario() -> None:
        index = await pinecone.AsyncPinecone(api_key="pc-test").index(host=fake.url)
        await index.upsert(vectors=VECTORS, namespace="kb")
        await index.update(filter={"tenant": "acme"}, set_metadata={"seen": True}, dry_run=True, namespace="kb")
        await index.delete(filter={"tenant": {"$eq": "acme"}}, namespace="kb")
        await index.delete(delete_all=True, namespace="kb")
        await index.delete(ids=["b"], namespace="kb")
        await index.close()

    asyncio.run(scenario())
    assert _writes(tmp_path) == EXPECTED
