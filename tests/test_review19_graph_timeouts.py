"""LangGraph review 19 (real langgraph): a node attempt its ``timeout`` ends (``add_node(..., timeout=)``,
``@task(timeout=)``) fails with LangGraph's ``NodeTimeoutError``, not as a plain cancellation; what ran
inside it is interrupted, and a timed node cancelled for another reason stays a cancellation."""

from __future__ import annotations

import asyncio
import re
from typing import Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langgraph.errors import NodeTimeoutError
from langgraph.func import entrypoint, task
from langgraph.graph import START, StateGraph
from langgraph.types import RetryPolicy

from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain")

TIMED_OUT = ("ERROR", "NodeTimeoutError: Node 'slow' exceeded its run timeout of 0.050s (elapsed: <s>).")
CANCELLED = ("WARNING", "CancelledError")


class Draft(TypedDict):
    x: str


class _Hangs(GenericFakeChatModel):
    """A model that never answers."""

    async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        await asyncio.sleep(3600)


def _levels(records: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    """Each run's name, level and message, the elapsed time of a timeout left out."""
    return [(r["name"], r["level"], re.sub(r"elapsed: [0-9.]+s", "elapsed: <s>", r["status_message"] or "") or None)
            for r in records]


def _fails(app: Any, value: Any) -> None:
    async def run() -> None:
        with pytest.raises(NodeTimeoutError):
            await app.ainvoke(value)

    asyncio.run(run())


def test_a_node_its_timeout_ends_fails_with_the_timeout(traced: Traced) -> None:
    model = _Hangs(messages=iter(()))

    async def slow(state: Draft) -> Draft:
        return {"x": str((await model.ainvoke(state["x"])).content)}

    graph = StateGraph(Draft)
    graph.add_node("slow", slow, timeout=0.05)
    graph.add_edge(START, "slow")
    _fails(graph.compile(), {"x": "q"})
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "slow", [("generation", "_Hangs", [])])])]
    # the node was "WARNING CancelledError": the graph failed with a timeout no node had
    assert _levels(records) == [("LangGraph", *TIMED_OUT), ("slow", *TIMED_OUT), ("_Hangs", *CANCELLED)]
    _nothing_open()


def test_each_attempt_of_a_retried_node_its_timeout_ends(traced: Traced) -> None:
    attempts: list[int] = []

    async def slow(state: Draft) -> Draft:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(5)
        return {"x": "done"}

    graph = StateGraph(Draft)
    graph.add_node("slow", slow, timeout=0.05, retry_policy=RetryPolicy(initial_interval=0.01, jitter=False,
                                                                        retry_on=NodeTimeoutError))
    graph.add_edge(START, "slow")
    assert asyncio.run(graph.compile().ainvoke({"x": "q"})) == {"x": "done"}
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "slow", []), ("chain", "slow", [])])]
    assert _levels(records) == [("LangGraph", "DEFAULT", None), ("slow", *TIMED_OUT), ("slow", "DEFAULT", None)]
    assert [r["output"] for r in records] == [{"x": "done"}, None, {"x": "done"}]
    _nothing_open()


def test_a_functional_task_its_timeout_ends_fails_with_the_timeout(traced: Traced) -> None:
    @task(timeout=0.05)
    async def slow(x: int) -> int:
        await asyncio.sleep(5)
        return x

    @entrypoint()
    async def flow(x: int) -> int:
        return await slow(x)

    _fails(flow, 1)
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "flow", [("chain", "slow", [])])])]
    assert _levels(records) == [("LangGraph", *TIMED_OUT), ("flow", *TIMED_OUT), ("slow", *TIMED_OUT)]
    _nothing_open()


def test_a_timed_node_cancelled_by_a_failing_sibling_stays_a_cancellation(traced: Traced) -> None:
    async def slow(state: Draft) -> Draft:
        await asyncio.sleep(5)
        return {"x": "late"}

    async def broken(state: Draft) -> Draft:
        raise ValueError("bad input")

    async def on_time(state: Draft) -> Draft:
        raise TimeoutError("upstream timed out")  # its own, not its node's timeout

    graph = StateGraph(Draft)
    graph.add_node("slow", slow, timeout=30)
    graph.add_node("broken", broken)
    graph.add_edge(START, "slow")
    graph.add_edge(START, "broken")
    own = StateGraph(Draft)
    own.add_node("on_time", on_time, timeout=30)
    own.add_edge(START, "on_time")

    async def run() -> None:
        with pytest.raises(ValueError, match="bad input"):
            await graph.compile().ainvoke({"x": "q"})
        with pytest.raises(TimeoutError, match="upstream"):
            await own.compile(name="own").ainvoke({"x": "q"})

    asyncio.run(run())
    records = traced.records()
    assert sorted(_levels(records)) == [
        ("LangGraph", "ERROR", "ValueError: bad input"), ("broken", "ERROR", "ValueError: bad input"),
        ("on_time", "ERROR", "TimeoutError: upstream timed out"), ("own", "ERROR", "TimeoutError: upstream timed out"),
        ("slow", *CANCELLED)]
    _nothing_open()
