"""LangChain auto-instrumentation with real langchain-core pipelines and fake models it ships."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForLLMRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_core.tools import tool
from opentelemetry import trace

import autotrace
from autotrace.integrations.langchain import INTEGRATION
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain", "openai")

PROMPT = ChatPromptTemplate.from_messages([("system", "be brief"), ("user", "{question}")])
SEQ = "RunnableSequence"


def _chain(*responses: str) -> Any:
    return PROMPT | FakeListChatModel(responses=list(responses)) | StrOutputParser()


def _basic_tree() -> list[Any]:
    return [("chain", SEQ, [("chain", "ChatPromptTemplate", []), ("generation", "FakeListChatModel", []),
                            ("chain", "StrOutputParser", [])])]


def test_invoke_records_the_typed_tree_and_fields(traced: Traced) -> None:
    config = {"metadata": {"user_id": "u-1", "session_id": "s-1", "prompt_name": "support", "prompt_version": 4,
                           "team": "billing"}}
    assert _chain("It ships today.").invoke({"question": "where?"}, config=config) == "It ships today."
    records = traced.records()
    assert shape(records) == _basic_tree()
    by_name = {r["name"]: r for r in records}
    gen = by_name["FakeListChatModel"]
    assert gen["input"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "where?"}]
    assert gen["output"] == {"role": "assistant", "content": "It ships today."}
    assert gen["prompt"] == {"name": "support", "version": 4}
    assert gen["metadata"]["team"] == "billing"
    assert {(r["user_id"], r["session_id"]) for r in records} == {("u-1", "s-1")}
    assert by_name[SEQ]["input"] == {"question": "where?"} and by_name[SEQ]["output"] == "It ships today."
    assert INTEGRATION.handler is not None and INTEGRATION.handler.runs == {}
    assert INTEGRATION.handler._by_span == {}


def test_langfuse_tags_in_the_metadata_are_the_traces_tags_not_metadata(traced: Traced) -> None:
    """As Langfuse's own LangChain handler reads them: a list of tags, or one string as one tag."""
    _chain("a").invoke({"question": "q"}, config={"metadata": {"langfuse_tags": ["beta", 7]}})
    _chain("b").invoke({"question": "q"}, config={"metadata": {"langfuse_tags": "vip", "langfuse_user_id": "u-2"}})
    first, second = traced.records()[:4], traced.records()[4:]
    assert {tuple(r["tags"]) for r in first} == {("beta", "7")} and {tuple(r["tags"]) for r in second} == {("vip",)}
    assert {r["user_id"] for r in second} == {"u-2"}
    assert all("langfuse_tags" not in (r["metadata"] or {}) for r in first + second)


def test_ainvoke_and_stream_with_first_token(traced: Traced) -> None:
    assert asyncio.run(_chain("async answer").ainvoke({"question": "a"})) == "async answer"
    streamed = "".join(_chain("streamed words here").stream({"question": "s"}))
    assert streamed == "streamed words here"
    records = traced.records()
    assert shape(records) == _basic_tree() * 2
    stream_gen = [r for r in records if r["name"] == "FakeListChatModel"][1]
    assert stream_gen["completion_start_time"] is not None
    assert stream_gen["output"]["content"] == "streamed words here"
    streamed_root = [r for r in records if r["name"] == SEQ][1]  # its input is known only at its end
    assert streamed_root["input"] == {"question": "s"} and streamed_root["output"] == "streamed words here"


def test_batch_on_a_thread_pool_gives_each_input_its_own_tree(traced: Traced) -> None:
    chain = _chain("r1", "r2", "r3", "r4")
    results = chain.batch([{"question": f"q{i}"} for i in range(4)], config={"max_concurrency": 4})
    assert sorted(results) == ["r1", "r2", "r3", "r4"]
    records = traced.records()
    assert sorted(shape(records)) == sorted(_basic_tree() * 4)
    assert len({r["trace_id"] for r in records}) == 4
    assert not trace.get_current_span().get_span_context().is_valid  # nothing left attached
    with autotrace.start_span("after") as after:
        pass
    assert after.trace_id not in {r["trace_id"] for r in records}


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


def _model() -> FakeListChatModel:
    return FakeListChatModel(responses=["alpha beta"])


