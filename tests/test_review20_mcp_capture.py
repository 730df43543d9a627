"""MCP review 20: without content capture, a tool result that reports an error (``isError``) is
not recorded in the status message either. Its text is the tool's output, left out as the output
is; the observation still fails, with a fixed message, on both sides."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from mcp.server.lowlevel import Server

import autotrace
from tests.test_mcp import _by_name, _install

_TEXT = "no record for patient Jane Roe, born 1970-01-02"


async def _call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=_TEXT)], is_error=True)


async def _list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[types.Tool(name="lookup", input_schema={"type": "object"})])


@pytest.mark.parametrize("capture", [True, False])
def test_an_error_results_text_is_its_status_only_while_content_is_captured(tmp_path: Path, capture: bool) -> None:
    traced = _install(tmp_path, capture_content=capture)
    server = Server("records", on_call_tool=_call_tool, on_list_tools=_list_tools)

    async def turn() -> tuple[str, types.CallToolResult]:
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as root:
            async with Client(server, mode="legacy") as client:
                return root.trace_id, await client.call_tool("lookup", {"name": "Jane Roe"})

    trace_id, result = asyncio.run(turn())
    assert (result.is_error, result.content) == (True, [types.TextContent(text=_TEXT)])  # the caller's, unchanged
    records = traced.trace(trace_id)
    recorded = [(r["level"], r["status_message"], r["input"], r["output"])
                for r in (_by_name(records, "mcp.call_tool lookup"), _by_name(records, "lookup"))]
    if capture:
        assert recorded == [("ERROR", _TEXT, {"name": "Jane Roe"}, _TEXT)] * 2
    else:
        assert recorded == [("ERROR", "the tool reported an error", None, None)] * 2
