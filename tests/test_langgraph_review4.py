"""LangGraph review 4 (real langgraph, fake models): an unnamed router run asynchronously, a node's
``TracePolicy``, and the tool call a prebuilt agent's tool run answers."""

from __future__ import annotations

import asyncio
import operator
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send, TracePolicy, omit_payload

from tests.helpers import Traced, isolated_env, shape
from tests.test_langgraph_subagents_and_interrupts import ToolCallingFake, _nothing_open, lookup

pytestmark = pytest.mark.integrations("langchain")


class Jokes(TypedDict, total=False):
    topics: list[str]
    jokes: Annotated[list[str], operator.add]


def _map_reduce() -> Any:
    """``gen`` fans out to a ``joke`` per topic through an unnamed router."""
    graph = StateGraph(Jokes)
    graph.add_node("gen", lambda s: {"jokes": []})
    graph.add_node("joke", lambda s: {"jokes": s["topics"]})
    graph.add_edge(START, "gen")
    graph.add_conditional_edges("gen", lambda s: [Send("joke", {"topics": [t]}) for t in s["topics"]], ["joke"])
    graph.add_edge("joke", END)
    return graph.compile()


def test_an_unnamed_router_is_a_lambda_run_sync_or_async(traced: Traced) -> None:
    # LangGraph names it by its class when run synchronously, and not at all when awaited
    assert sorted(_map_reduce().invoke({"topics": ["a", "b"]})["jokes"]) == ["a", "b"]
    assert sorted(asyncio.run(_map_reduce().ainvoke({"topics": ["c", "d"]}))["jokes"]) == ["c", "d"]
    tree = [("agent", "LangGraph", [("chain", "gen", [("chain", "<lambda>", [])]),
                                    ("chain", "joke", []), ("chain", "joke", [])])]
    assert shape(traced.records()) == tree * 2
    _nothing_open()


class Draft(TypedDict):
    x: str


def test_a_node_trace_policy_is_what_its_run_records(traced: Traced) -> None:
    # what LangGraph gives tracers (LangSmith's), not the payload the node itself gets
    policy = TracePolicy(process_inputs=omit_payload, process_outputs=lambda out: {"chars": len(out["x"])})
    graph = StateGraph(Draft)
    graph.add_node("secret", lambda s: {"x": "out-" + s["x"]}, trace_policy=policy)
    graph.add_node("plain", lambda s: {"x": s["x"] + "!"})
    graph.add_edge(START, "secret")
    graph.add_edge("secret", "plain")
    app = graph.compile()
    assert app.invoke({"x": "pw1"}) == {"x": "out-pw1!"}
    assert asyncio.run(app.ainvoke({"x": "pw2"})) == {"x": "out-pw2!"}
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "secret", []), ("chain", "plain", [])])] * 2
    nodes = [(r["name"], r["input"], r["output"]) for r in records if r["type"] == "chain"]
    assert nodes == [("secret", {}, {"chars": 7}), ("plain", {"x": "out-pw1"}, {"x": "out-pw1!"}),
                     ("secret", {}, {"chars": 7}), ("plain", {"x": "out-pw2"}, {"x": "out-pw2!"})]
    _nothing_open()


_IMPORTED_AFTER_INSTALL = """
import sys
import autotrace
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=("langchain",))
from langgraph.graph import START, StateGraph  # LangChain comes in with it, LangGraph's runnables before it
from langgraph.types import TracePolicy, omit_payload
graph = StateGraph(dict)
graph.add_node("secret", lambda s: {"x": 1}, trace_policy=TracePolicy(process_inputs=omit_payload))
graph.add_edge(START, "secret")
graph.compile().invoke({"x": 0})
autotrace.flush(10.0)
print(sorted((r["name"], r["input"]) for r in autotrace.local_store().observations()))
"""


def test_a_trace_policy_holds_with_langgraph_imported_after_install(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    done = subprocess.run([sys.executable, "-c", _IMPORTED_AFTER_INSTALL, str(tmp_path / "t.db")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "[('LangGraph', {'x': 0}), ('secret', {})]\n"), done.stderr




def test_each_parallel_tool_call_of_a_prebuilt_agent_records_its_call_id(traced: Traced) -> None:
    from langgraph.prebuilt import create_react_agent

    model = ToolCallingFake(messages=iter([
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"order": "o1"}, "id": "call-1"},
                                          {"name": "lookup", "args": {"order": "o2"}, "id": "call-2"}]),
        AIMessage(content="both shipped")]))
    with warnings.catch_warnings():  # deprecated for langchain's create_agent, not installed here
        warnings.simplefilter("ignore")
        agent = create_react_agent(model, [lookup])
    assert agent.invoke({"messages": [("user", "o1, o2?")]})["messages"][-1].content == "both shipped"
    records = traced.records()
    by_id = {r["id"]: r for r in records}
    # each its own tool run under its own ``tools`` task, which the model's call it answers names
    calls = sorted(((r["metadata"], r["input"], r["output"], by_id[r["parent_id"]]["name"])
                    for r in records if r["type"] == "tool"), key=lambda call: call[1]["order"])
    assert calls == [
        ({"tool_name": "lookup", "tool_call_id": "call-1"}, {"order": "o1"}, "order o1 shipped", "tools"),
        ({"tool_name": "lookup", "tool_call_id": "call-2"}, {"order": "o2"}, "order o2 shipped", "tools")]
    assert len({r["parent_id"] for r in records if r["type"] == "tool"}) == 2
    _nothing_open()


def test_a_tool_invoked_without_a_call_records_no_call_id(traced: Traced) -> None:
    assert lookup.invoke({"order": "o3"}) == "order o3 shipped"
    assert traced.one()["metadata"] == {"tool_name": "lookup"}
