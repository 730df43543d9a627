"""LangChain's custom events, run tags and tool artifacts, with real langchain-core runnables."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.callbacks import (
    CallbackManagerForRetrieverRun,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import create_retriever_tool, tool

import autotrace
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain")


def _call(name: str, **args: Any) -> dict[str, Any]:
    """A tool call as a model makes it: the tool answers with a ToolMessage."""
    return {"type": "tool_call", "id": "call-1", "name": name, "args": args}


# -- custom events ------------------------------------------------------------------------------------

def test_custom_events_are_events_under_the_run_that_dispatched_them(traced: Traced) -> None:
    def step(x: int) -> int:
        dispatch_custom_event("progress", {"done": 1, "of": 2})
        return x + 1

    async def astep(x: int) -> int:
        await adispatch_custom_event("aprogress", {"done": 2, "of": 2})
        return x * 10

    chain = RunnableLambda(step, name="step") | RunnableLambda(astep, name="astep")
    assert asyncio.run(chain.ainvoke(1)) == 20
    assert RunnableLambda(step, name="step").invoke(5) == 6
    records = traced.records()
    assert shape(records) == [("chain", "RunnableSequence", [("chain", "step", [("event", "progress", [])]),
                                                             ("chain", "astep", [("event", "aprogress", [])])]),
                              ("chain", "step", [("event", "progress", [])])]
    events = [r for r in records if r["type"] == "event"]
    assert [(r["input"], r["output"], r["level"]) for r in events] == [
        ({"done": 1, "of": 2}, None, "DEFAULT"), ({"done": 2, "of": 2}, None, "DEFAULT"), ({"done": 1, "of": 2}, None, "DEFAULT")]


def test_a_custom_event_in_a_langgraph_node_is_under_the_node_and_its_data_follows_content_capture(
        traced: Traced) -> None:
    pytest.importorskip("langgraph")
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        seen: Annotated[list[str], operator.add]

    def node(state: State) -> dict[str, Any]:
        dispatch_custom_event("checkpoint", {"secret": "s3"})
        return {"seen": ["a"]}

    graph = StateGraph(State)
    graph.add_node("a", node)
    graph.add_edge(START, "a")
    graph.add_edge("a", END)
    app = graph.compile()
    with autotrace.content_capture(False):
        assert app.invoke({"seen": []}) == {"seen": ["a"]}
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "a", [("event", "checkpoint", [])])])]
    assert [r["input"] for r in records if r["type"] == "event"] == [None]


# -- tags ---------------------------------------------------------------------------------------------

def test_a_runs_own_tags_are_its_metadata_and_a_root_runs_tags_the_traces_on_every_span(traced: Traced) -> None:
    """LangChain gives a run its parent's tags and its step's (``seq:step:2``): those are no run's
    own. The root run's tags are the trace's, as Langfuse's own handler takes them, merged with
    ``langfuse_tags`` and ``trace_attributes``' tags (which ``langfuse_tags`` used to replace)."""
    model = FakeListChatModel(responses=["ok"]).with_config(tags=["model-tag"])
    chain = RunnableLambda(lambda q: f"say {q}", name="prompt") | model
    with autotrace.trace_attributes(tags=["request"]):
        chain.invoke("hi", config={"tags": ["nightly", "eval"], "metadata": {"langfuse_tags": ["lf"]}})
    records = traced.records()
    assert shape(records) == [("chain", "RunnableSequence", [("chain", "prompt", []),
                                                             ("generation", "FakeListChatModel", [])])]
    assert [(r["name"], r["metadata"].get("tags")) for r in records] == [
        ("RunnableSequence", ["nightly", "eval"]), ("prompt", None), ("FakeListChatModel", ["model-tag"])]
    assert [r["tags"] for r in records] == [["request", "lf", "nightly", "eval"]] * 3


def test_langfuse_tags_alone_add_to_the_trace_attributes_tags(traced: Traced) -> None:
    with autotrace.trace_attributes(tags=["request"]):
        RunnableLambda(lambda x: x, name="echo").invoke(1, config={"metadata": {"langfuse_tags": "vip"}})
    (record,) = traced.records()
    assert (record["tags"], record["metadata"]) == (["request", "vip"], {})


def test_untagged_runs_keep_the_trace_attributes_tags_and_record_no_tags(traced: Traced) -> None:
    with autotrace.trace_attributes(tags=["request"]):
        (RunnableLambda(lambda x: x + 1, name="a") | RunnableLambda(lambda x: x * 2, name="b")).invoke(1)
    records = traced.records()
    assert [(r["name"], r["tags"], r["metadata"]) for r in records] == [
        ("RunnableSequence", ["request"], {}), ("a", ["request"], {}), ("b", ["request"], {})]


# -- tool artifacts -----------------------------------------------------------------------------------

@tool(response_format="content_and_artifact")
def search(query: str) -> tuple[str, dict[str, Any]]:
    """Search the catalogue."""
    return f"2 hits for {query}", {"ids": [7, 9], "query": query}


def test_a_tool_calls_artifact_is_recorded_beside_its_content(traced: Traced) -> None:
    message = search.invoke(_call("search", query="lamps"))
    assert (message.content, message.artifact) == ("2 hits for lamps", {"ids": [7, 9], "query": "lamps"})
    assert search.invoke({"query": "desks"}) == "2 hits for desks"  # no tool call: LangChain drops the artifact
    first, second = traced.records()
    assert first["output"] == {"content": "2 hits for lamps", "artifact": {"ids": [7, 9], "query": "lamps"}}
    assert second["output"] == "2 hits for desks"
    assert (first["type"], first["level"], second["level"]) == ("tool", "DEFAULT", "DEFAULT")


class _Shelf(BaseRetriever):
    count: int

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [Document(page_content=f"{query} {i} " + "x" * 220, id=str(i), metadata={"shelf": i})
                for i in range(self.count)]


def test_a_retriever_tools_document_artifact_is_recorded_as_documents_bounded(traced: Traced) -> None:
    autotrace.reset_stats()
    shelf = create_retriever_tool(_Shelf(count=130), "shelf", "Find books.", response_format="content_and_artifact")
    message = shelf.invoke(_call("shelf", query="maps"))
    assert len(message.artifact) == 130
    records = traced.records()
    assert shape(records) == [("tool", "shelf", [("retriever", "_Shelf", [])])]
    output = records[0]["output"]
    assert output["artifact_items"] == 130 and len(output["artifact"]) == 100
    assert output["artifact"][1] == {"id": "1", "content": ("maps 1 " + "x" * 220)[:200], "metadata": {"shelf": 1}}
    assert output["content"].startswith("maps 0 ")
    assert autotrace.stats()["tool_artifact_items_truncated"] == 30


def test_a_tool_artifact_is_content_left_out_when_capture_is_off(traced: Traced) -> None:
    with autotrace.content_capture(False):
        search.invoke(_call("search", query="lamps"))
    (record,) = traced.records()
    assert (record["output"], record["input"]) == (None, None)
