"""Critique of review 21's LangGraph cache hits (real langgraph): a cached node's output is rebuilt
from its writes, and two kinds of node were recorded with ``{}``: an ``@entrypoint`` its cache
answered (it writes its value to ``__end__`` and what it saves to ``__previous__``), and a node of a
one-value state (``__root__``) whose ``Command`` also went somewhere (a ``branch:to:`` write)."""

from __future__ import annotations

import operator
from typing import Annotated, Any

import pytest
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.func import entrypoint
from langgraph.graph import START, StateGraph
from langgraph.types import CachePolicy, Command

from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain")


def _fields(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["type"], r["name"], r["input"], r["output"], r["metadata"]) for r in records]


@entrypoint(cache=InMemoryCache(), cache_policy=CachePolicy())
def _double(n: int) -> int:
    return n * 2


@entrypoint(cache=InMemoryCache(), cache_policy=CachePolicy(), checkpointer=InMemorySaver())
def _running_total(n: int, *, previous: int | None = None) -> Any:
    return entrypoint.final(value=n * 10, save=(previous or 0) + n)


def test_an_entrypoint_its_cache_answers_records_what_it_returned(traced: Traced) -> None:
    assert _double.invoke(3) == 6
    assert _double.invoke(3) == 6  # answered by the cache
    assert _running_total.invoke(2, {"configurable": {"thread_id": "a"}}) == 20
    assert _running_total.invoke(2, {"configurable": {"thread_id": "b"}}) == 20  # the cache's answer
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "_double", [])])] * 2 + [
        ("agent", "LangGraph", [("chain", "_running_total", [])])] * 2
    hits = [fields for fields in _fields(records) if fields[4].get("cache_hit")]
    assert hits == [
        ("chain", "_double", 3, 6, {"langgraph_step": 0, "langgraph_node": "_double", "cache_hit": True}),
        ("chain", "_running_total", 2, 20, {"thread_id": "b", "langgraph_step": 0, "langgraph_node": "_running_total",
                                            "cache_hit": True}),
    ]
    _nothing_open()


def _first(state: list[int]) -> Command[Any]:
    return Command(goto="second", update=[*state, 1])


def _second(state: list[int]) -> list[int]:
    return [2]


def test_a_one_value_states_cached_node_that_went_somewhere_records_its_value(traced: Traced) -> None:
    graph = StateGraph(Annotated[list, operator.add])
    graph.add_node("first", _first, cache_policy=CachePolicy(), destinations=("second",))
    graph.add_node("second", _second)
    graph.add_edge(START, "first")
    app = graph.compile(cache=InMemoryCache())
    assert app.invoke([0]) == [0, 0, 1, 2]
    first = {r["trace_id"] for r in traced.records()}
    assert app.invoke([0]) == [0, 0, 1, 2]
    records = [r for r in traced.records() if r["trace_id"] not in first]
    assert _fields(records)[1:] == [
        ("chain", "first", [0], [0, 1], {"langgraph_step": 1, "langgraph_node": "first", "cache_hit": True}),
        ("chain", "second", [0, 0, 1], [2], {"langgraph_step": 2, "langgraph_node": "second"}),
    ]
    _nothing_open()
