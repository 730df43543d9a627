"""LangGraph graphs through the LangChain integration, with the real langgraph and fake models."""

from __future__ import annotations

import asyncio
import operator
import warnings
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send, interrupt
from opentelemetry import trace

from autotrace.integrations.langchain import INTEGRATION
from autotrace.observation import STREAM_CLOSED
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain")

_GRAPH_KEYS = {"langgraph_triggers", "langgraph_path", "langgraph_checkpoint_ns", "checkpoint_ns"}


class Ticket(TypedDict, total=False):
    q: str
    intent: str
    answer: str


@tool
def lookup(order: str) -> str:
    """Look up an order."""
    return f"order {order} shipped"


def _support_graph(router: Any = None, **compile_options: Any) -> Any:
    """detect -(conditional edge)-> act -> END; each node calls a fake model, ``act`` a tool too."""
    llm = FakeListChatModel(responses=["billing", "here is your refund"])

    def detect(state: Ticket) -> dict[str, str]:
        return {"intent": str(llm.invoke(state["q"]).content)}

    def act(state: Ticket) -> dict[str, str]:
        return {"answer": str(llm.invoke(lookup.invoke({"order": "o1"})).content)}

    def route(state: Ticket) -> str:
        return "act" if state["intent"] == "billing" else END

    graph = StateGraph(Ticket)
    graph.add_node("detect", detect)
    graph.add_node("act", act)
    graph.add_edge(START, "detect")
    graph.add_conditional_edges("detect", router or route)
    graph.add_edge("act", END)
    return graph.compile(**compile_options)


def _support_tree(root: str = "LangGraph", router: str = "route") -> list[Any]:
    return [("agent", root, [
        ("chain", "detect", [("generation", "FakeListChatModel", []), ("chain", router, [])]),
        ("chain", "act", [("tool", "lookup", []), ("generation", "FakeListChatModel", [])]),
    ])]


def _nothing_open() -> None:
    handler = INTEGRATION.handler
    assert handler is not None
    assert handler.runs == {} and handler.hidden == {} and handler._by_span == {}
    assert not trace.get_current_span().get_span_context().is_valid


def test_a_graph_is_one_agent_with_a_chain_per_node_and_its_router(traced: Traced) -> None:
    final = {"q": "refund?", "intent": "billing", "answer": "here is your refund"}
    assert _support_graph().invoke({"q": "refund?"}) == final
    records = traced.records()
    assert shape(records) == _support_tree()
    by_name = {r["name"]: r for r in records}
    root = by_name["LangGraph"]
    assert root["input"] == {"q": "refund?"} and root["output"] == final
    assert root["level"] == "DEFAULT" and not root["metadata"]
    assert by_name["detect"]["metadata"] == {"langgraph_node": "detect", "langgraph_step": 1}
    assert by_name["act"]["metadata"] == {"langgraph_node": "act", "langgraph_step": 2}
    assert by_name["act"]["input"] == {"q": "refund?", "intent": "billing"}
    assert by_name["act"]["output"] == {"answer": "here is your refund"}
    assert by_name["route"]["output"] == "act" and not by_name["route"]["metadata"]
    assert by_name["lookup"]["metadata"] == {"tool_name": "lookup"}
    for record in records:  # LangGraph's bookkeeping on no run, where a node is on nodes only
        metadata = record.get("metadata") or {}
        assert not _GRAPH_KEYS & metadata.keys(), record["name"]
        assert ("langgraph_node" in metadata) == (record["name"] in ("detect", "act")), record["name"]
    _nothing_open()


def test_a_graph_is_named_by_compile_or_run_name_and_a_lambda_router_as_such(traced: Traced) -> None:
    _support_graph(name="support").invoke({"q": "a"})
    _support_graph().with_config(run_name="triage").invoke({"q": "b"})
    _support_graph(lambda s: "act" if s["intent"] == "billing" else END).invoke({"q": "c"})
    assert shape(traced.records()) == (_support_tree("support") + _support_tree("triage")
                                       + _support_tree(router="<lambda>"))