_GEN = ("generation", "FakeListChatModel", [])
_ASYNC_CALLS: dict[str, tuple[Callable[[], Awaitable[Any]], list[Any]]] = {
    "chain.ainvoke": (lambda: _chain("a").ainvoke({"question": "q"}), _basic_tree()),
    "chain.astream": (lambda: _drain(_chain("a b").astream({"question": "q"})), _basic_tree()),
    "model.ainvoke": (lambda: _model().ainvoke("hi"), [_GEN]),
    "model.astream": (lambda: _drain(_model().astream("hi")), [_GEN]),
    "chain.abatch": (lambda: _chain("a", "b").abatch([{"question": "1"}, {"question": "2"}]), _basic_tree() * 2),
    "RunnableParallel.ainvoke": (lambda: RunnableParallel(x=_chain("a"), y=_chain("b")).ainvoke({"question": "q"}),
                                 [("chain", "RunnableParallel<x,y>", _basic_tree() * 2)]),
    "lambda|lambda astream": (lambda: _drain((RunnableLambda(lambda x: x) | RunnableLambda(lambda x: x)).astream(1)),
                              [("chain", SEQ, [("chain", "RunnableLambda", []), ("chain", "RunnableLambda", [])])]),
}


@pytest.mark.parametrize("call", list(_ASYNC_CALLS))
def test_async_calls_leave_no_span_current(traced: Traced, call: str, caplog: pytest.LogCaptureFixture) -> None:
    """LangChain ends async runs in a copy of the caller's context: the caller's own context must
    still be free of the finished run, so its next request is a trace of its own."""
    run, tree = _ASYNC_CALLS[call]

    async def caller() -> None:
        await run()
        assert not trace.get_current_span().get_span_context().is_valid
        with autotrace.start_span("next_request"):
            pass

    with caplog.at_level(logging.WARNING, logger="opentelemetry.context"):
        asyncio.run(caller())
    assert shape(traced.records()) == [*tree, ("span", "next_request", [])]
    # no "Failed to detach context" (records of other loggers may come from objects of earlier tests
    # the collector frees meanwhile, such as an SDK client closing itself on this event loop)
    assert [r.getMessage() for r in caplog.records if r.name.startswith(("opentelemetry", "autotrace"))] == []
    assert INTEGRATION.handler.runs == {}


class RewritingRetriever(BaseRetriever):
    """Runs a chain of its own first (as multi-query retrievers do), then searches in its own context."""

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        raise NotImplementedError

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun) -> list[Document]:
        rewrite = RunnableLambda(lambda q: q.upper()).with_config(run_name="rewrite")
        rewritten = await rewrite.ainvoke(query, config={"callbacks": run_manager.get_child()})
        with autotrace.start_span("search"):
            return [Document(page_content=rewritten)]


def test_async_run_keeps_its_span_after_a_child_ends_and_releases_it_when_it_ends(traced: Traced) -> None:
    async def caller() -> None:
        assert (await RewritingRetriever().ainvoke("q"))[0].page_content == "Q"
        with autotrace.start_span("next_request"):
            pass

    asyncio.run(caller())
    assert shape(traced.records()) == [
        ("retriever", "RewritingRetriever", [("chain", "rewrite", []), ("span", "search", [])]),
        ("span", "next_request", []),
    ]


