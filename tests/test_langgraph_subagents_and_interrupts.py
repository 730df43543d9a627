"""LangGraph through the LangChain integration: a graph known as one from its start, a
caller's ``langgraph_*`` keys outside a graph, unnamed sub-agents, and a check of streaming,
retries, handoffs and interrupts (real langgraph, fake models)."""

from __future__ import annotations

import asyncio
import operator
import warnings
from typing import Annotated, Any, Literal, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import InvalidUpdateError
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, RetryPolicy, Send, interrupt
from opentelemetry import trace

from autotrace.integrations.langchain import INTEGRATION
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain")


class Draft(TypedDict):
    x: str


def _nothing_open() -> None:
    handler = INTEGRATION.handler
    assert handler is not None
    assert handler.runs == {} and handler.hidden == {} and handler._by_span == {}
    assert not trace.get_current_span().get_span_context().is_valid


def _one_node(**compile_options: Any) -> Any:
    graph = StateGraph(Draft)
    graph.add_node("a", lambda s: {"x": s["x"] + "."})
    graph.add_edge(START, "a")
    return graph.compile(**compile_options)


def test_a_graph_ended_before_its_first_node_is_still_the_agent_of_its_thread(traced: Traced) -> None:
    with pytest.raises(InvalidUpdateError):  # the input schema rejects it: no node runs
        _one_node().invoke(5)  # type: ignore[arg-type]
    app = _one_node(checkpointer=InMemorySaver(), interrupt_before=["a"])
    config = {"configurable": {"thread_id": "t-b"}}
    assert app.invoke({"x": "q"}, config) == {"x": "q"}  # paused before its first node
    assert app.invoke(None, config) == {"x": "q."}
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", []), ("agent", "LangGraph", []),
                              ("agent", "LangGraph", [("chain", "a", [])])]
    rejected, paused, resumed = (r for r in records if r["name"] == "LangGraph")
    assert rejected["level"] == "ERROR" and rejected["status_message"].startswith("InvalidUpdateError: ")
    assert (paused["level"], paused["session_id"], resumed["session_id"]) == ("DEFAULT", "t-b", "t-b")
    _nothing_open()


def test_langgraph_keys_a_caller_puts_on_a_run_outside_any_graph_are_kept(traced: Traced) -> None:
    mine = {"langgraph_node": "mine", "langgraph_step": 3, "checkpoint_ns": "ns", "langgraph_path": "p"}
    assert RunnableLambda(lambda v: v).invoke(1, {"metadata": mine}) == 1
    _one_node().invoke({"x": ""}, {"metadata": {"checkpoint_ns": "ns"}})  # in a graph: LangGraph's key
    records = traced.records()
    assert shape(records) == [("chain", "RunnableLambda", []), ("agent", "LangGraph", [("chain", "a", [])])]
    assert records[0]["metadata"] == mine
    assert not records[1]["metadata"]
    assert records[2]["metadata"] == {"langgraph_node": "a", "langgraph_step": 1}
    _nothing_open()


class ToolCallingFake(GenericFakeChatModel):
    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


@tool
def lookup(order: str) -> str:
    """Look up an order."""
    return f"order {order} shipped"


def _react(name: str | None = None) -> Any:
    from langgraph.prebuilt import create_react_agent

    model = ToolCallingFake(messages=iter([
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"order": "o1"}, "id": "c1"}]),
        AIMessage(content="done")]))
    with warnings.catch_warnings():  # deprecated for langchain's create_agent, not installed here
        warnings.simplefilter("ignore")
        return create_react_agent(model, [lookup], **({"name": name} if name else {}))


