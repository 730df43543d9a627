"""LangGraph review 21 (real langgraph): a node or functional ``@task`` its cache answers
(``CachePolicy`` + ``InMemoryCache``) left no observation at all; it is recorded as a node run, a
chain with ``cache_hit`` and the cached writes as its output. A ``@task``'s run had no
``langgraph_node``/``langgraph_step`` and what it wrote to its custom stream went to its caller."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

import pytest
from langgraph.cache.memory import InMemoryCache
from langgraph.config import get_stream_writer
from langgraph.func import entrypoint, task
from langgraph.graph import START, StateGraph
from langgraph.types import CachePolicy, Command, TracePolicy, omit_payload

from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain")


class State(TypedDict, total=False):
    x: int
    y: int


def _go(state: State) -> Command[Any]:
    return Command(goto="double", update={"x": state["x"] + 1})


def _double(state: State) -> State:
    return {"y": state["x"] * 2}


def _graph(**double_options: Any) -> Any:
    graph = StateGraph(State)
    graph.add_node("go", _go, cache_policy=CachePolicy(), destinations=("double",))
    graph.add_node("double", _double, cache_policy=CachePolicy(), **double_options)
    graph.add_edge(START, "go")
    return graph.compile(cache=InMemoryCache())


def _fields(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["type"], r["name"], r["input"], r["output"], r["metadata"]) for r in records]


def test_a_node_its_cache_answers_is_recorded_as_a_cache_hit(traced: Traced) -> None:
    app = _graph(trace_policy=TracePolicy(process_inputs=omit_payload))
    assert app.invoke({"x": 3}) == {"x": 4, "y": 8}
    first = {r["trace_id"] for r in traced.records()}
    assert app.invoke({"x": 3}) == {"x": 4, "y": 8}  # both nodes answered by the cache
    records = [r for r in traced.records() if r["trace_id"] not in first]
    assert shape(records) == [("agent", "LangGraph", [("chain", "go", []), ("chain", "double", [])])]
    assert _fields(records[1:]) == [
        ("chain", "go", {"x": 3}, {"x": 4}, {"langgraph_node": "go", "langgraph_step": 1, "cache_hit": True}),
        # its trace policy's processor applies, as to the run it made when it ran
        ("chain", "double", {}, {"y": 8}, {"langgraph_node": "double", "langgraph_step": 2, "cache_hit": True}),
    ]
    _nothing_open()


def _failing(value: Any) -> Any:
    raise ValueError("no")


def test_a_cached_nodes_values_a_failing_trace_policy_processor_meets_are_not_recorded(traced: Traced) -> None:
    app = _graph(trace_policy=TracePolicy(process_inputs=_failing, process_outputs=_failing))
    assert asyncio.run(app.ainvoke({"x": 3})) == {"x": 4, "y": 8}
    first = {r["trace_id"] for r in traced.records()}
    assert asyncio.run(app.ainvoke({"x": 3})) == {"x": 4, "y": 8}
    records = [r for r in traced.records() if r["trace_id"] not in first]
    assert _fields(records)[2] == ("chain", "double", None, None,
                                   {"langgraph_node": "double", "langgraph_step": 2, "cache_hit": True})
    _nothing_open()


@task
def _square(n: int) -> int:
    get_stream_writer()(f"square {n}")
    return n * n


@entrypoint()
def _squares(n: int) -> int:
    get_stream_writer()("start")
    return _square(n).result() + _square(n + 1).result()


def test_a_task_is_recorded_as_a_node_with_what_it_wrote(traced: Traced) -> None:
    assert _squares.invoke(2) == 13
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "_squares", [("chain", "_square", []),
                                                                               ("chain", "_square", [])])])]
    assert _fields(records[1:]) == [
        ("chain", "_squares", 2, 13, {"langgraph_step": 0, "langgraph_node": "_squares", "stream_custom": ["start"]}),
        ("chain", "_square", {"n": 2}, 4, {"langgraph_node": "_square", "langgraph_step": 0,
                                           "stream_custom": ["square 2"]}),
        ("chain", "_square", {"n": 3}, 9, {"langgraph_node": "_square", "langgraph_step": 0,
                                           "stream_custom": ["square 3"]}),
    ]
    _nothing_open()


@task(cache_policy=CachePolicy())
async def _research_agent(topic: str) -> str:  # its name says agent: a step all the same, as a node's
    get_stream_writer()({"topic": topic})
    return topic.upper()


@entrypoint(cache=InMemoryCache())
async def _report(topic: str) -> str:
    return await _research_agent(topic)


def test_an_async_task_and_its_cache_hit_are_recorded_as_nodes(traced: Traced) -> None:
    assert asyncio.run(_report.ainvoke("llm")) == "LLM"
    assert asyncio.run(_report.ainvoke("llm")) == "LLM"
    records = traced.records()
    task_fields = [f for f in _fields(records) if f[1] == "_research_agent"]
    assert task_fields == [
        ("chain", "_research_agent", {"topic": "llm"}, "LLM",
         {"langgraph_node": "_research_agent", "langgraph_step": 0, "stream_custom": [{"topic": "llm"}]}),
        ("chain", "_research_agent", {"topic": "llm"}, "LLM",
         {"langgraph_node": "_research_agent", "langgraph_step": 0, "cache_hit": True}),
    ]
    assert shape(records) == [("agent", "LangGraph", [("chain", "_report", [("chain", "_research_agent", [])])])] * 2
    _nothing_open()
