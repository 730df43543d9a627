"""The inline media of messages a chain's value holds below its top level are noted, as a
generation's input's are: a prompt template's output (a ``ChatPromptValue``), ``(role, parts)``
pairs, and the state a LangGraph ``Send`` routes to a ``ToolNode`` (``{"state": {"messages": ...}}``),
whose image was recorded in full in a ReAct agent's ``tools`` node input and router output."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain")

PAYLOAD = "iVBORw0KGgo" * 400
IMAGE = "data:image/png;base64," + PAYLOAD
NOTE = f"<image/png base64, {len(IMAGE)} chars>"
NOTED_PART = {"type": "image_url", "image_url": {"url": NOTE}}


def _no_payload(records: list[dict[str, Any]]) -> None:
    for record in records:
        for field in ("input", "output"):
            assert PAYLOAD[:64] not in json.dumps(record[field]), (record["name"], field)


def test_a_prompt_templates_image_is_noted_in_its_output(traced: Traced) -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("user", [{"type": "text", "text": "{q}"}, {"type": "image_url", "image_url": {"url": "{image}"}}])])
    chain = prompt | FakeListChatModel(responses=["a hinge"]) | StrOutputParser()
    assert chain.invoke({"q": "what is it?", "image": IMAGE}) == "a hinge"
    records = traced.records()
    by_name = {r["name"]: r for r in records}
    assert by_name["ChatPromptTemplate"]["output"] == {"messages": [
        {"content": [{"type": "text", "text": "what is it?"}, NOTED_PART], "additional_kwargs": {},
         "response_metadata": {}, "type": "human"}]}
    assert by_name["FakeListChatModel"]["input"] == [
        {"role": "user", "content": [{"type": "text", "text": "what is it?"}, NOTED_PART]}]
    # the template's variable, a data URL, is noted as well
    assert by_name["ChatPromptTemplate"]["input"] == by_name["RunnableSequence"]["input"] == {
        "q": "what is it?", "image": NOTE}
    _no_payload(records)


def test_data_urls_are_noted_in_a_chains_values_and_other_text_is_kept(traced: Traced) -> None:
    value = {"images": [IMAGE, "https://example.com/a.png"], "note": "data: 3 rows", "page": IMAGE}
    assert RunnableLambda(lambda given: given).invoke(value) is value
    record = traced.one()
    expected = {"images": [NOTE, "https://example.com/a.png"], "note": "data: 3 rows", "page": NOTE}
    assert record["input"] == record["output"] == expected


def test_role_and_parts_pairs_are_noted_in_a_chains_input(traced: Traced) -> None:
    given = [("user", [{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": IMAGE}}])]
    chain = RunnableLambda(lambda messages: messages) | FakeListChatModel(responses=["ok"])
    assert chain.invoke(given).content == "ok"
    assert given[0][1][1]["image_url"]["url"] == IMAGE  # the application's own, unchanged
    records = traced.records()
    noted = [["user", [{"type": "text", "text": "what?"}, NOTED_PART]]]
    assert {r["name"]: r["input"] for r in records if r["type"] == "chain"} == {
        "RunnableSequence": noted, "RunnableLambda": noted}
    _no_payload(records)


def test_a_react_agents_tool_node_input_and_router_output_note_the_image(traced: Traced) -> None:
    from langgraph.prebuilt import create_react_agent

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    asked = HumanMessage(content=[{"type": "text", "text": "weather here?"},
                                  {"type": "image_url", "image_url": {"url": IMAGE}}])
    with FakeOpenAI() as fake:
        fake.script(tool_calls=[{"name": "weather", "arguments": '{"city": "Paris"}'}])
        fake.script(reply="It is sunny")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # create_react_agent's deprecation
            agent = create_react_agent(ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="sk-test",
                                                  max_retries=0), [weather])
        result = agent.invoke({"messages": [asked]})
    assert result["messages"][-1].content == "It is sunny"
    assert result["messages"][0].content[1]["image_url"]["url"] == IMAGE  # the application's own, unchanged
    records = traced.records()
    assert shape(records)[0][2][1] == ("chain", "tools", [("tool", "weather", [])])
    tools = next(r for r in records if r["name"] == "tools")
    assert tools["input"]["tool_call"] == {"name": "weather", "args": {"city": "Paris"}, "id": "call_0",
                                           "type": "tool_call"}
    assert tools["input"]["state"]["messages"][0]["content"] == [{"type": "text", "text": "weather here?"}, NOTED_PART]
    router = next(r for r in records if r["name"] == "should_continue" and r["output"] != "__end__")
    (send,) = router["output"]
    assert send["node"] == "tools" and send["arg"]["tool_call"]["id"] == "call_0"
    assert send["arg"]["state"]["messages"][0]["content"] == [{"type": "text", "text": "weather here?"}, NOTED_PART]
    _no_payload(records)
