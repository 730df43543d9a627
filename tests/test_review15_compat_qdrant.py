"""The qdrant integration on the oldest claimed qdrant-client (1.9, before the ``query_points`` API)
and on the newest: installing warns about nothing that exists, and the legacy ``search`` API,
where the installed client has it, is recorded as a retrieval."""

from __future__ import annotations

import asyncio
import logging

import pytest

import autotrace
from tests.helpers import Traced, shape

qdrant_client = pytest.importorskip("qdrant_client")
models = pytest.importorskip("qdrant_client.models")
AsyncQdrantClient, QdrantClient = qdrant_client.AsyncQdrantClient, qdrant_client.QdrantClient

pytestmark = pytest.mark.integrations("qdrant")

POINTS = [models.PointStruct(id=i, vector=[float(i), 1.0, 0.5], payload={"text": f"doc {i}"}) for i in (1, 2, 3)]


def test_installing_skips_no_patch_of_the_installed_client(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    """A client before 1.10 has no ``query_points``/``query_batch_points``: that is its API, not a changed one."""
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("qdrant",))
    assert "cannot patch" not in caplog.text
    assert autotrace.stats().get("integration_patch_skipped.qdrant", 0) == 0


@pytest.mark.skipif(not hasattr(QdrantClient, "search"), reason="this qdrant-client has no legacy search API")
def test_the_legacy_search_api_is_a_retrieval(traced: Traced) -> None:
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
    client.upsert("kb", points=POINTS)
    hits = client.search("kb", query_vector=[1.0, 1.0, 0.5], limit=2)

    async def scenario() -> list[object]:
        other = AsyncQdrantClient(":memory:")
        await other.create_collection("kb", vectors_config=models.VectorParams(size=3,
                                                                               distance=models.Distance.COSINE))
        await other.upsert("kb", points=POINTS)
        return await other.search("kb", query_vector=[3.0, 1.0, 0.5], limit=1)

    ahits = asyncio.run(scenario())
    records = traced.records()
    assert shape(records) == [("span", "qdrant.upsert", []), ("retriever", "qdrant.search", []),
                              ("span", "qdrant.upsert", []), ("retriever", "qdrant.search", [])]
    for record, found in ((records[1], hits), (records[3], ahits)):
        assert record["doc_count"] == len(found) and record["top_k"] == len(found)
        assert [d["id"] for d in record["output"]] == [h.id for h in found]
        assert [d["content"] for d in record["output"]] == [h.payload["text"] for h in found]
        assert record["metadata"]["scores"] == [h.score for h in found]
        assert record["metadata"]["vector_dimensions"] == 3 and record["metadata"]["collection"] == "kb"
