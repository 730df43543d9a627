"""LangGraph review 18 (real langgraph): a value a node writes to its custom stream is recorded
once, also where a ``timeout`` on the node a subgraph runs in wraps the writer the subgraph gets."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

import pytest
from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph

from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain")


class Draft(TypedDict):
    x: str


async def _deep(state: Draft) -> Draft:
    get_stream_writer()({"deep": 1})
    return {"x": state["x"] + "d"}


async def _top(state: Draft) -> Draft:
    get_stream_writer()("top")
    return {"x": state["x"] + "t"}


def test_a_subgraphs_write_under_a_node_timeout_is_recorded_once(traced: Traced) -> None:
    inner = StateGraph(Draft)
    inner.add_node("deep", _deep)
    inner.add_edge(START, "deep")
    outer = StateGraph(Draft)
    outer.add_node("top", _top, timeout=30)
    outer.add_node("sub", inner.compile(), timeout=30)  # its writer is LangGraph's guard around the graph's
    outer.add_edge(START, "top")
    outer.add_edge("top", "sub")
    app = outer.compile()

    async def streamed() -> list[Any]:
        return [chunk async for chunk in app.astream({"x": ""}, stream_mode=["custom", "values"], subgraphs=True)]

    chunks = asyncio.run(streamed())
    assert [chunk for _, mode, chunk in chunks if mode == "custom"] == ["top", {"deep": 1}]
    assert chunks[-1] == ((), "values", {"x": "td"})
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [
        ("chain", "top", []), ("chain", "sub", [("chain", "sub", [("chain", "deep", [])])])])]
    assert [(r["name"], (r["metadata"] or {}).get("stream_custom")) for r in records[1:]] == [
        ("top", ["top"]), ("sub", None), ("sub", None), ("deep", [{"deep": 1}])]  # was recorded twice
    _nothing_open()
