"""LangGraph review 18 (real langgraph): an interrupt's values are content (the draft a human
reviews): with content capture off, the runs it ends say ``GraphInterrupt`` without them."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt

import autotrace
from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain")


class Draft(TypedDict):
    x: str


def _review(state: Draft) -> Draft:
    return {"x": interrupt({"draft": "Dear Ms. Smith, about your claim"})}


def _app() -> Any:
    inner = StateGraph(Draft)
    inner.add_node("review", _review)
    inner.add_edge(START, "review")
    outer = StateGraph(Draft)
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "sub")
    return outer.compile(checkpointer=InMemorySaver())


def test_an_interrupts_values_are_not_recorded_with_capture_off(traced: Traced) -> None:
    app = _app()
    config = {"configurable": {"thread_id": "t-priv"}}
    with autotrace.content_capture(False):
        paused = app.invoke({"x": "q"}, config)
        assert paused["__interrupt__"][0].value == {"draft": "Dear Ms. Smith, about your claim"}
        assert app.invoke(Command(resume="sent"), config) == {"x": "sent"}
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "sub", [("chain", "sub", [("chain", "review", [])])])]),
                              ("agent", "LangGraph", [("chain", "sub", [("chain", "sub", [("chain", "review", [])])])])]
    assert [(r["name"], r["level"], r["status_message"]) for r in records] == [
        ("LangGraph", "DEFAULT", None), ("sub", "WARNING", "GraphInterrupt"), ("sub", "WARNING", "GraphInterrupt"),
        ("review", "WARNING", "GraphInterrupt"),  # was "GraphInterrupt: {'draft': 'Dear Ms. Smith, ...'}"
        ("LangGraph", "DEFAULT", None), ("sub", "DEFAULT", None), ("sub", "DEFAULT", None), ("review", "DEFAULT", None)]
    assert all(r["input"] is None and r["output"] is None for r in records)
    _nothing_open()


def test_an_interrupts_values_are_its_message_with_capture_on(traced: Traced) -> None:
    assert _app().invoke({"x": "q"}, {"configurable": {"thread_id": "t-on"}})["x"] == "q"
    assert [r["status_message"] for r in traced.records()] == [None] + [
        "GraphInterrupt: {'draft': 'Dear Ms. Smith, about your claim'}"] * 3
    _nothing_open()
