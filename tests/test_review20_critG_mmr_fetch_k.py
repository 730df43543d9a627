"""An MMR retriever records ``fetch_k`` (what the store is asked) as its ``top_k``: also when
``search_kwargs`` leaves it to the store's default, when a retriever of its own passes it by
position, and the same through ``ainvoke`` as through ``invoke``."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from tests.helpers import Traced
from tests.test_review20_langchain_retriever_top_k import _chroma

pytestmark = pytest.mark.integrations("langchain")


def _retrievals(traced: Traced) -> list[tuple[str, int | None, int]]:
    return [(r["name"], r["top_k"], r["doc_count"]) for r in traced.records() if r["type"] == "retriever"]


def test_an_mmr_retrievers_default_fetch_k_is_its_top_k_sync_and_async(traced: Traced) -> None:
    retriever = _chroma().as_retriever(search_type="mmr", search_kwargs={"k": 2})
    assert len(retriever.invoke("doc 1")) == 2
    assert len(asyncio.run(retriever.ainvoke("doc 2"))) == 2
    assert _retrievals(traced) == [("VectorStoreRetriever", 20, 2)] * 2  # Chroma's fetch_k default


def test_a_positional_fetch_k_is_the_top_k(traced: Traced) -> None:
    store = _chroma()

    class Diverse(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: object) -> list[Document]:
            return store.max_marginal_relevance_search(query, 2, 5)

    assert len(Diverse().invoke("doc 3")) == 2
    assert _retrievals(traced) == [("Diverse", 5, 2)]
