"""LangChain review 16 (real langchain-core and langchain-openai over the loopback server): the
models a ``RunnableWithFallbacks`` tries nest under it, and a user's callback handler that raises
(``raise_error``) leaves no run open nor current."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableLambda
from langchain_openai import ChatOpenAI

import autotrace
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain", "openai")

USAGE_7_2 = {"input": 7, "output": 2, "total": 9, "input_cached_tokens": 0, "output_reasoning_tokens": 0}


def _fallbacks(fake: FakeOpenAI) -> Any:
    """A step, then gpt-4o-mini falling back to gpt-4o; the first call fails, the second answers."""
    fake.script(error=(500, "boom"))
    fake.script(reply="fallback ok", usage=(7, 2))
    primary, backup = (ChatOpenAI(model=name, base_url=fake.base_url, api_key="sk-test", max_retries=0)
                       for name in ("gpt-4o-mini", "gpt-4o"))
    return RunnableLambda(lambda x: x, name="prep") | primary.with_fallbacks([backup])


@pytest.mark.parametrize("awaited", [False, True])
def test_the_models_a_fallback_tries_nest_under_it(traced: Traced, fake: FakeOpenAI, awaited: bool) -> None:
    chain = _fallbacks(fake)
    out = asyncio.run(chain.ainvoke("hi")) if awaited else chain.invoke("hi")
    assert out.content == "fallback ok"
    records = traced.records()
    # they were the sequence's children, beside the fallbacks run (LangChain tells them its parent)
    assert shape(records) == [("chain", "RunnableSequence", [
        ("chain", "prep", []),
        ("chain", "RunnableWithFallbacks", [("generation", "ChatOpenAI", []), ("generation", "ChatOpenAI", [])]),
    ])]
    failed, answered = records[3:]
    assert (failed["model"], failed["level"], failed["status_message"]) == (
        "gpt-4o-mini", "ERROR", "OpenAIAPIError: Error code: 500 - boom")
    assert (answered["model"], answered["level"], answered["usage"]) == ("gpt-4o", "DEFAULT", USAGE_7_2)
    _nothing_open()


def test_fallbacks_of_fallbacks_nest_each_model_under_the_one_that_tried_it(traced: Traced, fake: FakeOpenAI) -> None:
    fake.script(error=(500, "boom"))
    fake.script(error=(500, "boom"))
    fake.script(reply="ok", usage=(7, 2))
    first, second, third = (ChatOpenAI(model=name, base_url=fake.base_url, api_key="sk-test", max_retries=0)
                            for name in ("gpt-4o-mini", "gpt-4o", "gpt-4.1"))
    chain = RunnableLambda(lambda x: x, name="prep") | first.with_fallbacks([second]).with_fallbacks([third])
    assert chain.invoke("hi").content == "ok"
    records = traced.records()
    tried = [("generation", "ChatOpenAI", []), ("generation", "ChatOpenAI", [])]
    assert shape(records) == [("chain", "RunnableSequence", [
        ("chain", "prep", []),
        ("chain", "RunnableWithFallbacks", [("chain", "RunnableWithFallbacks", tried), ("generation", "ChatOpenAI", [])]),
    ])]
    assert [(r["model"], r["level"]) for r in records if r["type"] == "generation"] == [
        ("gpt-4o-mini", "ERROR"), ("gpt-4o", "ERROR"), ("gpt-4.1", "DEFAULT")]
    _nothing_open()


class _EndRaises(BaseCallbackHandler):
    """A budget guard: stops the application when a run ends."""

    raise_error = True

    def on_chain_end(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("budget exceeded")

    def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("budget exceeded")


class _StartRaises(BaseCallbackHandler):
    raise_error = True

    def on_chain_start(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("not allowed")


def test_a_run_whose_end_a_users_handler_raises_from_ends_failed_and_is_not_left_current(traced: Traced) -> None:
    with pytest.raises(RuntimeError, match="budget exceeded"):
        RunnableLambda(lambda x: x + 1, name="step").invoke(1, {"callbacks": [_EndRaises()]})
    _nothing_open()  # it stayed current: the application's next traces nested under a span never sent
    with autotrace.start_span("next-request"):
        pass
    step, after = traced.records()
    assert (step["name"], step["level"], step["status_message"], step["output"]) == (
        "step", "ERROR", "RuntimeError: budget exceeded", 2)
    assert after["parent_id"] is None and after["trace_id"] != step["trace_id"]


def test_a_generation_whose_end_a_users_handler_raises_from_keeps_its_reply_and_usage(
        traced: Traced, fake: FakeOpenAI) -> None:
    fake.script(reply="hello", usage=(7, 2))
    model = ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="sk-test", max_retries=0)
    with pytest.raises(RuntimeError, match="budget exceeded"):
        model.invoke("hi", {"callbacks": [_EndRaises()]})
    _nothing_open()
    generation = traced.one()
    assert (generation["type"], generation["level"], generation["status_message"]) == (
        "generation", "ERROR", "RuntimeError: budget exceeded")
    assert (generation["output"], generation["usage"]) == ({"role": "assistant", "content": "hello"}, USAGE_7_2)


def test_a_run_whose_start_a_users_handler_raises_from_after_ours_ends_failed(traced: Traced) -> None:
    # a step's own callbacks come after the ones it inherits: autotrace's handler started its run first
    guarded = RunnableLambda(lambda x: x + 1, name="guarded").with_config(callbacks=[_StartRaises()])
    with pytest.raises(RuntimeError, match="not allowed"):
        (RunnableLambda(lambda x: x, name="prep") | guarded).invoke(1)
    _nothing_open()  # it was left open, never sent
    records = traced.records()
    assert shape(records) == [("chain", "RunnableSequence", [("chain", "prep", []), ("chain", "guarded", [])])]
    assert [(r["level"], r["status_message"]) for r in records] == [
        ("ERROR", "RuntimeError: not allowed"), ("DEFAULT", None), ("ERROR", "RuntimeError: not allowed")]
