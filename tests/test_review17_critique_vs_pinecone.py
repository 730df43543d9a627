"""Critique of this session's Pinecone work, through the real pinecone SDK over HTTP to the
project's loopback fake: a Documents ``batch_upsert`` whose batch the server found too large is
split by the SDK and each piece retried, so one batch may fail in several pieces."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

import autotrace
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced

pinecone = pytest.importorskip("pinecone")

TOO_LARGE = "request of {} documents is over 2 MB"


class _TooLarge(FakePinecone):
    """Documents upserts refused as too large (413) when they hold a document of over 100 characters."""

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)) or b"{}")
        documents = body.get("documents", [])
        if any(len(d.get("text", "")) > 100 for d in documents):
            status, answer = 413, {"error": {"code": "PAYLOAD_TOO_LARGE", "message": TOO_LARGE.format(len(documents))}}
        else:
            status, answer = 200, {"upserted_count": len(documents)}
        self.answer(handler, answer, status)


@pytest.fixture
def fake() -> Iterator[FakePinecone]:
    with _TooLarge() as server:
        yield server


def test_a_batch_failing_in_several_split_pieces_counts_once(tmp_path: Path, fake: FakePinecone) -> None:
    """The message counted the errors, one per failed piece: "2 of 2 batches failed" for one of two."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pinecone",),
                      export_interval=0.05)
    traced = Traced(tmp_path / "t.db")
    api = pinecone.Pinecone(api_key="pc-test").Index(host=fake.url).documents
    documents = [{"_id": "a", "text": "x" * 200}, {"_id": "b", "text": "y" * 200},
                 {"_id": "c", "text": "short"}, {"_id": "d", "text": "brief"}]
    result = api.batch_upsert(namespace="kb", documents=documents, batch_size=2, show_progress=False,
                              max_concurrency=1)
    assert (len(result.errors), result.failed_batch_count, result.total_batch_count) == (2, 1, 2)
    (write,) = traced.records()
    assert (write["name"], write["level"], write["metadata"]["count"]) == ("pinecone.documents.batch_upsert", "ERROR", 4)
    assert write["status_message"].startswith("1 of 2 batches failed (2 of 4 items): "), write["status_message"]
