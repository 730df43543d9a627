"""A chain's or graph's recorded input and output note the inline media of the messages in them
(a base64 image in a graph state's ``messages``), as a generation's input does: one image neither
fills the recorded value to its size limit nor cuts off the conversation after it."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, MessagesState, StateGraph

from tests.helpers import Traced

pytestmark = pytest.mark.integrations("langchain")

IMAGE = "data:image/png;base64," + "iVBORw0KGgo" * 2000
NOTE = f"<image/png base64, {len(IMAGE)} chars>"


def _asking_with_an_image() -> HumanMessage:
    return HumanMessage(content=[{"type": "text", "text": "what is broken here?"},
                                 {"type": "image_url", "image_url": {"url": IMAGE}}])


def test_a_graph_state_s_image_is_noted_in_the_graph_and_node_records(traced: Traced) -> None:
    llm = FakeListChatModel(responses=["the hinge"])

    def look(state: MessagesState) -> dict[str, Any]:
        return {"messages": [llm.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("look", look)
    graph.add_edge(START, "look")
    graph.add_edge("look", END)
    result = graph.compile().invoke({"messages": [_asking_with_an_image()]})
    assert result["messages"][0].content[1]["image_url"]["url"] == IMAGE  # the application's own, unchanged
    assert result["messages"][-1].content == "the hinge"
    by_name = {r["name"]: r for r in traced.records()}
    for name in ("LangGraph", "look"):
        (asked, *rest) = by_name[name]["input"]["messages"]
        assert asked["content"] == [{"type": "text", "text": "what is broken here?"},
                                    {"type": "image_url", "image_url": {"url": NOTE}}]
        assert rest == []
    (asked, answered) = by_name["LangGraph"]["output"]["messages"]
    assert asked["content"][1]["image_url"]["url"] == NOTE
    assert (answered["type"], answered["content"]) == ("ai", "the hinge")  # after the image: kept whole


def test_a_chain_s_text_messages_are_recorded_as_they_were(traced: Traced) -> None:
    """No media: the messages are recorded as before (the value itself, serialised at export)."""
    chain = RunnableLambda(lambda messages: AIMessage(content="ok")).with_config(run_name="plain")
    chain.invoke([HumanMessage(content="hello"), {"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    record = traced.one()
    assert [m.get("content") for m in record["input"]] == ["hello", [{"type": "text", "text": "hi"}]]
    assert record["output"]["content"] == "ok"


def test_a_dict_message_s_image_is_noted_in_a_chain_s_input(traced: Traced) -> None:
    chain = RunnableLambda(lambda state: "seen").with_config(run_name="describe")
    chain.invoke({"question": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMAGE}}]}],
                  "k": 3})
    record = traced.one()
    assert record["input"] == {"question": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": NOTE}}]}], "k": 3}
    assert record["output"] == "seen"


def test_a_document_given_as_text_keeps_its_text_and_one_in_base64_is_noted(traced: Traced) -> None:
    """Anthropic's document parts: a ``text`` source's ``data`` is the document's text, a
    ``base64`` source's is a payload."""
    pdf = "JVBERi0xLjcK" * 200
    llm = FakeListChatModel(responses=["two clauses"])
    llm.invoke([HumanMessage(content=[
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Clause 1. Clause 2."}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}},
        {"type": "text", "text": "how many clauses?"}])])
    (message,) = traced.one()["input"]
    assert message["content"] == [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Clause 1. Clause 2."}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": f"<base64, {len(pdf)} chars>"}},
        {"type": "text", "text": "how many clauses?"}]
