"""LangChain runs that LangChain starts with no parent run inside a running root run (a chain
invoked with callbacks of its own, a model called from a plain thread pool) nest under it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

import autotrace
from tests.helpers import Traced, shape, unordered

pytestmark = pytest.mark.integrations("langchain", "threads")


class _OwnHandler(BaseCallbackHandler):
    """A handler of the application's, given to one call (which then has no LangChain parent)."""


_INNER = RunnableLambda(lambda x: x + 1, name="inner")


def test_a_chain_invoked_with_its_own_callbacks_inside_a_root_run_nests_under_it(traced: Traced) -> None:
    outer = RunnableLambda(lambda x: _INNER.invoke(x, config={"callbacks": [_OwnHandler()]}), name="outer")

    @tool
    def lookup(q: str) -> str:
        """Look something up."""
        return str(_INNER.invoke(len(q), config={"callbacks": [_OwnHandler()]}))

    assert outer.invoke(1) == 2
    with autotrace.start_span("request"):
        assert lookup.invoke("abc") == "4"
    assert shape(traced.records()) == [("chain", "outer", [("chain", "inner", [])]),
                                       ("span", "request", [("tool", "lookup", [("chain", "inner", [])])])]


def test_models_called_from_a_thread_pool_inside_a_root_lambda_nest_under_it(traced: Traced) -> None:
    model = FakeListChatModel(responses=["a", "b"])

    def fan_out(questions: list[str]) -> list[Any]:
        with ThreadPoolExecutor(2) as pool:  # LangChain's config does not reach these threads
            return [m.content for m in pool.map(model.invoke, questions)]

    assert sorted(RunnableLambda(fan_out, name="fan_out").invoke(["q1", "q2"])) == ["a", "b"]
    records = traced.records()
    assert unordered(shape(records)) == [("chain", "fan_out", [("generation", "FakeListChatModel", []),
                                                               ("generation", "FakeListChatModel", [])])]
    assert len({r["trace_id"] for r in records}) == 1
