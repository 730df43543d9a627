"""Critical review 18 (real langchain-core): a tool's result is noted as media only in its media
parts; a list of records a tool returns (search results with long texts, a ``data`` field) and a
``json`` block of a ``ToolMessage`` are recorded as they are, not taken for base64 payloads."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from langchain_core.tools import tool

from tests.helpers import Traced

pytestmark = pytest.mark.integrations("langchain")

ARTICLE = "The quarterly report says revenue grew. " * 60  # 2,400 chars of text
PNG = base64.b64encode(b"\x89PNG" + bytes(3000)).decode()
RESULTS = [{"url": "https://x.test/a", "content": ARTICLE}, {"id": 7, "data": "row seven"}]


@tool
def search(query: str) -> list[dict[str, Any]]:
    """Search results."""
    return RESULTS


@tool
def lookup(key: str) -> list[dict[str, Any]]:
    """A JSON record and a chart."""
    return [{"type": "json", "json": {"data": "a value", "key": key}},
            {"type": "image", "base64": PNG, "mime_type": "image/png"}]


def test_a_tools_records_and_json_blocks_are_kept_and_only_its_media_noted(traced: Traced) -> None:
    assert search.invoke({"query": "revenue"}) == RESULTS
    call = {"name": "lookup", "args": {"key": "k"}, "id": "c1", "type": "tool_call"}
    assert lookup.invoke(call).content[0] == {"type": "json", "json": {"data": "a value", "key": "k"}}
    searched, looked_up = traced.records()
    assert (searched["name"], searched["output"]) == ("search", RESULTS)
    assert looked_up["output"] == [{"type": "json", "json": {"data": "a value", "key": "k"}},
                                   {"type": "image", "base64": f"<base64, {len(PNG)} chars>",
                                    "mime_type": "image/png"}]
