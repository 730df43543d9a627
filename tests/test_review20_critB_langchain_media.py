"""Chain records note inline images where review 20's walk missed them: a LangGraph node's Pydantic or
dataclass state (recorded in full before) and a data URL inside a text (a markdown image in a prompt
variable); a long graph state whose messages have parts but no media is recorded as it is, without a
dump of each message at every node's start and end."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel

from autotrace.integrations.langchain_convert import chain_value
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("langchain")

PAYLOAD = "iVBORw0KGgo" * 400
IMAGE = "data:image/png;base64," + PAYLOAD
NOTE = f"<image/png base64, {len(IMAGE)} chars>"
NOTED_PART = {"type": "image_url", "image_url": {"url": NOTE}}


def _add(left: list[Any], right: list[Any]) -> list[Any]:
    return left + right


class PydanticState(BaseModel):
    messages: Annotated[list[AnyMessage], _add]
    topic: str | None = None


@dataclasses.dataclass
class DataclassState:
    messages: Annotated[list[AnyMessage], _add]


@pytest.mark.parametrize("state", [PydanticState, DataclassState])
def test_a_nodes_pydantic_or_dataclass_state_notes_the_image(traced: Traced, state: type) -> None:
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(state)
    graph.add_node("answer", lambda given: {"messages": [AIMessage(content="a hinge")]})
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    asked = HumanMessage(content=[{"type": "text", "text": "what is it?"},
                                  {"type": "image_url", "image_url": {"url": IMAGE}}])
    result = graph.compile().invoke({"messages": [asked]})
    assert result["messages"][0].content[1]["image_url"]["url"] == IMAGE  # the application's own, unchanged
    records = traced.records()
    node = next(r for r in records if r["name"] == "answer")
    assert node["input"] == {"messages": [{"content": [{"type": "text", "text": "what is it?"}, NOTED_PART],
                                           "additional_kwargs": {}, "response_metadata": {}, "type": "human"}]}
    for record in records:
        assert PAYLOAD[:64] not in json.dumps([record["input"], record["output"]]), record["name"]


def test_a_data_url_inside_a_text_is_noted(traced: Traced) -> None:
    value = {"q": f"Describe ![chart]({IMAGE}) and <img src=\"{IMAGE}\">", "items": [f"see {IMAGE}", "data: 3 rows"]}
    assert RunnableLambda(lambda given: given).invoke(value) is value
    record = traced.one()
    expected = {"q": f"Describe ![chart]({NOTE}) and <img src=\"{NOTE}\">", "items": [f"see {NOTE}", "data: 3 rows"]}
    assert record["input"] == record["output"] == expected


def test_messages_with_parts_but_no_media_are_not_copied() -> None:
    """A long state of replies given as parts (ChatAnthropic's text and tool_use blocks): no dump, no copy."""
    messages: list[Any] = []
    for index in range(50):
        messages.append(HumanMessage(content=f"question {index}"))
        messages.append(AIMessage(content=[{"type": "text", "text": f"answer {index}"},
                                           {"type": "tool_use", "id": f"t{index}", "name": "look", "input": {}}]))
    state = {"messages": messages}
    assert chain_value(state) is state
    with_image = {"messages": [*messages, HumanMessage(content=[{"type": "image_url", "image_url": {"url": IMAGE}}])]}
    noted = chain_value(with_image)
    assert noted["messages"][:100] == messages  # the parts without media as they are
    assert noted["messages"][100] == {"content": [NOTED_PART], "additional_kwargs": {}, "response_metadata": {},
                                      "type": "human"}
