"""MCP review: a lowlevel handler that answers with ``ErrorData`` (the SDK sends it as an error)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

import autotrace
from tests.helpers import shape, unordered
from tests.test_mcp import _install


def _refusing() -> Server:
    """A lowlevel ``Server`` whose tool, resource and prompt handlers return ``ErrorData``."""

    async def refuse(ctx: Any, params: Any) -> types.ErrorData:
        return types.ErrorData(code=types.INVALID_PARAMS, message="no such city")

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name="fail", input_schema={"type": "object"})])

    return Server("refusing", on_call_tool=refuse, on_list_tools=list_tools, on_read_resource=refuse,
                  on_get_prompt=refuse)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_a_handler_returning_error_data_is_an_error_on_both_sides(tmp_path: Path, mode: str) -> None:
    traced = _install(tmp_path)

    async def turn() -> tuple[str, list[str]]:
        errors = []
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as root:
            async with Client(_refusing(), mode=mode) as client:
                for request in (client.call_tool("fail", {}), client.read_resource("docs://a"),
                                client.get_prompt("greet", {})):
                    with pytest.raises(MCPError) as refused:
                        await request
                    errors.append(refused.value.error.message)
        return root.trace_id, errors

    trace_id, errors = asyncio.run(turn())
    assert errors == ["no such city"] * 3
    records = traced.trace(trace_id)
    served = [("tool", "fail", []), ("retriever", "resources/read", []), ("span", "greet", [])]
    if mode == "auto":
        expected = [("chain", "turn", [("span", "server/discover", []),
                                       ("tool", "mcp.call_tool fail", [("tool", "tools/call fail", [served[0]])]),
                                       ("retriever", "mcp.read_resource", [("span", "resources/read", [served[1]])]),
                                       ("span", "mcp.get_prompt greet", [("span", "prompts/get greet", [served[2]])])])]
        assert unordered(shape(records)) == unordered(expected)
    observed = [(r["type"], r["name"], r["level"], r["status_message"], r["output"]) for r in records
                if r["name"] in ("mcp.call_tool fail", "fail", "mcp.read_resource", "mcp.get_prompt greet", "greet")
                or (r["name"] == "resources/read" and r["type"] == "retriever")]
    assert observed == [
        ("tool", "mcp.call_tool fail", "ERROR", "MCPError: no such city", None),
        ("tool", "fail", "ERROR", "MCPError: no such city", None),
        ("retriever", "mcp.read_resource", "ERROR", "MCPError: no such city", None),
        ("retriever", "resources/read", "ERROR", "MCPError: no such city", None),
        ("span", "mcp.get_prompt greet", "ERROR", "MCPError: no such city", None),
        ("span", "greet", "ERROR", "MCPError: no such city", None),
    ]
