"""MCP review 21: a name a client sends names no span of its own side either. The client's
observation was named ``mcp.call_tool <name>`` / ``mcp.get_prompt <name>`` and the SDK's client span
``MCP send <method> <name>`` with the name as the caller (or its LLM) gave it: any length, newlines,
terminal escapes. The server's span kept a name the specification allows for any method
(``ping <anything>``), though only a tool call or a prompt names something."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from mcp.server.lowlevel import Server
from mcp.shared import jsonrpc_dispatcher
from mcp.shared.exceptions import MCPError

import autotrace
from tests.test_mcp import _install
from tests.test_review18_mcp_names import _Custom

LONG, ESCAPED = "t" * 5000, "a\nb\x1b[31mred\u202e"


async def _call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text="ok")])


async def _list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[])


async def _get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    return types.GetPromptResult(messages=[])


def _server() -> Server:
    return Server("names", on_call_tool=_call_tool, on_list_tools=_list_tools, on_get_prompt=_get_prompt)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_the_client_names_its_call_only_with_a_name_the_specification_allows(tmp_path: Path, mode: str) -> None:
    traced = _install(tmp_path)
    answers: list[Any] = []

    async def run() -> None:
        async with Client(_server(), mode=mode) as client:
            for name in ("forecast", LONG, ESCAPED):
                answers.append((await client.call_tool(name, {})).content[0].text)
                answers.append((await client.get_prompt(name, {})).messages)

    asyncio.run(run())
    assert answers == ["ok", [], "ok", [], "ok", []]  # the caller's results, unchanged
    records = traced.records()
    calls = [(r["name"], r["metadata"].get("tool_name") or r["metadata"].get("mcp_prompt"))
             for r in records if r["name"].startswith("mcp.")]
    assert calls == [("mcp.call_tool forecast", "forecast"), ("mcp.get_prompt forecast", "forecast"),
                     ("mcp.call_tool", LONG), ("mcp.get_prompt", LONG),  # the name is kept as a value
                     ("mcp.call_tool", ESCAPED), ("mcp.get_prompt", ESCAPED)]
    sent = sorted(r["name"] for r in records if r["name"].startswith("MCP send ") and r["name"] != "MCP send initialize")
    assert sent == ([] if mode == "auto" else sorted([  # the SDK's client span (over JSON-RPC); tools/list: after each call (the tool is not listed)
        *["MCP send tools/list"] * 3, "MCP send tools/call forecast", "MCP send prompts/get forecast",
        "MCP send tools/call", "MCP send prompts/get", "MCP send tools/call", "MCP send prompts/get"]))
    assert autotrace.stats().get("attributes_truncated", 0) == 0  # nothing held long enough to be cut


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_a_request_naming_no_tool_or_prompt_names_no_span_after_its_name(tmp_path: Path, mode: str) -> None:
    traced = _install(tmp_path)
    answers: list[str] = []

    async def run() -> None:
        async with Client(_server(), mode=mode) as client:
            for method, name in (("ping", "chosen_1"), ("tools/list", "chosen_2"), ("tools/call", "chosen_3")):
                try:
                    await client.session.send_request(_Custom(method=method, params={"name": name}),
                                                      types.EmptyResult)
                    answers.append("ok")
                except MCPError as error:
                    answers.append(error.error.message)

    asyncio.run(run())
    assert answers == (["ok", "ok", "ok"] if mode == "legacy" else
                       ["Method not found", "ok", "ok"])  # (in process, the modern protocol: no ping)
    names = sorted(r["name"] for r in traced.records() if r["name"].startswith(("ping", "tools/", "MCP send")))
    served = ["tools/call chosen_3", "tools/list"]  # a tool call names its tool (the SDK's span)
    if mode == "legacy":
        served += ["MCP send initialize", "MCP send ping", "MCP send tools/call chosen_3", "MCP send tools/list",
                   "ping"]
    else:
        served += ["ping"]
    assert names == sorted(served)


def test_uninstall_restores_how_the_dispatcher_names_its_spans(tmp_path: Path) -> None:
    original = jsonrpc_dispatcher.otel_span
    _install(tmp_path)
    assert jsonrpc_dispatcher.otel_span is not original
    autotrace.uninstall()
    assert jsonrpc_dispatcher.otel_span is original