def test_sub_agents_named_unnamed_and_hand_built_under_a_supervisor(traced: Traced) -> None:
    inner = StateGraph(MessagesState)
    inner.add_node("polish", lambda s: {"messages": [AIMessage(content="polished")]})
    inner.add_edge(START, "polish")
    supervisor = StateGraph(MessagesState)
    supervisor.add_node("billing", _react("billing_agent"))
    supervisor.add_node("shipping", _react())
    supervisor.add_node("editor", inner.compile())
    supervisor.add_edge(START, "billing")
    supervisor.add_edge("billing", "shipping")
    supervisor.add_edge("shipping", "editor")
    out = supervisor.compile(name="supervisor").invoke({"messages": [("user", "o1?")]})
    assert out["messages"][-1].content == "polished"
    model_step = ("chain", "agent", [
        ("chain", "call_model", []),
        ("chain", "RunnableSequence", [("chain", "Prompt", []), ("generation", "ToolCallingFake", [])]),
        ("chain", "should_continue", []),
    ])
    react_steps = [model_step, ("chain", "tools", [("tool", "lookup", [])]), model_step]
    assert shape(traced.records()) == [("agent", "supervisor", [
        ("chain", "billing", [("agent", "billing_agent", react_steps)]),  # named: an agent, by its name
        ("chain", "shipping", [("chain", "shipping", react_steps)]),  # unnamed: after its node
        ("chain", "editor", [("chain", "editor", [("chain", "polish", [])])]),
    ])]
    _nothing_open()


def test_a_retried_node_is_one_run_per_attempt(traced: Traced) -> None:
    attempts = {"n": 0}

    def flaky(state: Draft) -> dict[str, str]:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError(f"attempt {attempts['n']}")
        return {"x": "ok"}

    graph = StateGraph(Draft)
    graph.add_node("flaky", flaky, retry_policy=RetryPolicy(max_attempts=3, initial_interval=0.001, jitter=False,
                                                            retry_on=ConnectionError))
    graph.add_edge(START, "flaky")
    assert graph.compile().invoke({"x": ""}) == {"x": "ok"}
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "flaky", [])] * 3)]
    assert [(r["level"], r["status_message"]) for r in records] == [
        ("DEFAULT", None), ("ERROR", "ConnectionError: attempt 1"), ("ERROR", "ConnectionError: attempt 2"),
        ("DEFAULT", None)]
    _nothing_open()


def test_command_goto_and_a_handoff_to_the_parent_graph(traced: Traced) -> None:
    def triage(state: Draft) -> Command[Literal["billing"]]:
        return Command(goto="billing", update={"x": state["x"] + ">triage"})

    def handoff(state: Draft) -> Command[Any]:
        return Command(goto="shipping", graph=Command.PARENT, update={"x": state["x"] + ">handoff"})

    sub = StateGraph(Draft)
    sub.add_node("triage", triage)
    sub.add_node("billing", handoff)
    sub.add_edge(START, "triage")
    parent = StateGraph(Draft)
    parent.add_node("desk", sub.compile())
    parent.add_node("shipping", lambda s: {"x": s["x"] + ">shipping"})
    parent.add_edge(START, "desk")
    assert parent.compile().invoke({"x": "q"}) == {"x": "q>triage>handoff>shipping"}
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [
        ("chain", "desk", [("chain", "desk", [("chain", "triage", []), ("chain", "billing", [])])]),
        ("chain", "shipping", []),
    ])]
    levels = [(r["name"], r["level"], r["status_message"]) for r in records]
    assert levels == [("LangGraph", "DEFAULT", None), ("desk", "DEFAULT", "ParentCommand"),
                      ("desk", "DEFAULT", "ParentCommand"), ("triage", "DEFAULT", None),
                      ("billing", "DEFAULT", "ParentCommand"), ("shipping", "DEFAULT", None)]
    _nothing_open()


def _chat_graph() -> Any:
    llm = GenericFakeChatModel(messages=iter([AIMessage(content="hello there")]))
    graph = StateGraph(MessagesState)
    graph.add_node("talk", lambda s: {"messages": [llm.invoke(s["messages"])]})
    graph.add_edge(START, "talk")
    return graph.compile()