class ToolCallingFake(GenericFakeChatModel):
    """A fake chat model a prebuilt agent can bind tools to: it replies from its list."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def _react_agent() -> Any:
    from langgraph.prebuilt import create_react_agent

    model = ToolCallingFake(messages=iter([
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"order": "o1"}, "id": "c1"},
                                          {"name": "lookup", "args": {"order": "o2"}, "id": "c2"}]),
        AIMessage(content="both shipped"),
    ]))
    with warnings.catch_warnings():  # deprecated for langchain's create_agent, not installed here
        warnings.simplefilter("ignore")
        return create_react_agent(model, [lookup])


def test_a_prebuilt_react_agent_is_generation_then_tools_then_generation(traced: Traced) -> None:
    out = _react_agent().invoke({"messages": [("user", "where are o1 and o2?")]})
    assert out["messages"][-1].content == "both shipped"
    records = traced.records()
    model_step = ("chain", "agent", [
        ("chain", "call_model", []),
        ("chain", "RunnableSequence", [("chain", "Prompt", []), ("generation", "ToolCallingFake", [])]),
        ("chain", "should_continue", []),
    ])
    assert shape(records) == [("agent", "LangGraph", [
        model_step, ("chain", "tools", [("tool", "lookup", [])]), ("chain", "tools", [("tool", "lookup", [])]),
        model_step,
    ])]
    first, second = [r for r in records if r["type"] == "generation"]
    assert [c["args"] for c in first["output"]["tool_calls"]] == [{"order": "o1"}, {"order": "o2"}]
    assert second["input"][-2:] == [{"role": "tool", "content": "order o1 shipped", "tool_call_id": "c1"},
                                    {"role": "tool", "content": "order o2 shipped", "tool_call_id": "c2"}]
    assert second["output"] == {"role": "assistant", "content": "both shipped"}
    tools = [r for r in records if r["type"] == "tool"]  # the two calls run in parallel, in either order
    assert sorted((t["input"]["order"], t["output"], t["level"]) for t in tools) == [
        ("o1", "order o1 shipped", "DEFAULT"), ("o2", "order o2 shipped", "DEFAULT")]
    _nothing_open()


@pytest.mark.parametrize("mode", ["updates", "values"])
def test_stream_astream_and_ainvoke_record_the_same_tree(traced: Traced, mode: str) -> None:
    streamed = list(_support_graph().stream({"q": "s"}, stream_mode=mode))

    async def consume() -> tuple[list[Any], Any]:
        chunks = [chunk async for chunk in _support_graph().astream({"q": "a"}, stream_mode=mode)]
        return chunks, await _support_graph().ainvoke({"q": "i"})

    chunks, final = asyncio.run(consume())
    assert len(streamed) == len(chunks) == (2 if mode == "updates" else 3)
    assert final["answer"] == "here is your refund"
    records = traced.records()
    assert shape(records) == _support_tree() * 3
    roots = [r for r in records if r["name"] == "LangGraph"]
    assert [r["input"] for r in roots] == [{"q": "s"}, {"q": "a"}, {"q": "i"}]
    assert all(r["output"]["answer"] == "here is your refund" and r["level"] == "DEFAULT" for r in roots)
    _nothing_open()


def test_an_abandoned_stream_ends_its_root_once_and_leaves_nothing_open(traced: Traced) -> None:
    for chunk in _support_graph().stream({"q": "s"}, stream_mode="updates"):
        assert chunk == {"detect": {"intent": "billing"}}
        break

    async def consume() -> None:
        async for _ in _support_graph().astream({"q": "a"}, stream_mode="updates"):
            break

    asyncio.run(consume())
    records = traced.records()
    tree = [("agent", "LangGraph", [("chain", "detect", [("generation", "FakeListChatModel", []),
                                                         ("chain", "route", [])])])]
    assert shape(records) == tree * 2
    roots = [r for r in records if r["name"] == "LangGraph"]
    assert [(r["level"], r["status_message"]) for r in roots] == [("WARNING", STREAM_CLOSED)] * 2
    assert all(r["level"] == "DEFAULT" for r in records if r["name"] != "LangGraph")
    _nothing_open()


class Draft(TypedDict):
    x: str


def _approval_graph() -> Any:
    def ask(state: Draft) -> dict[str, str]:
        return {"x": interrupt("approve?")}

    graph = StateGraph(Draft)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    return graph.compile(checkpointer=InMemorySaver())


def test_an_interrupt_is_a_warning_and_the_resumed_run_a_new_trace_of_the_thread(traced: Traced) -> None:
    app = _approval_graph()
    config = {"configurable": {"thread_id": "t-1"}}
    assert app.invoke({"x": "draft"}, config)["__interrupt__"][0].value == "approve?"
    assert app.invoke(Command(resume="yes"), config) == {"x": "yes"}
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "ask", [])])] * 2
    paused_root, paused, resumed_root, resumed = records
    assert (paused["level"], paused["status_message"]) == ("WARNING", "GraphInterrupt: approve?")
    assert (paused_root["level"], paused_root["output"]) == ("DEFAULT", {"x": "draft"})
    assert (resumed["level"], resumed["output"]) == ("DEFAULT", {"x": "yes"})
    assert paused_root["trace_id"] != resumed_root["trace_id"]
    assert (paused_root["session_id"], resumed_root["session_id"]) == ("t-1", "t-1")  # the thread links them
    _nothing_open()


def test_a_given_session_wins_over_the_thread(traced: Traced) -> None:
    config = {"configurable": {"thread_id": "t-2"}, "metadata": {"session_id": "s-9"}}
    _approval_graph().invoke({"x": "draft"}, config)
    assert {r["session_id"] for r in traced.records()} == {"s-9"}


def test_a_recursion_limit_is_an_error_of_the_graph(traced: Traced) -> None:
    graph = StateGraph(Draft)
    graph.add_node("again", lambda s: {"x": s["x"] + "."})
    graph.add_edge(START, "again")
    graph.add_edge("again", "again")
    with pytest.raises(GraphRecursionError):
        graph.compile().invoke({"x": ""}, {"recursion_limit": 2})
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "again", []), ("chain", "again", [])])]
    assert records[0]["level"] == "ERROR" and records[0]["status_message"].startswith("GraphRecursionError: ")
    assert [r["level"] for r in records[1:]] == ["DEFAULT", "DEFAULT"]
    _nothing_open()


def test_subgraphs_nest_under_their_node_as_chains(traced: Traced) -> None:
    inner = StateGraph(Draft)
    inner.add_node("polish", lambda s: {"x": s["x"] + "!"})
    inner.add_edge(START, "polish")
    sub = inner.compile(name="editor")
    outer = StateGraph(Draft)
    outer.add_node("edit", sub)  # the subgraph as a node
    outer.add_node("recheck", lambda s: sub.invoke(s))  # and called from a node
    outer.add_edge(START, "edit")
    outer.add_edge("edit", "recheck")
    assert outer.compile(name="writer").invoke({"x": "a"}) == {"x": "a!!"}
    records = traced.records()
    inner_tree = [("chain", "editor", [("chain", "polish", [])])]
    assert shape(records) == [("agent", "writer", [("chain", "edit", inner_tree), ("chain", "recheck", inner_tree)])]
    assert {r["metadata"]["langgraph_node"] for r in records if r["name"] == "polish"} == {"polish"}
    _nothing_open()


class Jokes(TypedDict):
    topics: list[str]
    jokes: Annotated[list[str], operator.add]


def test_send_fan_out_gives_sibling_nodes_and_hides_the_start_task(traced: Traced) -> None:
    llm = FakeListChatModel(responses=["a", "b", "c"])

    def fan(state: Jokes) -> list[Send]:
        return [Send("joke", {"topics": [topic], "jokes": []}) for topic in state["topics"]]

    def joke(state: Jokes) -> dict[str, list[str]]:
        return {"jokes": [f"{state['topics'][0]}:{llm.invoke('tell').content}"]}

    graph = StateGraph(Jokes)
    graph.add_node("joke", joke)
    graph.add_conditional_edges(START, fan)
    graph.add_edge("joke", END)
    out = graph.compile().invoke({"topics": ["cats", "dogs", "owls"], "jokes": []})
    assert sorted(j.split(":")[0] for j in out["jokes"]) == ["cats", "dogs", "owls"]  # replies in any order
    records = traced.records()
    branch = ("chain", "joke", [("generation", "FakeListChatModel", [])])
    assert shape(records) == [("agent", "LangGraph", [branch, branch, branch])]  # no __start__, no fan
    root = records[0]
    branches = [r for r in records if r["name"] == "joke"]
    assert {r["parent_id"] for r in branches} == {root["id"]}
    assert {r["metadata"]["langgraph_step"] for r in branches} == {1}
    _nothing_open()


def test_a_model_called_in_a_hidden_start_task_is_kept_under_the_graph(traced: Traced) -> None:
    llm = FakeListChatModel(responses=["act"])

    def classify(state: Ticket) -> str:
        return str(llm.invoke(state["q"]).content)

    graph = StateGraph(Ticket)
    graph.add_node("act", lambda s: {"answer": "done"})
    graph.add_conditional_edges(START, classify, ["act"])
    graph.add_edge("act", END)
    assert graph.compile().invoke({"q": "hi"}) == {"q": "hi", "answer": "done"}
    assert shape(traced.records()) == [("agent", "LangGraph", [("generation", "FakeListChatModel", []),
                                                               ("chain", "act", [])])]
    _nothing_open()


@tool
def refund(order: str) -> str:
    """Refund an order once a person approves."""
    return f"refunded {order}: {interrupt(f'refund {order}?')}"


def test_an_interrupt_in_a_tool_of_a_prebuilt_agent_is_a_warning_not_an_error(traced: Traced) -> None:
    from langgraph.prebuilt import create_react_agent

    model = ToolCallingFake(messages=iter([
        AIMessage(content="", tool_calls=[{"name": "refund", "args": {"order": "o1"}, "id": "c1"}])]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent = create_react_agent(model, [refund], checkpointer=InMemorySaver())
    out = agent.invoke({"messages": [("user", "refund o1")]}, {"configurable": {"thread_id": "t-3"}})
    assert out["__interrupt__"][0].value == "refund o1?"
    records = traced.records()
    assert shape(records)[0][2][-1] == ("chain", "tools", [("tool", "refund", [])])
    levels = {(r["type"], r["name"]): (r["level"], r["status_message"]) for r in records if r["level"] != "DEFAULT"}
    assert levels == {("chain", "tools"): ("WARNING", "GraphInterrupt: refund o1?"),
                      ("tool", "refund"): ("WARNING", "GraphInterrupt: refund o1?")}
    _nothing_open()
