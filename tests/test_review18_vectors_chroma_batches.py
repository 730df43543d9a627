"""Chroma: a query of many texts at once (a batch evaluation, a de-duplication pass) is recorded
bounded, as a FAISS search of many queries is: its first ``MAX_DOCUMENTS`` texts and queries' counts."""

from __future__ import annotations

import pytest

import autotrace
from autotrace.integrations.documents import MAX_DOCUMENTS
from autotrace.integrations.vectorstores.chroma import _query_results
from tests.helpers import Traced
from tests.test_vectorstores_qdrant_chroma_faiss import _chroma

pytestmark = pytest.mark.integrations("chroma")


def test_a_query_of_many_texts_records_the_first_texts(traced: Traced) -> None:
    """Every text of the batch was recorded as the query: a list of thousands of texts serialised on
    the caller's thread, then cut into a string that was no longer a list."""
    collection = _chroma("many-texts")
    texts = [f"alpha {i}" for i in range(MAX_DOCUMENTS + 50)]
    found = collection.query(query_texts=texts, n_results=1, include=["distances"])
    (record,) = [r for r in traced.records() if r["name"] == "chroma.query"]
    assert len(found["ids"]) == MAX_DOCUMENTS + 50
    assert record["input"] == texts[:MAX_DOCUMENTS]
    assert record["metadata"]["queries"] == MAX_DOCUMENTS + 50
    assert (record["doc_count"], record["metadata"]["doc_counts"]) == (MAX_DOCUMENTS + 50, [1] * MAX_DOCUMENTS)
    assert record["output"] == [{"id": row[0], "score": d[0]}
                                for row, d in zip(found["ids"], found["distances"], strict=True)][:MAX_DOCUMENTS]
    assert autotrace.stats()["retrieval_requests_truncated"] == 50
    assert autotrace.stats()["retrieval_doc_counts_truncated"] == 50


def test_the_results_of_many_queries_are_not_a_batch_each() -> None:
    """A batch (a generator) was built per query, thousands for a query of thousands of texts; the
    queries after the first ``MAX_DOCUMENTS`` share one, whose documents are read only if needed."""
    n = MAX_DOCUMENTS + 3
    response = {"ids": [[] for _ in range(MAX_DOCUMENTS)] + [["x"], [], ["y", "z"]],
                "distances": [[] for _ in range(MAX_DOCUMENTS)] + [[0.5], [], [0.1, 0.2]], "documents": None}
    batches = _query_results(response, {})
    assert len(batches) == MAX_DOCUMENTS + 1 and sum(b.queries for b in batches) == n
    rest = batches[-1]
    assert (rest.count, rest.queries) == (3, 3)
    assert list(rest.documents) == [{"id": "x", "score": 0.5}, {"id": "y", "score": 0.1}, {"id": "z", "score": 0.2}]


def test_pages_of_a_listing_record_their_offset(traced: Traced) -> None:
    """``get(limit=, offset=)`` paging through a collection recorded every page alike: which page
    a retrieval was (by keyword or position) was lost."""
    collection = _chroma("pages")
    first = collection.get(limit=2, include=["documents"])
    second = collection.get(None, None, 2, 2, include=["documents"])
    assert (first["ids"], second["ids"]) == (["a", "b"], ["c"])
    records = [r for r in traced.records() if r["name"] == "chroma.get"]
    assert [(r["top_k"], r["metadata"].get("offset"), r["output"]) for r in records] == [
        (2, None, [{"id": "a", "content": "alpha"}, {"id": "b", "content": "beta"}]),
        (2, 2, [{"id": "c", "content": "gamma ray"}])]
