"""MCP review 17: a server's observation ends with what the client gets. The SDK shapes a handler's
result for the wire only after the handler has returned; a result it cannot send (a malformed dict,
a value of a type it does not take) is answered as an error, which fails the server's observation
too, as it fails the caller's and the SDK's own server span."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from mcp.server.lowlevel import Server
from mcp.server.runner import ServerRunner
from mcp.shared.exceptions import MCPError

import autotrace
from tests.helpers import shape, unordered
from tests.test_mcp import _install

_TOOLS = ("good", "malformed", "plain")


async def _call_tool(ctx: Any, params: types.CallToolRequestParams) -> Any:
    if params.name == "good":
        return types.CallToolResult(content=[types.TextContent(text="fine")])
    if params.name == "malformed":  # a text block without its text
        return {"content": [{"type": "text"}]}
    return "plain"  # no result type at all


async def _list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[types.Tool(name=n, input_schema={"type": "object"}) for n in _TOOLS])


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_a_result_the_sdk_cannot_send_fails_the_servers_observation(tmp_path: Path, mode: str) -> None:
    traced = _install(tmp_path)
    server = Server("shapes", on_call_tool=_call_tool, on_list_tools=_list_tools)

    async def turn() -> tuple[str, list[str]]:
        outcomes = []
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as root:
            async with Client(server, mode=mode) as client:
                for name in _TOOLS:
                    try:
                        result = await client.call_tool(name, {})
                        outcomes.append(result.content[0].text)
                    except MCPError as error:
                        outcomes.append(error.error.message)
        return root.trace_id, outcomes

    trace_id, outcomes = asyncio.run(turn())
    plain_answer = "Internal server error" if mode == "auto" else "handler returned str; expected BaseModel, dict, or None"
    assert outcomes == ["fine", "Handler returned an invalid result", plain_answer]
    records = traced.trace(trace_id)
    served = {r["name"]: (r["level"], r["status_message"], r["output"]) for r in records if r["name"] in _TOOLS}
    assert served == {
        "good": ("DEFAULT", None, "fine"),
        "malformed": ("ERROR", "MCPError: Handler returned an invalid result", None),
        "plain": ("ERROR", "TypeError: handler returned str; expected BaseModel, dict, or None", None),
    }
    calls = {r["name"]: r["level"] for r in records if r["name"].startswith("mcp.call_tool")}
    assert calls == {"mcp.call_tool good": "DEFAULT", "mcp.call_tool malformed": "ERROR", "mcp.call_tool plain": "ERROR"}

    def served_by(name: str) -> tuple[str, str, list[Any]]:
        return ("tool", f"tools/call {name}", [("tool", name, [])])

    if mode == "auto":  # in process, no JSON-RPC: the SDK's server spans alone
        assert unordered(shape(records)) == unordered([("chain", "turn", [
            ("span", "server/discover", []),
            ("tool", "mcp.call_tool good", [served_by("good"), ("span", "tools/list", [])]),
            ("tool", "mcp.call_tool malformed", [served_by("malformed")]),
            ("tool", "mcp.call_tool plain", [served_by("plain")])])])
    else:
        assert unordered(shape(records)) == unordered([("chain", "turn", [
            ("span", "MCP send initialize", [("span", "initialize", [])]),
            ("span", "notifications/initialized", []),
            ("tool", "mcp.call_tool good", [("span", "MCP send tools/call good", [served_by("good")]),
                                            ("span", "MCP send tools/list", [("span", "tools/list", [])])]),
            ("tool", "mcp.call_tool malformed", [("span", "MCP send tools/call malformed", [served_by("malformed")])]),
            ("tool", "mcp.call_tool plain", [("span", "MCP send tools/call plain", [served_by("plain")])])])])


def test_uninstall_restores_what_answers_a_servers_requests(tmp_path: Path) -> None:
    original = ServerRunner.__dict__["_on_request"]
    _install(tmp_path)
    assert ServerRunner.__dict__["_on_request"] is not original
    autotrace.uninstall()
    assert ServerRunner.__dict__["_on_request"] is original
