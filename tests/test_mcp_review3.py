"""MCP review: what a server sends back while a call runs (progress, sampling, elicitation, roots)
is handled by the client's callbacks in the state of the call it belongs to, on a session connected
once and shared by the requests of several tenants (over stdio and streamable HTTP)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

import autotrace
from tests.helpers import shape, unordered
from tests.test_mcp import _install
from tests.test_web_frameworks import uvicorn_server

_CALLBACKS = ("progress", "roots", "sampling", "elicitation")


class _Callbacks:
    """The client's sampling, elicitation, roots and progress callbacks: each starts a span and notes
    the tenant it ran under."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def _saw(self, what: str) -> None:
        self.seen.append((what, autotrace.current_tenant()))
        with autotrace.start_span(what):
            pass

    async def sampling(self, ctx: Any, params: Any) -> types.CreateMessageResult:
        self._saw("sampling")
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text="42"), model="m")

    async def elicitation(self, ctx: Any, params: Any) -> types.ElicitResult:
        self._saw("elicitation")
        return types.ElicitResult(action="accept", content={"ok": True})

    async def roots(self, ctx: Any) -> types.ListRootsResult:
        self._saw("roots")
        return types.ListRootsResult(roots=[])

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        self._saw("progress")

    async def shared_by(self, server: Any, tenants: tuple[str, ...]) -> dict[str, str]:
        """A client connected (and its tools listed) under tenant ``first``, then calling ``ask`` at
        once in a turn of each of ``tenants``; the trace id of each turn, by tenant."""
        with autotrace.tenant("first"):
            client = Client(server, mode="legacy", sampling_callback=self.sampling, list_roots_callback=self.roots,
                            elicitation_callback=self.elicitation)
            await client.__aenter__()
            await client.list_tools()

        async def turn(tenant: str) -> str:
            with autotrace.tenant(tenant), autotrace.start_chain(f"turn {tenant}") as root:
                await client.call_tool("ask", {"q": "life"}, progress_callback=self.progress)
                return root.trace_id

        try:
            return dict(zip(tenants, await asyncio.gather(*(turn(tenant) for tenant in tenants)), strict=True))
        finally:
            await client.__aexit__(None, None, None)


class _Ok(BaseModel):
    ok: bool


def _asking() -> MCPServer:
    """An ``MCPServer`` whose tool ``ask`` reports progress, asks the client for its roots and a
    sample (on the session's standalone stream) and elicits (on the call's own)."""
    server = MCPServer("asking")

    @server.tool()
    async def ask(q: str, ctx: Context) -> str:
        await ctx.report_progress(1, 2)
        await ctx.session.list_roots()
        sampled = await ctx.session.create_message(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(text=q))], max_tokens=5)
        await ctx.elicit("ok?", _Ok)
        return sampled.content.text

    return server


