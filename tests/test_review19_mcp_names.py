"""MCP review 19: a name the specification allows is still the client's. An ``MCPServer`` knows its
tools and prompts: a call naming one it does not have names neither the SDK's server span nor
autotrace's observation after it (a client calling random valid names made a span name each)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from tests.test_mcp import _install


def _server() -> MCPServer:
    server = MCPServer("known")

    @server.tool()
    def forecast(city: str) -> str:
        return f"sunny in {city}"

    @server.prompt()
    def greet(who: str) -> str:
        return f"hi {who}"

    return server


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_a_tool_or_prompt_the_server_does_not_have_names_no_span(tmp_path: Path, mode: str) -> None:
    traced = _install(tmp_path)
    server = _server()
    answers: list[object] = []

    async def run() -> None:
        async with Client(server, mode=mode) as client:
            answers.append((await client.call_tool("forecast", {"city": "Oslo"})).is_error)
            for i in range(3):
                result = await client.call_tool(f"random_{i}", {})
                answers.append((result.is_error, result.content[0].text))
            server.add_tool(lambda: "late", name="late")  # added while serving: the server's own
            answers.append((await client.call_tool("late", {})).content[0].text)
            answers.append((await client.get_prompt("greet", {"who": "Ada"})).messages[0].content.text)
            with pytest.raises(MCPError) as error:
                await client.get_prompt("random_prompt", {})
            answers.append(error.value.error.message)

    asyncio.run(run())
    assert answers == [False, (True, "Unknown tool: random_0"), (True, "Unknown tool: random_1"),
                       (True, "Unknown tool: random_2"), "late", "hi Ada",
                       "Unknown prompt: random_prompt" if mode == "legacy" else "Internal server error"]  # the SDK's
    records = traced.records()
    served = sorted((r["name"], r["level"]) for r in records if not r["name"].startswith(
        ("mcp.", "MCP send", "tools/list", "prompts/list", "server/", "initialize", "notifications/", "render ")))
    assert served == sorted([
        ("tools/call forecast", "DEFAULT"), ("forecast", "DEFAULT"),  # the SDK's span, then autotrace's
        *[("tools/call", "ERROR")] * 6,  # three unknown tools: neither names its span
        ("tools/call late", "DEFAULT"), ("late", "DEFAULT"),
        ("prompts/get greet", "DEFAULT"), ("greet", "DEFAULT"),
        ("prompts/get", "ERROR"), ("prompts/get", "ERROR"),
    ])
    unknown = [r["metadata"].get("tool_name") for r in records if r["name"] == "tools/call"]
    assert sorted(unknown, key=str) == [None, None, None, "random_0", "random_1", "random_2"]  # autotrace's keep it
    clients = sorted(r["name"] for r in records if r["name"].startswith("mcp."))  # the client names its own
    assert clients == ["mcp.call_tool forecast", "mcp.call_tool late", "mcp.call_tool random_0",
                       "mcp.call_tool random_1", "mcp.call_tool random_2", "mcp.get_prompt greet",
                       "mcp.get_prompt random_prompt"]
