"""OpenAI's hosted vector stores: ``vector_stores.search`` (sync and async) is a retrieval of its
own, with the query, the store, the number of results asked for, the filter and the files found
(id, score, the start of their text, name and attributes). The real SDK against the loopback fake."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

import autotrace
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("openai")

RETURNS = {"id": "file-returns", "content": "Returns are accepted within 30 days with the order number.",
           "metadata": {"filename": "returns.md", "attributes": {"lang": "en"}}}
REFUNDS = {"id": "file-refunds", "content": "Refunds are issued within 5 business days of the return.",
           "metadata": {"filename": "refunds.md", "attributes": {"lang": "en"}}}


def _files(page: Any) -> list[tuple[str, float]]:
    return [(item.file_id, item.score) for item in page.data]


def test_a_search_is_a_retrieval_with_the_files_it_found(traced: Traced, client: openai.OpenAI) -> None:
    with autotrace.start_chain("answer"):
        page = client.vector_stores.search("vs_policies", query="returns within days", max_num_results=2,
                                           filters={"type": "eq", "key": "lang", "value": "en"})
    assert _files(page) == [("file-returns", 1.0), ("file-refunds", 0.6667)]  # what the caller gets, untouched
    chain, search = traced.records()
    assert shape([chain, search]) == [("chain", "answer", [("retriever", "openai.vector_stores.search", [])])]
    assert search["input"] == "returns within days"
    metadata = search["metadata"]
    assert (metadata["store"], metadata["collection"], search["top_k"], search["doc_count"]) == (
        "openai", "vs_policies", 2, 2)
    assert metadata["filter"] == {"type": "eq", "key": "lang", "value": "en"}
    assert search["output"] == [{**RETURNS, "score": 1.0}, {**REFUNDS, "score": 0.6667}]
    assert search["level"] == "DEFAULT"
    assert "search_query" not in metadata and "rewrite_query" not in metadata


def test_an_async_search_of_several_queries_rewritten_by_the_api(traced: Traced,
                                                                 aclient: openai.AsyncOpenAI) -> None:
    async def search() -> Any:
        return await aclient.vector_stores.search("vs_policies", query=["refunds", "tracking"],
                                                  rewrite_query=True)

    page = asyncio.run(search())
    assert [file_id for file_id, _ in _files(page)] == ["file-refunds", "file-shipping"]
    (record,) = traced.records()
    assert record["type"] == "retriever" and record["name"] == "openai.vector_stores.search"
    assert record["input"] == ["refunds", "tracking"]
    assert record["top_k"] == 10  # the API's default
    assert record["metadata"]["rewrite_query"] is True
    assert record["metadata"]["search_query"] == ["refunds tracking"]
    assert [document["id"] for document in record["output"]] == ["file-refunds", "file-shipping"]


def test_a_failed_search_raises_as_it_would_and_is_an_error(traced: Traced, client: openai.OpenAI,
                                                            fake: FakeOpenAI) -> None:
    fake.script(error=(404, "No vector store found with id 'vs_gone'."))
    with pytest.raises(openai.NotFoundError, match="vs_gone"):
        client.vector_stores.search("vs_gone", query="refunds")
    (record,) = traced.records()
    assert record["type"] == "retriever" and record["level"] == "ERROR"
    assert "vs_gone" in record["status_message"]


def test_other_paths_ending_in_search_are_not_retrievals(traced: Traced, client: openai.OpenAI) -> None:
    answer = client.post("/files/search", body={"query": "refunds"}, cast_to=object)
    assert answer["object"] == "vector_store.search_results.page"
    assert traced.records() == []
