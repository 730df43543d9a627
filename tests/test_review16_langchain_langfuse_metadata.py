"""LangChain review 16: the metadata keys Langfuse's own LangChain handler reads, as an application
moving from it sets them (real langchain-core, langchain-openai over the loopback server, and the
langfuse SDK's prompt client): ``langfuse_prompt`` on a prompt template links the prompt to the
generation after it, ``langfuse_trace_name`` names the trace."""

from __future__ import annotations

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_openai import ChatOpenAI
from langfuse.api import Prompt_Text
from langfuse.model import TextPromptClient

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain", "openai")


def _prompt(fallback: bool = False) -> TextPromptClient:
    """A Langfuse text prompt ``support`` version 3, as ``langfuse.get_prompt`` returns it."""
    return TextPromptClient(Prompt_Text(name="support", version=3, prompt="Answer {{q}}", config={},
                                        labels=["production"], tags=[], type="text"), is_fallback=fallback)


def _chain(fake: FakeOpenAI, prompt: TextPromptClient) -> object:
    """A template carrying ``prompt`` as Langfuse documents it, a model, then a second model call."""
    model = ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="sk-test", max_retries=0)
    template = ChatPromptTemplate.from_messages([("user", prompt.get_langchain_prompt())])
    return (template.with_config(metadata={"langfuse_prompt": prompt}) | model
            | RunnableLambda(lambda m: m.content, name="text") | model)


def test_a_langfuse_prompt_on_a_template_is_the_prompt_of_the_generation_after_it(
        traced: Traced, fake: FakeOpenAI) -> None:
    _chain(fake, _prompt()).invoke({"q": "hi"})  # type: ignore[attr-defined]
    records = traced.records()
    assert shape(records) == [("chain", "RunnableSequence", [
        ("chain", "ChatPromptTemplate", []), ("generation", "ChatOpenAI", []), ("chain", "text", []),
        ("generation", "ChatOpenAI", [])])]
    # the prompt client was the template's metadata (its repr, an address), no generation's prompt
    assert [(r["name"], r["prompt"], r["metadata"]) for r in records[1:3]] == [
        ("ChatPromptTemplate", None, {}),
        ("ChatOpenAI", {"name": "support", "version": 3}, {"provider": "openai", "finish_reason": "stop"})]
    assert records[4]["prompt"] is None  # the next generation only, as Langfuse's handler links it
    _nothing_open()


def test_a_langfuse_prompt_that_fell_back_links_no_prompt(traced: Traced, fake: FakeOpenAI) -> None:
    _chain(fake, _prompt(fallback=True)).invoke({"q": "hi"})  # type: ignore[attr-defined]
    assert [r["prompt"] for r in traced.records()] == [None] * 5


def test_langfuse_trace_name_in_the_metadata_names_the_trace(traced: Traced, fake: FakeOpenAI) -> None:
    model = ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="sk-test", max_retries=0)
    (RunnableLambda(lambda x: x, name="prep") | model).invoke(
        "hi", {"metadata": {"langfuse_trace_name": "support-turn", "team": "care"}})
    records = traced.records()
    assert [(r["name"], r["trace_name"]) for r in records] == [
        ("RunnableSequence", "support-turn"), ("prep", "support-turn"), ("ChatOpenAI", "support-turn")]
    assert records[0]["metadata"] == {"team": "care"}  # was kept as metadata, the trace left unnamed
