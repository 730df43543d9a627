"""LangGraph agents on ChatOpenAI and the loopback OpenAI server: async model calls and
retrievals a cancellation leaves (a timeout, a stream or ``astream_events`` left early), which
LangChain reports no end for; and a prebuilt agent's tree, run concurrently under many tenants."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections import defaultdict
from typing import Annotated, Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import InjectedToolCallId, tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command
from opentelemetry import trace
from pydantic import BaseModel

import autotrace
from autotrace.integrations.langchain import INTEGRATION
from autotrace.testing.fake_openai import FakeOpenAI, Script
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain", "openai")

CANCELLED = ("WARNING", "CancelledError")


def _model(fake: FakeOpenAI, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="sk-test", max_retries=0, **options)


def _nothing_open() -> None:
    handler = INTEGRATION.handler
    assert handler is not None
    assert handler.runs == {} and handler.hidden == {} and handler._by_span == {}
    assert not trace.get_current_span().get_span_context().is_valid


def _levels(records: list[dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    return {r["name"]: (r["level"], r["status_message"]) for r in records}


class _Stall(AsyncCallbackHandler):
    """Holds a streaming model at its first token until the test cancels the call."""

    def __init__(self) -> None:
        self.streaming = asyncio.Event()

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.streaming.set()
        await asyncio.sleep(3600)


def test_a_graph_cancelled_while_its_model_streams_ends_the_generation_as_interrupted(
        traced: Traced, fake: FakeOpenAI) -> None:
    model = _model(fake, streaming=True)

    async def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    app = graph.compile(name="support")

    async def run() -> None:
        stall = _Stall()
        task = asyncio.ensure_future(app.ainvoke({"messages": [("user", "hi")]}, {"callbacks": [stall]}))
        await stall.streaming.wait()
        task.cancel()  # a timeout, or a reader that left the stream early
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)  # the sweep's turn

    asyncio.run(run())
    records = traced.records()
    assert shape(records) == [("agent", "support", [("chain", "answer", [("generation", "ChatOpenAI", [])])])]
    assert _levels(records) == {"support": CANCELLED, "answer": CANCELLED, "ChatOpenAI": CANCELLED}
    [generation] = [r for r in records if r["type"] == "generation"]
    assert generation["completion_start_time"] is not None  # it had streamed
    _nothing_open()


def test_a_model_call_or_retrieval_cancelled_by_a_timeout_ends_as_interrupted(traced: Traced) -> None:
    arrived, release = threading.Event(), threading.Event()

    def held(body: dict[str, Any]) -> Script:  # the server answers once the test has cancelled
        arrived.set()
        release.wait(10)
        return Script(reply="late")

    class Shelf(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
            return []

        async def _aget_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
            await asyncio.sleep(3600)
            return []

    async def cancelled(call: Any, started: Any) -> None:
        task = asyncio.ensure_future(call)
        await started()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with FakeOpenAI(held) as fake:
        async def run() -> None:
            loop = asyncio.get_running_loop()
            await cancelled(_model(fake).ainvoke("hi"), lambda: loop.run_in_executor(None, arrived.wait))
            release.set()
            await cancelled(Shelf().ainvoke("refunds"), lambda: asyncio.sleep(0.01))

        asyncio.run(run())
    records = traced.records()
    assert shape(records) == [("generation", "ChatOpenAI", []), ("retriever", "Shelf", [])]
    assert _levels(records) == {"ChatOpenAI": CANCELLED, "Shelf": CANCELLED}
    assert records[1]["input"] == "refunds"
    _nothing_open()


# -- a prebuilt agent, as a user builds one ---------------------------------------------------------
class Forecast(BaseModel):
    city: str
    sunny: bool


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@tool
def boom(city: str) -> str:
    """A tool that fails."""
    raise ValueError(f"no data for {city}")


@tool
def remember(city: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Command:
    """Remember a city (answers with a state update)."""
    return Command(update={"messages": [ToolMessage(f"noted {city}", tool_call_id=tool_call_id)]})


def _replies(body: dict[str, Any]) -> Script:
    if "response_format" in body:
        return Script(reply='{"city": "Paris", "sunny": true}')
    if body["messages"][-1]["role"] == "tool":
        return Script(reply="done " + body["messages"][0]["content"])
    return Script(tool_calls=[{"name": "weather", "arguments": '{"city": "Paris"}'},
                              {"name": "boom", "arguments": '{"city": "Oslo"}'},
                              {"name": "remember", "arguments": '{"city": "Rome"}'}])


def _agent(fake: FakeOpenAI, **options: Any) -> Any:
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():  # deprecated for langchain's create_agent, not installed here
        warnings.simplefilter("ignore")
        return create_react_agent(_model(fake), ToolNode([weather, boom, remember], handle_tool_errors=True),
                                  **options)


_MODEL_STEP = ("chain", "agent", [
    ("chain", "call_model", []),
    ("chain", "RunnableSequence", [("chain", "Prompt", []), ("generation", "ChatOpenAI", [])]),
    ("chain", "should_continue", []),
])


def test_parallel_tools_a_handled_error_a_command_and_a_structured_response(traced: Traced) -> None:
    with FakeOpenAI(_replies) as fake:
        out = _agent(fake, response_format=Forecast, name="forecaster").invoke({"messages": [("user", "u1")]})
    assert out["structured_response"] == Forecast(city="Paris", sunny=True)
    records = traced.records()
    tools = [("chain", "tools", [("tool", name, [])]) for name in ("weather", "boom", "remember")]
    structured = ("chain", "generate_structured_response", [
        ("chain", "generate_structured_response", []),
        ("chain", "RunnableSequence", [("generation", "ChatOpenAI", []), ("chain", "_check_refusal", []),
                                       ("chain", "RunnableLambda", [])]),
    ])
    assert shape(records)[0][:2] == ("agent", "forecaster")
    steps = shape(records)[0][2]
    assert steps[0] == _MODEL_STEP and steps[4:] == [_MODEL_STEP, structured]
    assert sorted(steps[1:4]) == sorted(tools)  # the three calls run in parallel
    by_tool = {r["name"]: r for r in records if r["type"] == "tool"}
    # the failing tool raised (ToolNode, not the tool, tells the model); a Command is its update
    assert {name: (r["input"], r["level"], r["status_message"]) for name, r in by_tool.items()} == {
        "weather": ({"city": "Paris"}, "DEFAULT", None), "remember": ({"city": "Rome"}, "DEFAULT", None),
        "boom": ({"city": "Oslo"}, "ERROR", "ValueError: no data for Oslo")}
    assert by_tool["weather"]["output"] == "sunny in Paris"
    assert by_tool["remember"]["output"]["update"]["messages"][0]["content"] == "noted Rome"
    generations = [r for r in records if r["type"] == "generation"]
    assert [g["model_parameters"] for g in generations[:2]] == [{"tools": ["weather", "boom", "remember"]}] * 2
    assert all(g["usage"]["total"] > 0 and g["level"] == "DEFAULT" for g in generations)
    _nothing_open()


def test_concurrent_runs_of_one_agent_under_many_tenants_stay_apart(traced: Traced) -> None:
    with FakeOpenAI(_replies) as fake:
        agent = _agent(fake)

        async def one(i: int) -> None:
            autotrace.set_tenant(f"t{i}")
            config = {"metadata": {"user_id": f"user{i}"}}
            if i % 2:
                await agent.ainvoke({"messages": [("user", f"u{i}")]}, config)
            else:
                async for _ in agent.astream_events({"messages": [("user", f"u{i}")]}, config, version="v2"):
                    pass

        async def run() -> None:
            await asyncio.gather(*(one(i) for i in range(12)))

        asyncio.run(run())
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in traced.records():
        by_trace[record["trace_id"]].append(record)
    assert len(by_trace) == 12
    for records in by_trace.values():
        tenant = records[0]["tenant"]
        i = tenant[1:]
        assert {(r["tenant"], r["user_id"]) for r in records} == {(tenant, f"user{i}")}
        assert shape(records)[0][:2] == ("agent", "LangGraph") and len(shape(records)) == 1
        assert {g["input"][0]["content"] for g in records if g["type"] == "generation"} == {f"u{i}"}
        assert [r["output"]["content"] for r in records if r["type"] == "generation"][-1] == f"done u{i}"
    _nothing_open()
