"""Critique of review 21's media commits (real langchain-core): a LangChain message's content mixes
plain strings with its blocks, and a data URL in a string part was recorded whole (the same tool
result's own run noted it, its ``ToolMessage`` sent back to the model did not); and a tool's text
that only starts with ``data:`` (``DATA:OK``, ``data:42``, an event stream's ``data:{...}``) was
taken for a data URL and recorded as a note, not as the text it is."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from tests.helpers import Traced

pytestmark = pytest.mark.integrations("langchain")

PAYLOAD = base64.b64encode(b"\x89PNG\r\n" + bytes(range(256)) * 8).decode()  # 2740 chars
URL = "data:image/png;base64," + PAYLOAD
NOTE = f"<image/png base64, {len(URL)} chars>"


def test_a_data_url_in_a_string_part_of_a_messages_content_is_noted(traced: Traced) -> None:
    asked: list[Any] = [
        HumanMessage(content=["Look: " + URL, {"type": "text", "text": "what is it?"}]),
        AIMessage(content="", tool_calls=[{"name": "screenshot", "args": {}, "id": "c1"}]),
        ToolMessage(content=["Screenshot taken: " + URL, "done"], tool_call_id="c1")]
    FakeListChatModel(responses=["a hinge"]).invoke(asked)
    assert asked[2].content[0] == "Screenshot taken: " + URL  # the application's own, unchanged
    (record,) = traced.records()
    assert record["input"] == [
        {"role": "user", "content": ["Look: " + NOTE, {"type": "text", "text": "what is it?"}]},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "screenshot", "args": {}, "id": "c1",
                                                             "type": "tool_call"}]},
        {"role": "tool", "content": ["Screenshot taken: " + NOTE, "done"], "tool_call_id": "c1"}]
    assert PAYLOAD[:48] not in json.dumps(record["input"])


def test_a_tool_results_text_that_starts_with_data_is_kept_and_a_data_url_noted(traced: Traced) -> None:
    texts = ['data:{"id":1,"ok":true}', "DATA:OK", "data:42", "Data:[1, 2]"]
    urls = ["data:text/plain,hello", "DATA:image/png;BASE64," + PAYLOAD, "data:,empty"]
    FakeListChatModel(responses=["ok"]).invoke([HumanMessage(content=[
        {"type": "tool_result", "tool_use_id": f"t{index}", "content": content}
        for index, content in enumerate(texts + urls)])])
    (record,) = traced.records()
    recorded = [part["content"] for part in record["input"][0]["content"]]
    assert recorded == [*texts, "<text/plain, 21 chars>", f"<image/png BASE64, {len(URL)} chars>", "<data, 11 chars>"]
