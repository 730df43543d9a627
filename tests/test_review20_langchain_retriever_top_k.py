"""A ``VectorStoreRetriever`` (``store.as_retriever(search_kwargs=...)``) records the ``k`` and
filter of the search it runs as its ``top_k`` and filter, as a direct search of the store does:
LangChain's callbacks do not tell them, and the store's search inside it records nothing itself."""

from __future__ import annotations

import asyncio
import uuid

import chromadb
import pytest
from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain")

QUERY = ("embedding", "DeterministicFakeEmbedding.embed_query", [])


def _chroma() -> Chroma:
    store = Chroma(collection_name=f"kb-{uuid.uuid4().hex[:8]}", embedding_function=DeterministicFakeEmbedding(size=8),
                   client=chromadb.EphemeralClient())
    store.add_documents([Document(page_content=f"doc {i}", metadata={"n": i}) for i in range(6)],
                        ids=[f"d{i}" for i in range(6)])
    return store


def test_a_retrievers_search_kwargs_are_its_top_k_and_filter(traced: Traced) -> None:
    store = _chroma()
    retriever = store.as_retriever(search_kwargs={"k": 3, "filter": {"n": {"$gte": 2}}})
    assert len(retriever.invoke("doc 4")) == 3
    assert len(asyncio.run(retriever.ainvoke("doc 5"))) == 3
    assert len(store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 5}).invoke("doc 1")) == 2
    # no ``k`` given: Chroma's ``similarity_search`` passes its default on to the search it runs
    assert len(store.as_retriever().invoke("doc 0")) == 4
    records = [r for r in traced.records() if r["type"] == "retriever"]
    assert shape(records) == [("retriever", "VectorStoreRetriever", [])] * 4
    assert [(r["input"], r["top_k"], r["doc_count"], (r["metadata"] or {}).get("filter")) for r in records] == [
        ("doc 4", 3, 3, {"n": {"$gte": 2}}), ("doc 5", 3, 3, {"n": {"$gte": 2}}), ("doc 1", 5, 2, None),  # MMR: fetch_k, what the store was asked
        ("doc 0", 4, 4, None)]
    assert {r["metadata"]["store"] for r in records} == {"Chroma"}


def test_a_direct_search_inside_a_retriever_keeps_the_retrievers_own(traced: Traced) -> None:
    """A retriever that searches twice (a multi-query one) records the first search's ``k``."""
    from langchain_core.retrievers import BaseRetriever

    store = _chroma()

    class TwoSearches(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: object) -> list[Document]:
            return store.similarity_search(query, k=1) + store.similarity_search(query + "!", k=2)

    assert len(TwoSearches().invoke("doc 3")) == 3
    (record,) = [r for r in traced.records() if r["type"] == "retriever"]
    assert (record["name"], record["top_k"], record["doc_count"]) == ("TwoSearches", 1, 3)
    assert [r["name"] for r in traced.records()].count("DeterministicFakeEmbedding.embed_query") == 2
