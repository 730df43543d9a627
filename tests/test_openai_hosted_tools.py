"""A Responses reply whose model used hosted tools (a web or file search, an MCP server's tool)
records its output items, not only its text: the search queries and results, the MCP call's
arguments, output and error are where an answer went wrong. The real SDK against the loopback fake."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

WEB_SEARCH = {"type": "web_search_call", "id": "ws_1", "status": "completed",
              "action": {"type": "search", "query": "refund policy acme"}}
FILE_SEARCH = {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": ["refund window"],
               "results": [{"file_id": "file-refunds", "filename": "refunds.md", "score": 0.91,
                            "text": "Refunds are issued within 5 business days.", "attributes": {}}]}
MCP_FAILED = {"type": "mcp_call", "id": "mcp_1", "server_label": "crm", "name": "lookup_order",
              "arguments": '{"order_id": "o-7"}', "output": None, "error": "order service unavailable"}


def _items(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [{key: value for key, value in item.items() if value is not None} for item in record["output"]]


@pytest.mark.parametrize("stream", [False, True], ids=["parsed", "streamed"])
def test_the_items_of_hosted_tools_are_recorded_with_the_message(traced: Traced, client: openai.OpenAI,
                                                                 fake: FakeOpenAI, stream: bool) -> None:
    fake.script(reply="Refunds take 5 business days.", hosted=[WEB_SEARCH, FILE_SEARCH, MCP_FAILED])
    tools = [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}]
    if stream:
        for _ in client.responses.create(model="gpt-5.4", input="refund?", tools=tools, stream=True):
            pass
    else:
        response = client.responses.create(model="gpt-5.4", input="refund?", tools=tools)
        assert response.output_text == "Refunds take 5 business days."  # what the caller gets, untouched
    (record,) = traced.records()
    items = _items(record)
    assert [item["type"] for item in items] == ["web_search_call", "file_search_call", "mcp_call", "message"]
    assert items[0]["action"] == {"type": "search", "query": "refund policy acme"}
    assert items[1]["queries"] == ["refund window"] and items[1]["results"][0]["file_id"] == "file-refunds"
    assert items[2]["error"] == "order service unavailable" and items[2]["arguments"] == '{"order_id": "o-7"}'
    assert items[3]["content"][0]["text"] == "Refunds take 5 business days."
    # the reply came: the failed MCP call makes the generation a warning, not an error
    assert (record["level"], record["status_message"]) == (
        "WARNING", "mcp_call lookup_order failed: order service unavailable")


def test_hosted_tools_that_worked_leave_the_level_alone(traced: Traced, client: openai.OpenAI,
                                                       fake: FakeOpenAI) -> None:
    fake.script(reply="Refunds take 5 business days.", hosted=[WEB_SEARCH, {**MCP_FAILED, "error": None,
                                                                            "output": "o-7: shipped"}])
    client.responses.create(model="gpt-5.4", input="refund?")
    (record,) = traced.records()
    assert record["level"] == "DEFAULT" and record.get("status_message") is None
    assert [item["type"] for item in record["output"]] == ["web_search_call", "mcp_call", "message"]


def test_a_failed_search_is_named(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply="I could not search.", hosted=[{**WEB_SEARCH, "status": "failed"}])
    client.responses.create(model="gpt-5.4", input="refund?")
    (record,) = traced.records()
    assert (record["level"], record["status_message"]) == ("WARNING", "web_search_call failed: failed")


def test_a_reply_with_no_tool_at_work_records_its_text(traced: Traced, client: openai.OpenAI,
                                                      fake: FakeOpenAI) -> None:
    fake.script(reply="Refunds take 5 business days.")
    client.responses.create(model="gpt-5.4", input="refund?", tools=[{"type": "web_search"}])
    (record,) = traced.records()
    assert record["output"] == "Refunds take 5 business days."
