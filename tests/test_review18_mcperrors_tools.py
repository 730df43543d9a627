"""MCP review 18: a failing tool of an ``MCPServer``. The SDK answers what the tool raised as an
``isError`` result (a crash's text withheld) and logs the original; the tool's server observation
records that original (type, message, the exception event with its stack trace), the client gets
the same result as untraced, and the caller's observation keeps the result's text."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

import autotrace
from tests.test_mcp import _by_name, _install


def _server() -> MCPServer:
    server = MCPServer("weather")

    @server.tool()
    def broken(city: str) -> str:
        raise ValueError(f"no station in {city}")

    @server.tool()
    def refused(city: str) -> str:
        raise ToolError(f"no forecasts for {city}")

    @server.tool()
    async def relay(city: str) -> str:  # a nested tool that crashes: a crash of this one too
        return str(await server.call_tool("broken", {"city": city}))

    @server.tool()
    async def recovers(city: str) -> str:  # a nested tool's failure handled: no failure of this one
        try:
            await server.call_tool("broken", {"city": city})
        except ToolError:
            return "cloudy"
        return "?"

    return server


def _events(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["attributes"]["exception.type"], e["attributes"]["exception.message"]) for e in record["events"]]


async def _calls(server: MCPServer, mode: str) -> dict[str, types.CallToolResult]:
    async with Client(server, mode=mode) as client:
        return {name: await client.call_tool(name, {"city": "Oslo"}) for name in ("broken", "refused", "relay",
                                                                                 "recovers")}


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_a_failing_tool_records_what_it_raised_and_answers_as_untraced(tmp_path: Path, mode: str) -> None:
    untraced = asyncio.run(_calls(_server(), mode))
    traced = _install(tmp_path)

    async def turn() -> tuple[str, dict[str, types.CallToolResult]]:
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as root:
            return root.trace_id, await _calls(_server(), mode)

    trace_id, results = asyncio.run(turn())
    assert {name: result.model_dump() for name, result in results.items()} == {
        name: result.model_dump() for name, result in untraced.items()}
    assert [results[name].content[0].text for name in ("broken", "refused", "relay")] == [  # type: ignore[union-attr]
        "Error executing tool broken", "Error executing tool refused: no forecasts for Oslo",
        "Error executing tool relay: Error executing tool broken"]
    records = traced.trace(trace_id)
    served = {name: _by_name(records, name) for name in ("broken", "refused", "relay", "recovers")}
    assert {name: (r["level"], r["status_message"], r["output"], _events(r)) for name, r in served.items()} == {
        "broken": ("ERROR", "ValueError: no station in Oslo", "Error executing tool broken",
                   [("ValueError", "no station in Oslo")]),
        "refused": ("ERROR", "ToolError: no forecasts for Oslo", "Error executing tool refused: no forecasts for Oslo",
                    [("mcp.server.mcpserver.exceptions.ToolError", "no forecasts for Oslo")]),
        "relay": ("ERROR", "ValueError: no station in Oslo", "Error executing tool relay: Error executing tool broken",
                  [("ValueError", "no station in Oslo")]),
        "recovers": ("DEFAULT", None, {"result": "cloudy"}, []),
    }
    assert 'raise ValueError(f"no station in {city}")' in served["broken"]["events"][0]["attributes"][
        "exception.stacktrace"]
    client = _by_name(records, "mcp.call_tool broken")  # the caller knows only what it was answered
    assert (client["level"], client["status_message"], client["events"]) == (
        "ERROR", "Error executing tool broken", [])


def test_a_tool_called_outside_a_request_is_left_as_it_is(tmp_path: Path) -> None:
    _install(tmp_path)
    with pytest.raises(ToolError) as raised:
        asyncio.run(_server().call_tool("broken", {"city": "Oslo"}))
    assert (str(raised.value), type(raised.value.__cause__)) == ("Error executing tool broken", ValueError)
