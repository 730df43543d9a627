"""LangChain review 17 (real langchain-core and langchain-openai over the loopback server): a renamed
``RunnableWithFallbacks`` (``.with_config(run_name=...)``) holds the models it tries, each under its
own name; a run whose end a user's handler raises from (``raise_error``) ends failed whatever the
handlers' order, sync or async."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.runnables import RunnableLambda
from langchain_openai import ChatOpenAI

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open
from tests.test_review16_langchain_fallbacks_and_raising_handlers import _EndRaises

pytestmark = pytest.mark.integrations("langchain", "openai")


def _models(fake: FakeOpenAI, *names: str) -> list[ChatOpenAI]:
    return [ChatOpenAI(model=name, base_url=fake.base_url, api_key="sk-test", max_retries=0) for name in names]


@pytest.mark.parametrize("awaited", [False, True])
def test_a_renamed_fallbacks_run_holds_the_models_it_tries_under_their_own_names(
        traced: Traced, fake: FakeOpenAI, awaited: bool) -> None:
    fake.script(error=(500, "boom"))
    fake.script(reply="ok", usage=(7, 2))
    primary, backup = _models(fake, "gpt-4o-mini", "gpt-4o")
    chain = RunnableLambda(lambda x: x, name="prep") | primary.with_fallbacks([backup]).with_config(run_name="answer")
    out = asyncio.run(chain.ainvoke("hi")) if awaited else chain.invoke("hi")
    assert out.content == "ok"
    records = traced.records()
    # they were the sequence's children, each named "answer" (LangChain hands them the fallbacks' config)
    assert shape(records) == [("chain", "RunnableSequence", [
        ("chain", "prep", []),
        ("chain", "answer", [("generation", "ChatOpenAI", []), ("generation", "ChatOpenAI", [])]),
    ])]
    assert [(r["model"], r["level"]) for r in records[3:]] == [("gpt-4o-mini", "ERROR"), ("gpt-4o", "DEFAULT")]
    _nothing_open()


def test_renamed_fallbacks_of_fallbacks_nest_each_model_under_the_one_that_tried_it(
        traced: Traced, fake: FakeOpenAI) -> None:
    for _ in range(2):
        fake.script(error=(500, "boom"))
    fake.script(reply="ok", usage=(7, 2))
    first, second, third = _models(fake, "gpt-4o-mini", "gpt-4o", "gpt-4.1")
    inner = first.with_fallbacks([second]).with_config(run_name="inner")
    chain = RunnableLambda(lambda x: x, name="prep") | inner.with_fallbacks([third]).with_config(run_name="outer")
    assert chain.invoke("hi").content == "ok"
    records = traced.records()
    tried = [("generation", "ChatOpenAI", []), ("generation", "ChatOpenAI", [])]
    assert shape(records) == [("chain", "RunnableSequence", [
        ("chain", "prep", []),
        # LangChain names the inner one by the outer's config, and tells a chain no name of its own
        ("chain", "outer", [("chain", "outer", tried), ("generation", "ChatOpenAI", [])]),
    ])]
    assert [(r["model"], r["level"]) for r in records if r["type"] == "generation"] == [
        ("gpt-4o-mini", "ERROR"), ("gpt-4o", "ERROR"), ("gpt-4.1", "DEFAULT")]
    _nothing_open()


class _AsyncEndRaises(AsyncCallbackHandler):
    raise_error = True

    async def on_chain_end(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("budget exceeded")

    async def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("budget exceeded")


class _AsyncCounts(AsyncCallbackHandler):
    """A well-behaved handler that may raise: told every end, raises none."""

    raise_error = True

    def __init__(self) -> None:
        self.ends = 0

    async def on_chain_end(self, *args: Any, **kwargs: Any) -> None:
        self.ends += 1


@pytest.mark.parametrize("guard", [_EndRaises, _AsyncEndRaises])
def test_a_root_run_whose_end_a_users_handler_raises_from_ends_failed_sync_or_async(
        traced: Traced, guard: type) -> None:
    step = RunnableLambda(lambda x: x + 1, name="step")
    with pytest.raises(RuntimeError, match="budget exceeded"):
        asyncio.run(step.ainvoke(1, {"callbacks": [guard()]}))
    _nothing_open()
    record = traced.one()  # async: autotrace's handler, told first, ended it as a success
    assert (record["name"], record["level"], record["status_message"], record["output"]) == (
        "step", "ERROR", "RuntimeError: budget exceeded", 2)


@pytest.mark.parametrize("awaited", [False, True])
def test_a_steps_run_whose_end_its_own_handler_raises_from_ends_failed(traced: Traced, awaited: bool) -> None:
    # a step's own handlers come after the ones it inherits: autotrace's was told its end first
    guarded = RunnableLambda(lambda x: x + 1, name="guarded").with_config(callbacks=[_EndRaises()])
    chain = RunnableLambda(lambda x: x, name="prep") | guarded
    with pytest.raises(RuntimeError, match="budget exceeded"):
        asyncio.run(chain.ainvoke(1)) if awaited else chain.invoke(1)
    _nothing_open()
    records = traced.records()
    assert shape(records) == [("chain", "RunnableSequence", [("chain", "prep", []), ("chain", "guarded", [])])]
    assert [(r["name"], r["level"], r["status_message"], r["output"]) for r in records] == [
        ("RunnableSequence", "ERROR", "RuntimeError: budget exceeded", None),
        ("prep", "DEFAULT", None, 1),
        ("guarded", "ERROR", "RuntimeError: budget exceeded", 2)]


def test_an_async_generation_whose_end_a_users_handler_raises_from_keeps_its_reply(
        traced: Traced, fake: FakeOpenAI) -> None:
    fake.script(reply="hello", usage=(7, 2))
    (model,) = _models(fake, "gpt-4o-mini")
    with pytest.raises(RuntimeError, match="budget exceeded"):
        asyncio.run(model.ainvoke("hi", {"callbacks": [_AsyncEndRaises()]}))
    _nothing_open()
    generation = traced.one()
    assert (generation["level"], generation["status_message"], generation["output"]) == (
        "ERROR", "RuntimeError: budget exceeded", {"role": "assistant", "content": "hello"})


def test_a_handler_that_may_raise_but_does_not_leaves_every_run_ended_as_it_was(traced: Traced) -> None:
    counts = _AsyncCounts()
    chain = RunnableLambda(lambda x: x, name="prep") | RunnableLambda(lambda x: x + 1, name="step")
    assert asyncio.run(chain.ainvoke(1, {"callbacks": [counts]})) == 2
    assert counts.ends == 3
    _nothing_open()
    records = traced.records()
    assert [(r["name"], r["level"], r["output"]) for r in records] == [
        ("RunnableSequence", "DEFAULT", 2), ("prep", "DEFAULT", 1), ("step", "DEFAULT", 2)]
