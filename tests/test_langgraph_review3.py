"""LangGraph review 3 (real langgraph, fake models): what a graph's cancelled tasks record, and the
session a checkpointed graph's thread makes."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any, TypedDict

import pytest
from langchain_core.callbacks import dispatch_custom_event
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import Command, interrupt

import autotrace
from tests.helpers import Traced, shape
from tests.test_langgraph_cancellation_and_tenants import _levels, _nothing_open
from tests.test_langgraph_subagents_and_interrupts import ToolCallingFake

pytestmark = pytest.mark.integrations("langchain")

CANCELLED = ("WARNING", "CancelledError")


class Draft(TypedDict):
    x: str


def test_a_node_a_step_timeout_cancels_is_a_plain_cancellation(traced: Traced) -> None:
    async def slow(state: Draft) -> dict[str, str]:
        await asyncio.sleep(5)
        return {"x": "late"}

    graph = StateGraph(Draft)
    graph.add_node("slow", slow)
    graph.add_edge(START, "slow")
    app = graph.compile()
    app.step_timeout = 0.05

    async def run() -> None:
        with pytest.raises(TimeoutError):
            await app.ainvoke({"x": ""})

    asyncio.run(run())
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "slow", [])])]
    # LangGraph cancels the node with an object of its own as the message: not "CancelledError: <object at 0x..>"
    assert _levels(records) == {"LangGraph": ("ERROR", "TimeoutError"), "slow": CANCELLED}
    _nothing_open()


class _Stalls(GenericFakeChatModel):
    """Streams one chunk, then waits until cancelled."""

    async def _astream(self, messages: Any, stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> Any:
        chunk = ChatGenerationChunk(message=AIMessageChunk(content="hel"))
        if run_manager is not None:
            await run_manager.on_llm_new_token("hel", chunk=chunk)
        yield chunk
        await asyncio.sleep(3600)


def test_a_reader_cancelled_while_a_node_streams_its_model_leaves_plain_cancellations(traced: Traced) -> None:
    model = _Stalls(messages=iter(()))

    async def talk(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("talk", talk)
    graph.add_edge(START, "talk")
    app = graph.compile(name="chat")

    async def run() -> None:
        streamed = asyncio.Event()

        async def read() -> None:  # an SSE handler whose client went away
            async for mode, _ in app.astream({"messages": [("user", "hi")]}, stream_mode=["messages", "custom"]):
                if mode == "messages":
                    streamed.set()

        task = asyncio.ensure_future(read())
        await streamed.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)  # the sweep's turn

    asyncio.run(run())
    records = traced.records()
    assert shape(records) == [("agent", "chat", [("chain", "talk", [("generation", "_Stalls", [])])])]
    assert _levels(records) == {"chat": CANCELLED, "talk": CANCELLED, "_Stalls": CANCELLED}
    _nothing_open()


@tool
def refund(order: str) -> str:
    """Refund an order once a person approves."""
    return f"refunded {order}: {interrupt(f'refund {order}?')}"


def _refund_agent() -> Any:
    from langgraph.prebuilt import create_react_agent

    model = ToolCallingFake(messages=iter([
        AIMessage(content="", tool_calls=[{"name": "refund", "args": {"order": "o1"}, "id": "c1"}]),
        AIMessage(content="done")]))
    with warnings.catch_warnings():  # deprecated for langchain's create_agent, not installed here
        warnings.simplefilter("ignore")
        return create_react_agent(model, [refund], checkpointer=InMemorySaver())


def test_the_thread_is_the_session_of_every_observation_of_both_runs(traced: Traced) -> None:
    agent = _refund_agent()
    config = {"configurable": {"thread_id": "t-7"}}
    assert agent.invoke({"messages": [("user", "refund o1")]}, config)["__interrupt__"][0].value == "refund o1?"
    assert agent.invoke(Command(resume="yes"), config)["messages"][-1].content == "done"
    records = traced.records()
    paused, resumed = {r["trace_id"] for r in records if r["type"] == "agent"}
    assert {"agent", "chain", "generation", "tool"} == {r["type"] for r in records}
    # as a session given in the metadata is: on every span, so Langfuse counts the models' cost in it
    assert {(r["trace_id"], r["session_id"]) for r in records} == {(paused, "t-7"), (resumed, "t-7")}
    _nothing_open()


def test_a_session_of_trace_attributes_wins_over_the_thread(traced: Traced) -> None:
    agent = _refund_agent()
    config = {"configurable": {"thread_id": "t-8"}}
    with autotrace.trace_attributes(session_id="chat-42"):
        agent.invoke({"messages": [("user", "refund o1")]}, config)
    with autotrace.start_span("request"), autotrace.trace_attributes(session_id="chat-43"):
        agent.invoke(Command(resume="yes"), config)
    records = traced.records()
    by_trace: dict[str, set[str]] = {}
    for record in records:
        by_trace.setdefault(record["trace_id"], set()).add(record["session_id"])
    assert sorted(by_trace.values(), key=sorted) == [{"chat-42"}, {"chat-43"}]  # one session per trace
    _nothing_open()


def test_a_custom_event_in_a_node_carries_the_thread_session(traced: Traced) -> None:
    def step(state: Draft) -> dict[str, str]:
        dispatch_custom_event("progress", {"done": 1})
        return {"x": "ok"}

    graph = StateGraph(Draft)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.compile(checkpointer=InMemorySaver()).invoke({"x": ""}, {"configurable": {"thread_id": "t-9"}})
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "step", [("event", "progress", [])])])]
    assert [r["session_id"] for r in records] == ["t-9"] * 3
    _nothing_open()
