"""LangChain review 17 critique (real langchain-core and langchain-openai over the loopback server):
autotrace's handler is told a run's end after a user's async ``raise_error`` handler; a caller
cancelled while that handler is told (a timeout during a slow budget check) loses nothing of the
run, which had ended: a generation keeps its reply and usage, a step its output."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.runnables import RunnableLambda
from langchain_openai import ChatOpenAI

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open
from tests.test_review16_langchain_fallbacks_and_raising_handlers import USAGE_7_2

pytestmark = pytest.mark.integrations("langchain", "openai")


class _SlowBudget(AsyncCallbackHandler):
    """A budget guard that checks a remote quota when a run ends (and may stop the application)."""

    raise_error = True

    async def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.Event().wait()

    async def on_chain_end(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.Event().wait()


def test_a_generation_whose_caller_times_out_in_a_slow_handlers_end_keeps_its_reply_and_usage(
        traced: Traced, fake: FakeOpenAI) -> None:
    fake.script(reply="hello", usage=(7, 2))
    model = ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="sk-test", max_retries=0)
    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(model.ainvoke("hi", {"callbacks": [_SlowBudget()]}), 0.5))
    _nothing_open()
    generation = traced.one()  # it was ended as cancelled, with no reply nor usage
    assert (generation["level"], generation["status_message"], generation["output"], generation["usage"]) == (
        "DEFAULT", None, {"role": "assistant", "content": "hello"}, USAGE_7_2)


def test_a_step_whose_caller_times_out_in_a_slow_handlers_end_keeps_its_output(traced: Traced) -> None:
    budgeted = RunnableLambda(lambda x: x + 1, name="step").with_config(callbacks=[_SlowBudget()])
    chain = RunnableLambda(lambda x: x, name="prep") | budgeted
    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(chain.ainvoke(1), 0.2))
    _nothing_open()
    records = traced.records()
    assert shape(records) == [("chain", "RunnableSequence", [("chain", "prep", []), ("chain", "step", [])])]
    assert [(r["name"], r["level"], r["status_message"], r["output"]) for r in records] == [
        ("RunnableSequence", "WARNING", "CancelledError", None),
        ("prep", "DEFAULT", None, 1),
        ("step", "DEFAULT", None, 2)]


class _BrokenSetting(BaseCallbackHandler):
    """A handler whose ``raise_error`` is a property that fails: LangChain reads it only once the
    handler has raised, and the caller gets the property's error."""

    @property
    def raise_error(self) -> bool:  # type: ignore[override]
        raise LookupError("no such setting")

    def on_chain_end(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("budget exceeded")


@pytest.mark.parametrize("awaited", [False, True])
def test_a_step_whose_end_raises_through_a_failing_raise_error_property_ends_failed(
        traced: Traced, awaited: bool) -> None:
    guarded = RunnableLambda(lambda x: x + 1, name="guarded").with_config(callbacks=[_BrokenSetting()])
    chain = RunnableLambda(lambda x: x, name="prep") | guarded
    with pytest.raises(LookupError, match="no such setting"):
        asyncio.run(chain.ainvoke(1)) if awaited else chain.invoke(1)
    _nothing_open()
    records = traced.records()  # "guarded" was told its end first, and ended as a success
    assert [(r["name"], r["level"], r["status_message"], r["output"]) for r in records] == [
        ("RunnableSequence", "ERROR", "LookupError: no such setting", None),
        ("prep", "DEFAULT", None, 1),
        ("guarded", "ERROR", "LookupError: no such setting", 2)]