def test_over_streamable_http_a_shared_sessions_callbacks_run_in_their_calls_trace_and_tenant(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    callbacks = _Callbacks()
    with uvicorn_server(_asking().streamable_http_app()) as base:
        trace_ids = asyncio.run(callbacks.shared_by(f"{base}/mcp", ("second", "third")))
    assert sorted(callbacks.seen) == sorted((what, tenant) for what in ("progress", "roots", "sampling", "elicitation")
                                            for tenant in ("second", "third"))
    for tenant, trace_id in trace_ids.items():
        records = traced.trace(trace_id)
        server_tool = ("tool", "ask", [("span", "MCP send roots/list", [("span", "roots", [])]),
                                       ("span", "MCP send sampling/createMessage", [("span", "sampling", [])]),
                                       ("span", "MCP send elicitation/create", [("span", "elicitation", [])])])
        assert unordered(shape(records)) == unordered([("chain", f"turn {tenant}", [("tool", "mcp.call_tool ask", [
            ("span", "MCP send tools/call ask", [("tool", "tools/call ask", [server_tool])]),
            ("span", "progress", [])])])])
        callback_spans = [r for r in records if r["name"] in _CALLBACKS]
        assert [r["tenant"] for r in callback_spans] == [tenant] * 4
    assert {r["tenant"] for r in traced.records() if r["name"] in _CALLBACKS} == {"second", "third"}


_STDIO_SERVER = """
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("asking")

@server.tool()
async def ask(q: str, ctx: Context) -> str:
    await ctx.report_progress(1, 2)
    sampled = await ctx.session.create_message(
        messages=[types.SamplingMessage(role="user", content=types.TextContent(text=q))], max_tokens=5)
    return sampled.content.text

server.run("stdio")
"""


def test_over_stdio_progress_and_sampling_of_concurrent_calls_keep_their_own_trace_and_tenant(tmp_path: Path) -> None:
    traced = _install(tmp_path)  # the server, a subprocess, traces nothing: its requests name the client's span
    callbacks = _Callbacks()
    stdio = StdioServerParameters(command=sys.executable, args=["-c", _STDIO_SERVER])
    trace_ids = asyncio.run(callbacks.shared_by(stdio, ("second", "third")))
    assert sorted(callbacks.seen) == [("progress", "second"), ("progress", "third"),
                                      ("sampling", "second"), ("sampling", "third")]
    for tenant, trace_id in trace_ids.items():
        records = traced.trace(trace_id)
        assert unordered(shape(records)) == unordered([("chain", f"turn {tenant}", [("tool", "mcp.call_tool ask", [
            ("span", "MCP send tools/call ask", [("span", "sampling", [])]), ("span", "progress", [])])])])
        assert {r["tenant"] for r in records} == {tenant}
    assert {r["tenant"] for r in traced.records() if r["name"] in _CALLBACKS} == {"second", "third"}  # none: first


def test_uninstall_restores_the_dispatch_of_a_servers_requests(tmp_path: Path) -> None:
    original = ClientSession.__dict__["dispatch_input_request"]
    _install(tmp_path)
    assert ClientSession.__dict__["dispatch_input_request"] is not original
    autotrace.uninstall()
    assert ClientSession.__dict__["dispatch_input_request"] is original


def _untraced_stdio() -> StdioServerParameters:
    """The stdio server, its requests naming no trace (``OTEL_PROPAGATORS=none``: as a server that
    propagates nothing)."""
    import os

    return StdioServerParameters(command=sys.executable, args=["-c", _STDIO_SERVER],
                                 env={**os.environ, "OTEL_PROPAGATORS": "none"})


def test_a_server_naming_no_trace_lends_a_lone_calls_state_to_its_callbacks(tmp_path: Path) -> None:
    """A server that sends no trace context: its sampling request ran under the tenant that had
    connected the session (``first``), in a trace of its own; with one call in flight, it is that call's."""
    traced = _install(tmp_path)
    callbacks = _Callbacks()
    trace_ids = asyncio.run(callbacks.shared_by(_untraced_stdio(), ("second",)))
    assert sorted(callbacks.seen) == [("progress", "second"), ("sampling", "second")]
    assert unordered(shape(traced.trace(trace_ids["second"]))) == unordered([("chain", "turn second", [
        ("tool", "mcp.call_tool ask", [("span", "MCP send tools/call ask", []), ("span", "sampling", []),
                                       ("span", "progress", [])])])])


def test_a_server_naming_no_trace_with_several_tenants_calls_in_flight_lends_no_tenant(tmp_path: Path) -> None:
    """Whose the request is cannot be told: never another tenant's (it ran under ``first``, the
    tenant that had connected the session)."""
    traced = _install(tmp_path)
    callbacks = _Callbacks()
    asyncio.run(callbacks.shared_by(_untraced_stdio(), ("second", "third")))
    assert sorted(callbacks.seen) == [("progress", "second"), ("progress", "third"), ("sampling", None),
                                      ("sampling", None)]
    sampling = [r for r in traced.records() if r["name"] == "sampling"]
    assert [(r["tenant"], r["parent_id"]) for r in sampling] == [(None, None), (None, None)]
