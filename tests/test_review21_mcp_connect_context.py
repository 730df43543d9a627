"""MCP review 21: a stdio session connected in one tenant's turn reads what its server sends in that
turn's context. While that tenant's call was in flight there, a log message and a sampling request
(naming no trace) that another tenant's call caused ran as if they were the first tenant's own: in
its state and trace. They run in no tenant's state."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters

import autotrace
from tests.test_mcp import _install

_SERVER = """
import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

released = anyio.Event()


async def list_tools(ctx, params):
    return types.ListToolsResult(tools=[types.Tool(name=n, input_schema={"type": "object"})
                                        for n in ("wait", "note", "release")])


async def call_tool(ctx, params):
    if params.name == "wait":
        await released.wait()
    elif params.name == "release":
        released.set()
    else:
        await ctx.session.send_log_message("info", "noted", related_request_id=ctx.request_id)
        await ctx.session.create_message(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(text="hi"))], max_tokens=5)
    return types.CallToolResult(content=[types.TextContent(text=params.name)])


async def main():
    server = Server("notes", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


anyio.run(main)
"""


class _Handlers:
    """The client's ``logging_callback`` and sampling callback: each notes the tenant it ran under
    and starts a span."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def _saw(self, what: str) -> None:
        self.seen.append((what, autotrace.current_tenant()))
        with autotrace.start_span(what):
            pass

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        self._saw("on log")

    async def sampling(self, ctx: Any, params: Any) -> types.CreateMessageResult:
        self._saw("on sampling")
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text="42"), model="m")


def test_what_anothers_call_causes_never_runs_in_the_state_of_the_turn_that_connected(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    handlers = _Handlers()
    server = StdioServerParameters(command=sys.executable, args=["-c", _SERVER],  # its requests name no trace
                                   env={**os.environ, "OTEL_PROPAGATORS": "none"})

    async def main() -> tuple[str, str, list[str]]:
        with autotrace.tenant("first"), autotrace.start_chain("first turn") as first:
            async with Client(server, mode="legacy", logging_callback=handlers.logging,
                              sampling_callback=handlers.sampling) as client:
                waiting = asyncio.ensure_future(client.call_tool("wait", {}))  # first's call, in flight
                await asyncio.sleep(0)

                async def second() -> tuple[str, str]:
                    with autotrace.tenant("second"), autotrace.start_chain("second turn") as root:
                        return root.trace_id, (await client.call_tool("note", {})).content[0].text

                second_trace, noted = await asyncio.create_task(second())
                released = (await client.call_tool("release", {})).content[0].text
                return first.trace_id, second_trace, [noted, released, (await waiting).content[0].text]

    first_trace, second_trace, answers = asyncio.run(main())
    assert answers == ["note", "release", "wait"]  # the results are the server's, unchanged
    assert sorted(handlers.seen) == [("on log", None), ("on sampling", None)]
    spans = [r for r in traced.records() if r["name"].startswith("on ")]
    assert sorted((r["name"], r["tenant"], r["trace_id"] in (first_trace, second_trace), r["parent_id"])
                  for r in spans) == [("on log", None, False, None), ("on sampling", None, False, None)]
    assert {r["tenant"] for r in traced.trace(first_trace)} == {"first"}
