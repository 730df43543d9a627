"""MCP review: what a server sends that names no request of the client's (its notifications: log
messages, resource updates; a request while no traced call is in flight, naming no trace of one)
never runs in the state of the tenant that connected the session, and the input requests the
client's own driver dispatches between the rounds of a call keep their caller's tenant while another
tenant's call is in flight."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import Context, MCPServer

import autotrace
from tests.helpers import shape, unordered
from tests.test_mcp import _install
from tests.test_web_frameworks import uvicorn_server

_NOTES = """
import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server


async def list_tools(ctx, params):
    return types.ListToolsResult(tools=[types.Tool(name="note", input_schema={"type": "object"})])


async def call_tool(ctx, params):
    await ctx.session.send_log_message("info", "noted", related_request_id=ctx.request_id)
    return types.CallToolResult(content=[types.TextContent(text="ok")])


async def subscribe(ctx, params):
    await ctx.session.create_message(
        messages=[types.SamplingMessage(role="user", content=types.TextContent(text="hi"))], max_tokens=5)
    await ctx.session.send_resource_updated(params.uri)
    return types.EmptyResult()


async def main():
    server = Server("notes", on_list_tools=list_tools, on_call_tool=call_tool, on_subscribe_resource=subscribe)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


anyio.run(main)
"""


class _Handlers:
    """The client's ``logging_callback``, ``message_handler`` and sampling callback: each notes the
    tenant it ran under and starts a span; ``logged`` and ``done`` are set once a log message and a
    resource update have arrived."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.done, self.logged = asyncio.Event(), asyncio.Event()

    def _saw(self, what: str) -> None:
        self.seen.append((what, autotrace.current_tenant()))
        with autotrace.start_span(what):
            pass

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        self._saw("on log")
        self.logged.set()

    async def message(self, message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            self._saw("on update")
            self.done.set()

    async def sampling(self, ctx: Any, params: Any) -> types.CreateMessageResult:
        self._saw("on sampling")
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text="42"), model="m")


def test_over_stdio_notifications_and_an_unclaimed_request_run_in_no_tenants_state(tmp_path: Path) -> None:
    """They ran under ``first``, the tenant that connected the session, though ``second`` called."""
    traced = _install(tmp_path)
    handlers = _Handlers()

    async def main() -> str:
        with autotrace.tenant("first"):
            client = Client(StdioServerParameters(command=sys.executable, args=["-c", _NOTES]), mode="legacy",
                            logging_callback=handlers.logging, message_handler=handlers.message,
                            sampling_callback=handlers.sampling)
            await client.__aenter__()
        try:
            with autotrace.tenant("second"), autotrace.start_chain("turn") as root:
                await client.call_tool("note", {})
                await client.session.subscribe_resource("notes://a")  # untraced: no call in flight
                await handlers.done.wait()
                return root.trace_id
        finally:
            await client.__aexit__(None, None, None)

    trace_id = asyncio.run(main())
    # the request names the turn's trace, where a call of ``second`` has ended: its state (review 19)
    assert sorted(handlers.seen) == [("on log", None), ("on sampling", "second"), ("on update", None)]
    spans = [r for r in traced.records() if r["name"].startswith("on ")]
    assert sorted((r["name"], r["tenant"], r["trace_id"] == trace_id, r["parent_id"] is None) for r in spans) == [
        ("on log", None, False, True), ("on sampling", "second", True, False), ("on update", None, False, True)]
    assert {r["tenant"] for r in traced.trace(trace_id)} == {"second"}


def test_over_streamable_http_a_log_on_the_calls_own_stream_keeps_the_calls_state(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    handlers = _Handlers()
    server = MCPServer("notes")

    @server.tool()
    async def note(ctx: Context) -> str:
        await ctx.info("noted")
        return "ok"

    async def main(url: str) -> str:
        with autotrace.tenant("first"):
            client = Client(url, mode="legacy", logging_callback=handlers.logging)
            await client.__aenter__()
        try:
            with autotrace.tenant("second"), autotrace.start_chain("turn") as root:
                await client.call_tool("note", {})
                await handlers.logged.wait()
                return root.trace_id
        finally:
            await client.__aexit__(None, None, None)

    with uvicorn_server(server.streamable_http_app()) as base:
        trace_id = asyncio.run(main(f"{base}/mcp"))
    assert handlers.seen == [("on log", "second")]
    [log] = [r for r in traced.trace(trace_id) if r["name"] == "on log"]
    assert log["tenant"] == "second"


def test_an_input_request_between_rounds_keeps_its_callers_tenant_while_anothers_call_is_in_flight(
        tmp_path: Path) -> None:
    """It ran in ``bravo``'s state, the one call in flight on the session, though ``alpha``'s."""
    traced = _install(tmp_path)
    started, release = asyncio.Event(), asyncio.Event()
    seen: list[str | None] = []

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> Any:
        if params.name == "wait":
            started.set()
            await release.wait()
        elif not params.input_responses:
            return types.InputRequiredResult(input_requests={"roots": types.ListRootsRequest()}, request_state="s")
        return types.CallToolResult(content=[types.TextContent(text="done")])

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name=name, input_schema={"type": "object"})
                                            for name in ("plan", "wait")])

    async def roots(context: Any) -> types.ListRootsResult:
        seen.append(autotrace.current_tenant())
        with autotrace.start_span("roots"):
            release.set()
        return types.ListRootsResult(roots=[])

    async def main() -> str:
        async with Client(Server("asks", on_call_tool=call_tool, on_list_tools=list_tools),
                          list_roots_callback=roots) as client:
            async def waiting() -> None:
                with autotrace.tenant("bravo"):
                    await client.call_tool("wait", {})

            other = asyncio.create_task(waiting())
            await started.wait()
            with autotrace.tenant("alpha"), autotrace.start_chain("turn") as root:
                await client.call_tool("plan", {})
            await other
            return root.trace_id

    trace_id = asyncio.run(main())
    assert seen == ["alpha"]
    records = traced.trace(trace_id)
    round_ = ("tool", "mcp.call_tool plan", [("tool", "tools/call plan", [("tool", "plan", [])])])
    assert unordered(shape(records)) == unordered([("chain", "turn", [round_, ("span", "roots", []), round_])])
    assert {r["tenant"] for r in records} == {"alpha"}


def test_uninstall_restores_what_receives_a_servers_requests_and_notifications(tmp_path: Path) -> None:
    from mcp.client.session import ClientSession

    names = ("_on_request", "_on_notify", "_deliver_bound_notifications", "_deliver_stream_exception")
    originals = [ClientSession.__dict__[name] for name in names]
    _install(tmp_path)
    assert [ClientSession.__dict__[name] is original for name, original in zip(names, originals, strict=True)] == [
        False] * 4
    autotrace.uninstall()
    assert [ClientSession.__dict__[name] for name in names] == originals
