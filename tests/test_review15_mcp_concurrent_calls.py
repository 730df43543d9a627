"""MCP review 15: calls in flight at once on one session, in one trace (``asyncio.gather`` of two
``call_tool`` in one turn), each with its own content-capture setting and trace attributes: what the
server sends back for each (progress, sampling) runs in that call's own state."""

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
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("asking")

@server.tool()
async def ask(q: str, ctx: Context) -> str:
    await ctx.report_progress(1, 2, q)
    await ctx.info("log " + q)
    sampled = await ctx.session.create_message(
        messages=[types.SamplingMessage(role="user", content=types.TextContent(text=q))], max_tokens=5)
    return sampled.content.text

server.run("stdio")
"""


class _Callbacks:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    async def sampling(self, ctx: Any, params: Any) -> types.CreateMessageResult:
        asked = params.messages[0].content.text
        self.seen.append(("sampling", asked, autotrace.current_tenant()))
        with autotrace.start_generation("sample", model="m", input=asked) as generation:
            generation.set_output("answer " + asked)
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text=asked), model="m")

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        self.seen.append(("log", params.data, autotrace.current_tenant()))

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append(("progress", message, autotrace.current_tenant()))
        with autotrace.start_span("progress", input=message):
            pass

    async def turn(self, env: dict[str, str] | None = None) -> None:
        stdio = StdioServerParameters(command=sys.executable, args=["-c", _SERVER], env=env)
        async with Client(stdio, mode="legacy", sampling_callback=self.sampling,
                          logging_callback=self.logging) as client:
            async def call(q: str, capture: bool, user: str) -> None:
                with autotrace.content_capture(capture), autotrace.trace_attributes(user_id=user):
                    await client.call_tool("ask", {"q": q}, progress_callback=self.progress)

            with autotrace.tenant("acme"), autotrace.start_chain("turn"):
                await asyncio.gather(call("secret", False, "u-secret"), call("plain", True, "u-plain"))


def _seen(traced: Any) -> list[tuple[str, Any, Any, Any, Any, Any]]:
    """Each callback's observation: name, the input of the call it nests under (None: in no call),
    its input and output, user and tenant."""
    records = traced.records()
    by_id = {r["id"]: r for r in records}

    def call_input(record: dict[str, Any]) -> Any:
        while record["type"] != "tool":
            if record["parent_id"] is None:
                return "no call"
            record = by_id[record["parent_id"]]
        return record["input"]

    return sorted(((r["name"], str(call_input(r)), r["input"], r["output"], r.get("user_id"), r["tenant"])
                   for r in records if r["name"] in ("sample", "progress")), key=str)


def test_each_of_concurrent_calls_in_one_trace_lends_its_own_state_to_what_the_server_sends(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    callbacks = _Callbacks()
    asyncio.run(callbacks.turn())
    # a log message names no call (over stdio): in no tenant's state, as any notification
    assert sorted(callbacks.seen, key=str) == sorted([
        ("log", "log plain", None), ("log", "log secret", None), ("progress", "plain", "acme"),
        ("progress", "secret", "acme"), ("sampling", "plain", "acme"), ("sampling", "secret", "acme")], key=str)
    # the secret call's sample ran in the other call's state: its content recorded, the other's user
    assert _seen(traced) == sorted([
        ("progress", "None", None, None, "u-secret", "acme"),
        ("progress", "{'q': 'plain'}", "plain", None, "u-plain", "acme"),
        ("sample", "None", None, None, "u-secret", "acme"),
        ("sample", "{'q': 'plain'}", "plain", "answer plain", "u-plain", "acme")], key=str)


def test_a_server_naming_no_trace_lends_concurrent_calls_only_the_state_they_share(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    callbacks = _Callbacks()
    asyncio.run(callbacks.turn({**os.environ, "OTEL_PROPAGATORS": "none"}))
    # whose each sample is cannot be told: the tenant both share, content left out as one of them does
    assert _seen(traced) == sorted([
        ("progress", "None", None, None, "u-secret", "acme"),
        ("progress", "{'q': 'plain'}", "plain", None, "u-plain", "acme"),
        ("sample", "no call", None, None, None, "acme"),
        ("sample", "no call", None, None, None, "acme")], key=str)