def test_streamed_messages_subgraphs_and_events_record_one_tree_each(traced: Traced) -> None:
    chunks = list(_chat_graph().stream({"messages": [("user", "hi")]}, stream_mode=["updates", "messages"]))
    assert [mode for mode, _ in chunks] == ["messages"] * 3 + ["updates"]
    outer = StateGraph(MessagesState)
    outer.add_node("inner", _chat_graph())
    outer.add_edge(START, "inner")
    nested = list(outer.compile().stream({"messages": [("user", "hi")]}, subgraphs=True,
                                         stream_mode=["updates", "messages"]))
    assert {namespace[0].split(":")[0] for namespace, _, _ in nested if namespace} == {"inner"}

    async def events() -> list[str]:
        stream = _chat_graph().astream_events({"messages": [("user", "hi")]}, version="v2")
        return [event["event"] async for event in stream]

    assert asyncio.run(events()).count("on_chat_model_stream") == 3
    talk = ("chain", "talk", [("generation", "GenericFakeChatModel", [])])
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [talk]),
                              ("agent", "LangGraph", [("chain", "inner", [("chain", "inner", [talk])])]),
                              ("agent", "LangGraph", [talk])]
    generations = [r for r in records if r["type"] == "generation"]
    assert [g["output"] for g in generations] == [{"role": "assistant", "content": "hello there"}] * 3
    assert all(r["level"] == "DEFAULT" for r in records)
    _nothing_open()


def test_an_interrupt_in_a_subgraph_then_its_resume(traced: Traced) -> None:
    def ask(state: Draft) -> dict[str, str]:
        return {"x": interrupt("ok?")}

    sub = StateGraph(Draft)
    sub.add_node("ask", ask)
    sub.add_edge(START, "ask")
    parent = StateGraph(Draft)
    parent.add_node("review", sub.compile())
    parent.add_edge(START, "review")
    app = parent.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t-s"}}
    assert app.invoke({"x": "q"}, config)["__interrupt__"][0].value == "ok?"
    assert app.invoke(Command(resume="yes"), config) == {"x": "yes"}
    records = traced.records()
    tree = [("agent", "LangGraph", [("chain", "review", [("chain", "review", [("chain", "ask", [])])])])]
    assert shape(records) == tree * 2
    assert [(r["level"], r["status_message"]) for r in records] == [("DEFAULT", None)] + [
        ("WARNING", "GraphInterrupt: ok?")] * 3 + [("DEFAULT", None)] * 4
    assert [r["session_id"] for r in records if r["type"] == "agent"] == ["t-s", "t-s"]
    _nothing_open()


class Jokes(TypedDict):
    topics: list[str]
    jokes: Annotated[list[str], operator.add]


def test_a_failing_async_branch_fails_the_graph_and_its_cancelled_siblings_are_warnings(traced: Traced) -> None:
    async def joke(state: Jokes) -> dict[str, list[str]]:
        if state["topics"][0] == "bad":
            raise ValueError("no joke")
        await asyncio.sleep(0.5)
        return {"jokes": state["topics"]}

    graph = StateGraph(Jokes)
    graph.add_node("joke", joke)
    graph.add_conditional_edges(START, lambda s: [Send("joke", {"topics": [t], "jokes": []}) for t in s["topics"]])
    graph.add_edge("joke", END)
    with pytest.raises(ValueError, match="no joke"):
        asyncio.run(graph.compile().ainvoke({"topics": ["a", "bad", "c"], "jokes": []}))
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "joke", [])] * 3)]
    assert records[0]["level"] == "ERROR" and records[0]["status_message"] == "ValueError: no joke"
    assert sorted((r["level"], r["status_message"]) for r in records[1:]) == [
        ("ERROR", "ValueError: no joke"), ("WARNING", "CancelledError"), ("WARNING", "CancelledError")]
    _nothing_open()
