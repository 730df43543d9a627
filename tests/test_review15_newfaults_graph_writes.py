"""Faults around what a LangGraph node writes to its custom stream (review 15, real langgraph)."""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypedDict

import pytest
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import TracePolicy

import autotrace
from tests.helpers import Traced
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain")


class Draft(TypedDict):
    x: str


class Unsizable(dict):  # type: ignore[type-arg]
    def items(self) -> Any:
        raise RuntimeError("no items")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _graph(node: Any, **options: Any) -> Any:
    graph = StateGraph(Draft)
    graph.add_node("node", node, **options)
    graph.add_edge(START, "node")
    graph.add_edge("node", END)
    return graph.compile()


def _nodes(traced: Traced) -> list[tuple[str, Any, Any]]:
    return [(r["name"], r["level"], r["metadata"].get("stream_custom")) for r in traced.records()
            if r["type"] == "chain"]


def test_values_that_cannot_be_sized_or_serialised_and_writes_from_threads_leave_the_graph_as_it_is(
        traced: Traced) -> None:
    """A value whose own code raises, a value that holds itself, a write from a pool thread given
    the node's context and one from a bare thread: the graph streams and returns as untraced, the
    node's values are recorded as a value that cannot be serialised is (its type), nothing is left
    open."""
    def node(state: Draft) -> Draft:
        write = get_stream_writer()
        write(Unsizable(a=1))
        looped: dict[str, Any] = {}
        looped["self"] = looped
        write(looped)
        with ThreadPoolExecutor(1) as pool:
            pool.submit(contextvars.copy_context().run, write, "from-thread").result()
            if state["x"] == "invoked":  # streamed, LangGraph's own writer needs the node's context
                pool.submit(write, "bare-thread").result()
        return {"x": "done"}

    app = _graph(node)
    assert [type(c).__name__ for c in app.stream({"x": ""}, stream_mode="custom")] == ["Unsizable", "dict", "str"]
    assert app.invoke({"x": "invoked"}) == {"x": "done"}
    nodes = _nodes(traced)
    assert [(name, level, written.split(" ")[0]) for name, level, written in nodes] == [
        ("node", "DEFAULT", "<list")] * 2
    _nothing_open()


def _secret_then(failure: BaseException) -> Any:
    def node(state: Draft) -> Draft:
        get_stream_writer()({"card": "4111 1111 1111 1111"})
        raise failure

    return node


@pytest.mark.parametrize("run", ["sync", "async"])
def test_a_failing_nodes_writes_stay_withheld_where_its_trace_policy_processes_the_output(
        traced: Traced, run: str) -> None:
    """The node fails after writing: there is no output for its ``TracePolicy`` to process, and the
    values it wrote stay unrecorded as they would have with an output (fail closed). The caller
    gets the node's error. Before: recorded raw with the error."""
    app = _graph(_secret_then(ValueError("node failed")), trace_policy=TracePolicy(process_outputs=lambda out: {}))
    with pytest.raises(ValueError, match="node failed"):
        app.invoke({"x": ""}) if run == "sync" else asyncio.run(app.ainvoke({"x": ""}))
    assert _nodes(traced) == [("node", "ERROR", None)]
    assert autotrace.stats()["langgraph_stream_writes_withheld"] == 1
    _nothing_open()


def test_a_failing_nodes_writes_are_recorded_without_a_trace_policy(traced: Traced) -> None:
    """A policy that processes only the input leaves the values recorded, with the error."""
    app = _graph(_secret_then(ValueError("node failed")), trace_policy=TracePolicy(process_inputs=lambda x: {}))
    with pytest.raises(ValueError, match="node failed"):
        app.invoke({"x": ""})
    assert _nodes(traced) == [("node", "ERROR", [{"card": "<CREDIT_CARD>"}])]
    _nothing_open()
