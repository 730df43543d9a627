"""Review 21, critique of a chat model's run made current while it generates (real langchain-core): batches
with max_concurrency, a chain's batch, fallbacks and streams leave nothing current or open, each input its own
trace; uninstalling restores both wrapped methods, also after a second install."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from opentelemetry import trace

import autotrace
from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open
from tests.test_review21_langchain_runs_while_generating import _Wrapper

pytestmark = pytest.mark.integrations("langchain")


class _Boom(FakeListChatModel):
    def _call(self, *a: Any, **k: Any) -> str:
        raise ValueError("boom")


@pytest.mark.parametrize("awaited", [False, True])
def test_batch_wrappers(traced: Traced, awaited: bool) -> None:
    model = _Wrapper()
    cfg = {"max_concurrency": 2}
    out = asyncio.run(model.abatch(["a", "b", "c"], config=cfg)) if awaited else model.batch(["a", "b", "c"], config=cfg)
    assert [o.content for o in out] == ["wrapped inner"] * 3
    records = traced.records()
    assert shape(records) == [("generation", "_Wrapper", [("generation", "FakeListChatModel", [])])] * 3
    assert len({r["trace_id"] for r in records}) == 3
    _nothing_open()


@pytest.mark.parametrize("awaited", [False, True])
def test_chain_batch(traced: Traced, awaited: bool) -> None:
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | _Wrapper()
    inputs = [{"q": "a"}, {"q": "b"}, {"q": "c"}]
    cfg = {"max_concurrency": 2}
    out = asyncio.run(chain.abatch(inputs, config=cfg)) if awaited else chain.batch(inputs, config=cfg)
    assert len(out) == 3
    records = traced.records()
    step = ("chain", "RunnableSequence", [("chain", "ChatPromptTemplate", []),
                                          ("generation", "_Wrapper", [("generation", "FakeListChatModel", [])])])
    assert shape(records) == [step] * 3
    assert len({r["trace_id"] for r in records}) == 3
    _nothing_open()


@pytest.mark.parametrize("awaited", [False, True])
def test_fallbacks(traced: Traced, awaited: bool) -> None:
    model = _Boom(responses=["x"]).with_fallbacks([_Wrapper()])
    out = asyncio.run(model.ainvoke("hi")) if awaited else model.invoke("hi")
    assert out.content == "wrapped inner"
    records = traced.records()
    # the inner model's parent run, as LangChain gives it, is the fallbacks' (no callbacks pass through the model)
    assert shape(records) == [("chain", "RunnableWithFallbacks", [
        ("generation", "_Boom", []), ("generation", "_Wrapper", []), ("generation", "FakeListChatModel", [])])]
    assert len({r["trace_id"] for r in records}) == 1
    _nothing_open()


@pytest.mark.parametrize("awaited", [False, True])
def test_stream(traced: Traced, awaited: bool) -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage(content="hello world")]))
    async def a() -> list[Any]:
        return [c async for c in model.astream("hi")]
    chunks = asyncio.run(a()) if awaited else list(model.stream("hi"))
    assert "".join(c.content for c in chunks) == "hello world"
    assert not trace.get_current_span().get_span_context().is_valid
    _nothing_open()


def test_agent_calls_model_in_tool(traced: Traced) -> None:
    inner = _Wrapper()
    def tool(x: str) -> str:
        return str(inner.invoke(x).content)
    chain = RunnableLambda(tool) | RunnableLambda(lambda s: _Wrapper().invoke(s).content)
    assert chain.invoke("q") == "wrapped inner"
    records = traced.records()
    assert len({r["trace_id"] for r in records}) == 1
    _nothing_open()


def test_uninstall_restores() -> None:
    before = (BaseChatModel._generate_with_cache, BaseChatModel._agenerate_with_cache)
    autotrace.install(integrations=("langchain",), langfuse_host="http://127.0.0.1:9")
    assert BaseChatModel._generate_with_cache is not before[0]
    autotrace.uninstall()
    assert (BaseChatModel._generate_with_cache, BaseChatModel._agenerate_with_cache) == before
    autotrace.install(integrations=("langchain",), langfuse_host="http://127.0.0.1:9")
    autotrace.uninstall()
    assert (BaseChatModel._generate_with_cache, BaseChatModel._agenerate_with_cache) == before
