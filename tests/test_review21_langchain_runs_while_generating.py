"""LangChain review 21 (real langchain-core, langchain-openai over the loopback server): a chat
model's run is current while it generates, and a root retriever's while it retrieves.

- ``generate`` of many prompts starts every prompt's run before it generates any, in one context
  where the last one started is current: each prompt's OpenAI request was owned by the last run
  (the first prompt's run had no cost, the last one the sum of all).
- A root run started inside a root chat model or retriever with no callbacks (a model that wraps
  another, a retriever that rewrites its query with a model) was taken for a batch sibling and
  recorded as a trace of its own, where inside a chain step it nests.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.retrievers import BaseRetriever
from langchain_openai import ChatOpenAI

from autotrace.integrations.openai import pricing
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain", "openai")

_INNER = FakeListChatModel(responses=["inner"] * 100)


class _Wrapper(BaseChatModel):
    """A model that answers with another model, called without callbacks."""

    @property
    def _llm_type(self) -> str:
        return "wrapper"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return _wrapped(_INNER.invoke(messages).content)

    async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return _wrapped((await _INNER.ainvoke(messages)).content)


def _wrapped(content: Any) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=AIMessage(content=f"wrapped {content}"))])


class _Rewriting(BaseRetriever):
    """A retriever that rewrites its query with a model, called without callbacks."""

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return [Document(page_content=str(_INNER.invoke(f"rewrite {query}").content))]

    async def _aget_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return [Document(page_content=str((await _INNER.ainvoke(f"rewrite {query}")).content))]


@pytest.mark.parametrize("awaited", [False, True])
def test_each_prompt_of_a_generate_owns_its_own_request(traced: Traced, fake: FakeOpenAI, awaited: bool) -> None:
    model = ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="sk-test", max_retries=0)
    prompts = [[HumanMessage("one")], [HumanMessage("two two")], [HumanMessage("three three three")]]
    result = asyncio.run(model.agenerate(prompts)) if awaited else model.generate(prompts)
    assert [g[0].text for g in result.generations] == ["echo: one", "echo: two two", "echo: three three three"]
    records = sorted(traced.records(), key=lambda r: len(r["input"][0]["content"]))
    assert shape(records) == [("generation", "ChatOpenAI", [])] * 3
    assert [r["usage"]["input"] for r in records] == [7, 8, 9]
    # was: None for "one" and "two two" (sync), the sum of all three requests' costs for the last
    assert [r["cost"] for r in records] == [pricing.cost("gpt-4o-mini", r["usage"]) for r in records]
    assert all(r["cost"]["total"] > 0 for r in records)
    _nothing_open()


def test_a_generate_of_many_prompts_still_records_one_trace_each(traced: Traced) -> None:
    FakeListChatModel(responses=["a", "b", "c"]).generate([[HumanMessage("x")], [HumanMessage("y")], [HumanMessage("z")]])
    records = traced.records()
    assert shape(records) == [("generation", "FakeListChatModel", [])] * 3
    assert len({r["trace_id"] for r in records}) == 3
    _nothing_open()


@pytest.mark.parametrize("awaited", [False, True])
def test_a_model_wrapping_another_nests_it(traced: Traced, awaited: bool) -> None:
    model = _Wrapper()
    reply = asyncio.run(model.ainvoke("hi")) if awaited else model.invoke("hi")
    assert reply.content == "wrapped inner"
    records = traced.records()
    # was: two traces, [("generation", "_Wrapper", []), ("generation", "FakeListChatModel", [])]
    assert shape(records) == [("generation", "_Wrapper", [("generation", "FakeListChatModel", [])])]
    assert len({r["trace_id"] for r in records}) == 1
    _nothing_open()


@pytest.mark.parametrize("awaited", [False, True])
def test_a_retriever_rewriting_its_query_with_a_model_nests_it(traced: Traced, awaited: bool) -> None:
    retriever = _Rewriting()
    docs = asyncio.run(retriever.ainvoke("q")) if awaited else retriever.invoke("q")
    assert [d.page_content for d in docs] == ["inner"]
    records = traced.records()
    assert shape(records) == [("retriever", "_Rewriting", [("generation", "FakeListChatModel", [])])]
    assert records[1]["input"] == [{"role": "user", "content": "rewrite q"}]
    _nothing_open()
