"""LangGraph review 15 (real langgraph): what a node writes to its custom stream
(``get_stream_writer()``, a ``writer`` argument, a tool's ``ToolRuntime``) is recorded on the node's
observation, sync and async, streamed with ``stream_mode="custom"`` or invoked; bounded, and
withheld where a ``TracePolicy`` processes the node's output."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, ToolRuntime
from langgraph.types import StreamWriter, TracePolicy

import autotrace
from autotrace import bounds
from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain")


class Draft(TypedDict):
    x: str


def _sync_node(state: Draft) -> Draft:
    write = get_stream_writer()
    write({"progress": 1})
    write("half")
    return {"x": state["x"] + "a"}


def _writer_arg(state: Draft, writer: StreamWriter) -> Draft:
    writer({"progress": 2})
    return {"x": state["x"] + "b"}


async def _async_node(state: Draft) -> Draft:
    get_stream_writer()({"progress": 3})
    await asyncio.sleep(0)
    return {"x": state["x"] + "c"}


def _graph(first: Any, second: Any) -> Any:
    graph = StateGraph(Draft)
    graph.add_node("first", first)
    graph.add_node("second", second)
    graph.add_node("quiet", lambda s: {"x": s["x"] + "."})
    graph.add_edge(START, "first")
    graph.add_edge("first", "second")
    graph.add_edge("second", "quiet")
    graph.add_edge("quiet", END)
    return graph.compile()


@tool
def lookup(order: str, runtime: ToolRuntime) -> str:
    """Look an order up."""
    runtime.stream_writer({"looking": order})
    return f"order {order} shipped"


def _nodes(records: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(r["name"], r["metadata"].get("stream_custom")) for r in records if r["type"] == "chain"]


_WRITTEN = [("first", [{"progress": 1}, "half"]), ("second", [{"progress": 2}]), ("quiet", None)]


def test_a_sync_graph_records_its_nodes_writes_streamed_or_invoked(traced: Traced) -> None:
    app = _graph(_sync_node, _writer_arg)
    assert list(app.stream({"x": ""}, stream_mode="custom")) == [{"progress": 1}, "half", {"progress": 2}]
    assert app.invoke({"x": ""}) == {"x": "ab."}  # LangGraph drops the values: still recorded
    records = traced.records()
    tree = [("agent", "LangGraph", [("chain", "first", []), ("chain", "second", []), ("chain", "quiet", [])])]
    assert shape(records) == tree * 2
    assert _nodes(records) == _WRITTEN * 2
    _nothing_open()


def test_an_async_graph_records_its_nodes_writes_streamed_or_invoked(traced: Traced) -> None:
    app = _graph(_async_node, _writer_arg)

    async def both() -> tuple[list[Any], Any]:
        return ([chunk async for chunk in app.astream({"x": ""}, stream_mode=["custom", "updates"])],
                await app.ainvoke({"x": ""}))

    chunks, result = asyncio.run(both())
    assert [chunk for mode, chunk in chunks if mode == "custom"] == [{"progress": 3}, {"progress": 2}]
    assert result == {"x": "cb."}
    written = [("first", [{"progress": 3}]), ("second", [{"progress": 2}]), ("quiet", None)]
    assert _nodes(traced.records()) == written * 2
    _nothing_open()


def test_a_subgraph_nodes_writes_are_its_own_and_a_tools_are_its_nodes(traced: Traced) -> None:
    inner = StateGraph(MessagesState)
    inner.add_node("tools", ToolNode([lookup]))
    inner.add_edge(START, "tools")
    outer = StateGraph(MessagesState)
    outer.add_node("ask", lambda s: {"messages": [AIMessage("", tool_calls=[
        {"name": "lookup", "args": {"order": "o1"}, "id": "call-1"}])]})
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "ask")
    outer.add_edge("ask", "sub")
    app = outer.compile()
    chunks = list(app.stream({"messages": [("user", "o1?")]}, stream_mode="custom", subgraphs=True))
    assert chunks == [(("sub:" + chunks[0][0][0].split(":", 1)[1],), {"looking": "o1"})]
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [
        ("chain", "ask", []), ("chain", "sub", [("chain", "sub", [("chain", "tools", [("tool", "lookup", [])])])])])]
    # the node the tool runs in wrote it: not the tool, nor the outer node the subgraph runs in
    assert [(r["name"], r["metadata"].get("stream_custom")) for r in records if r["type"] != "agent"] == [
        ("ask", None), ("sub", None), ("sub", None), ("tools", [{"looking": "o1"}]), ("lookup", None)]
    _nothing_open()


def _writes_many(state: Draft) -> Draft:
    write = get_stream_writer()
    for i in range(1005):
        write(i)
    return {"x": "many"}


def _writes_large(state: Draft) -> Draft:
    write = get_stream_writer()
    for part in "abc":
        write(part * 40_000)  # two fill the room a traced stream's items have (the value size limit)
    return {"x": "large"}


def test_writes_are_bounded_by_count_and_size_the_rest_dropped_and_counted(traced: Traced) -> None:
    _graph(_writes_many, _writes_large).invoke({"x": ""})
    nodes = dict(_nodes(traced.records()))
    assert nodes["first"] == [*range(1000), bounds.TRUNCATION_MARK]
    large = nodes["second"]  # two held, cut at the value size limit on export, as a long output is
    assert (large[:4], large[40_002:40_006], large.endswith(bounds.TRUNCATION_MARK)) == ('["aa', '","b', True)
    assert autotrace.stats()["attribute_items_dropped"] == 5 + 1  # the third large one
    _nothing_open()


def test_writes_are_withheld_where_a_trace_policy_processes_the_output(traced: Traced) -> None:
    graph = StateGraph(Draft)
    graph.add_node("secret", _sync_node, trace_policy=TracePolicy(process_outputs=lambda out: {"n": len(out["x"])}))
    graph.add_node("plain", _writer_arg)
    graph.add_edge(START, "secret")
    graph.add_edge("secret", "plain")
    app = graph.compile()
    assert app.invoke({"x": "pw"}) == {"x": "pwab"}
    assert asyncio.run(app.ainvoke({"x": "pw"})) == {"x": "pwab"}
    records = traced.records()
    nodes = [(r["name"], r["output"], r["metadata"].get("stream_custom")) for r in records if r["type"] == "chain"]
    assert nodes == [("secret", {"n": 3}, None), ("plain", {"x": "pwab"}, [{"progress": 2}])] * 2
    assert autotrace.stats()["langgraph_stream_writes_withheld"] == 4
    _nothing_open()


def test_writes_are_content_not_recorded_with_capture_off(traced: Traced) -> None:
    with autotrace.content_capture(False):
        assert _graph(_sync_node, _writer_arg).invoke({"x": ""}) == {"x": "ab."}
    assert [name for name, written in _nodes(traced.records()) if written] == []
    _nothing_open()