class ScoredRetriever(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [Document(page_content="Orders ship in 24h.", id="kb-1", metadata={"score": 0.91, "src": "faq"}),
                Document(page_content="Refunds take 5 days.", id="kb-2", metadata={"score": 0.42})]


def test_retriever_inside_a_chain(traced: Traced) -> None:
    chain = {"context": ScoredRetriever(), "question": RunnableLambda(lambda q: q)} | RunnableLambda(
        lambda d: f"{len(d['context'])} docs")
    assert chain.invoke("shipping?") == "2 docs"
    records = traced.records()
    retriever = next(r for r in records if r["type"] == "retriever")
    assert retriever["name"] == "ScoredRetriever" and retriever["input"] == "shipping?"
    assert retriever["doc_count"] == 2 and retriever["metadata"]["scores"] == [0.91, 0.42]
    assert retriever["output"][0] == {"id": "kb-1", "content": "Orders ship in 24h.", "score": 0.91,
                                      "metadata": {"src": "faq"}}
    parent = next(r for r in records if r["id"] == retriever["parent_id"])
    assert parent["type"] == "chain"


@tool
def refund(order_id: str) -> str:
    """Refund an order."""
    return f"refunded {order_id}"


def test_tool_calls(traced: Traced) -> None:
    assert refund.invoke({"order_id": "o-7"}) == "refunded o-7"
    (record,) = traced.records()
    assert (record["type"], record["name"]) == ("tool", "refund")
    assert record["input"] == {"order_id": "o-7"} and record["output"] == "refunded o-7"
    assert record["metadata"]["tool_name"] == "refund"


def test_agent_runs_and_surrounding_context(traced: Traced) -> None:
    agent = RunnableLambda(lambda x: refund.invoke({"order_id": x})).with_config(run_name="support_agent")
    with autotrace.start_chain("request") as outer:
        agent.invoke("o-9")
    assert shape(traced.trace(outer.trace_id)) == [
        ("chain", "request", [("agent", "support_agent", [("tool", "refund", [])])])
    ]


def test_errors_mark_runs_and_propagate_unchanged(traced: Traced) -> None:
    error = ValueError("bad step")

    def explode(_: Any) -> Any:
        raise error

    chain = RunnableLambda(lambda x: x) | RunnableLambda(explode)
    with pytest.raises(ValueError) as raised:
        chain.invoke(1)
    assert raised.value is error
    levels = {r["name"]: r["level"] for r in traced.records()}
    assert levels[SEQ] == "ERROR" and levels["explode"] == "ERROR"
    assert INTEGRATION.handler.runs == {}


class OpenAIChat(BaseChatModel):
    """A minimal chat model calling a real OpenAI client (langchain-openai is not installed here)."""

    client: Any
    aclient: Any = None

    @property
    def _llm_type(self) -> str:
        return "openai-test"

    def _generate(self, messages: list[BaseMessage], stop: Any = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        response = self.client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": str(messages[-1].content)}])
        usage = response.usage
        message = AIMessage(content=response.choices[0].message.content, usage_metadata={
            "input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens})
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                         **kwargs: Any) -> ChatResult:
        response = await self.aclient.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": str(messages[-1].content)}])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=response.choices[0].message.content))])

    def _stream(self, messages: list[BaseMessage], stop: Any = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Any:
        stream = self.client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": str(messages[-1].content)}], stream=True)
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield ChatGenerationChunk(message=AIMessageChunk(content=chunk.choices[0].delta.content))


def test_langchain_calling_openai_records_one_generation(traced: Traced, fake: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    chain = PROMPT | OpenAIChat(client=client) | StrOutputParser()
    assert chain.invoke({"question": "ping"}) == "echo: ping"
    records = traced.records()
    assert shape(records) == [("chain", SEQ, [("chain", "ChatPromptTemplate", []), ("generation", "OpenAIChat", []),
                                              ("chain", "StrOutputParser", [])])]
    gen = next(r for r in records if r["type"] == "generation")
    assert gen["usage"]["total"] > 0
    assert gen["model"] == "gpt-4o-mini"  # filled in by the OpenAI integration from the response
    assert len(fake.requests) == 1


@pytest.mark.parametrize("streamed", ["chain", "model"])
def test_stream_consumer_code_runs_in_its_own_context(traced: Traced, fake: FakeOpenAI, streamed: str) -> None:
    """Between chunks the consumer's own context is current: its OpenAI call is a generation of its
    own, and the streamed model's call to OpenAI is still recorded once, by the model's generation."""
    client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    model = OpenAIChat(client=client)
    runnable = PROMPT | model | StrOutputParser() if streamed == "chain" else model
    seen = []
    for i, _ in enumerate(runnable.stream({"question": "ping"} if streamed == "chain" else "ping")):
        seen.append(trace.get_current_span().get_span_context().is_valid)
        if i == 0:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "mine"}])
    assert seen and not any(seen)
    assert len(fake.requests) == 2
    generation = ("generation", "OpenAIChat", [])
    mine = ("generation", "openai.chat", [])
    if streamed == "chain":
        assert shape(traced.records()) == [
            ("chain", SEQ, [("chain", "ChatPromptTemplate", []), generation, ("chain", "StrOutputParser", [])]), mine]
    else:
        assert shape(traced.records()) == [generation, mine]


def test_spans_made_while_holding_a_stream_are_not_inside_it(traced: Traced) -> None:
    stream = _chain("ab").stream({"question": "q"})
    assert next(stream) == "a"  # the model streams a character a chunk
    with autotrace.start_span("consumer_work"):
        pass
    assert list(stream) == ["b"]
    assert shape(traced.records()) == [*_basic_tree(), ("span", "consumer_work", [])]


def test_langchain_calling_openai_async_records_one_generation(traced: Traced, fake: FakeOpenAI) -> None:
    aclient = openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    chain = PROMPT | OpenAIChat(client=None, aclient=aclient) | StrOutputParser()
    assert asyncio.run(chain.ainvoke({"question": "ping"})) == "echo: ping"
    assert shape(traced.records()) == [("chain", SEQ, [("chain", "ChatPromptTemplate", []),
                                                       ("generation", "OpenAIChat", []),
                                                       ("chain", "StrOutputParser", [])])]
    assert len(fake.requests) == 1


def test_uninstall_removes_the_handler(traced: Traced) -> None:
    from langchain_core.tracers import context as tracer_context

    hooks_before = len(tracer_context._configure_hooks)
    autotrace.uninstall()
    assert len(tracer_context._configure_hooks) == hooks_before - 1
    autotrace.install(local_store="on", local_store_path=traced.path.with_name("u.db"), integrations=(),
                      export_interval=0.05)
    _chain("x").invoke({"question": "q"})
    assert autotrace.flush(5) and autotrace.local_store().observations() == []
