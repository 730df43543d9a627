"""MCP review 19: a server's request that comes after the call it belongs to has ended (from a
tool's background task, or a call the client gave up on) names that call's trace: it ran the
client's callback (sampling: an LLM call) in the state of whichever other call was in flight on the
shared session, another tenant's, in that tenant's trace."""

from __future__ import annotations

import asyncio
import gc
import sys
import weakref
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

import autotrace
from autotrace.integrations import _mcp_callbacks
from tests.test_mcp import _install, _weather

_SERVER = """
import asyncio
import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("late")
state = {"go": asyncio.Event(), "done": asyncio.Event()}

async def sample(session):
    await state["go"].wait()
    try:
        await session.create_message(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(text="for A"))], max_tokens=5)
    finally:
        state["done"].set()

@server.tool()
async def background(ctx: Context) -> str:
    state["task"] = asyncio.create_task(sample(ctx.session))  # asks once the call has ended
    return "started"

@server.tool()
async def given_up(ctx: Context) -> str:
    with anyio.CancelScope(shield=True):  # still asks after the client gave up on the call
        await sample(ctx.session)
    return "late"

@server.tool()
async def go(ctx: Context) -> str:
    state["go"].set()
    await asyncio.wait_for(state["done"].wait(), 20)
    return "went"

server.run("stdio")
"""


@pytest.mark.parametrize("tool", ["background", "given_up"])
def test_a_servers_request_after_its_call_ended_runs_in_that_calls_state(tmp_path: Path, tool: str) -> None:
    traced = _install(tmp_path)
    seen: list[tuple[str, Any]] = []

    async def sampling(ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        seen.append((params.messages[0].content.text, autotrace.current_tenant()))
        with autotrace.start_generation("sample", model="m"):
            pass
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text="x"), model="m")

    async def run() -> dict[str, str]:
        stdio = StdioServerParameters(command=sys.executable, args=["-c", _SERVER])
        async with Client(stdio, mode="legacy", sampling_callback=sampling) as client:
            with autotrace.tenant("A"), autotrace.start_chain("turn A") as a:
                with anyio.move_on_after(1 if tool == "given_up" else 30):
                    await client.call_tool(tool, {})
            with autotrace.tenant("B"), autotrace.start_chain("turn B") as b:
                assert (await client.call_tool("go", {})).content[0].text == "went"
            return {"A": a.trace_id, "B": b.trace_id}

    traces = asyncio.run(run())
    assert seen == [("for A", "A")]  # was B's: the one call in flight when it came
    [sample] = [r for r in traced.records() if r["name"] == "sample"]
    assert (sample["tenant"], sample["trace_id"]) == ("A", traces["A"])
    assert sample["parent_id"] is not None  # the server's span, in A's trace


def test_the_states_of_ended_calls_kept_are_bounded_and_never_keep_a_session_alive(tmp_path: Path) -> None:
    _install(tmp_path)
    server, _ = _weather()
    kept: dict[str, Any] = {}

    async def run() -> weakref.ref[Any]:
        async with Client(server, mode="legacy") as client:
            for i in range(40):
                with autotrace.start_chain(f"turn {i}"):
                    await client.call_tool("forecast", {"city": "Oslo"})
            with autotrace.start_chain("long turn") as long:
                for _ in range(10):
                    await client.call_tool("forecast", {"city": "Oslo"})
            ended = _mcp_callbacks._ENDED[client.session]
            kept.update(traces=len(ended), last=[len(v) for v in ended.values()][-1],
                        newest=next(reversed(ended)) == int(long.trace_id, 16))
            return weakref.ref(client.session)

    session = asyncio.run(run())
    assert kept == {"traces": 32, "last": 8, "newest": True}
    gc.collect()
    assert session() is None and len(_mcp_callbacks._ENDED) == 0
