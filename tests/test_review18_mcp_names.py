"""MCP review 18: a client names none of a server's spans. The SDK's own server span was named
``{method} {params.name}`` as the client sent them (any length, any characters, any method); it
keeps the tool's name only when the MCP specification allows it, and the method only when the
specification defines it or the server has a handler for it, else ``_OTHER``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anyio
import mcp.server._otel as server_otel
import mcp_types as types
import pytest
from mcp import Client
from mcp.server.lowlevel import Server
from mcp.server.lowlevel import server as lowlevel_server
from mcp.shared.exceptions import MCPError

import autotrace
from tests.test_mcp import _install


class _Custom(types.Request[Any, str]):
    """A request or notification of any method, as a client may send it."""

    method: str
    params: Any = None


async def _call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text="ok")])


async def _list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[])


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_a_server_span_is_named_only_with_a_name_the_server_bounds(tmp_path: Path, mode: str) -> None:
    traced = _install(tmp_path)
    noted = anyio.Event()

    async def acme_echo(ctx: Any, params: types.RequestParams) -> types.EmptyResult:
        return types.EmptyResult()

    async def acme_note(ctx: Any, params: Any) -> None:
        noted.set()

    server = Server("names", on_call_tool=_call_tool, on_list_tools=_list_tools)
    server.add_request_handler("acme/echo", types.RequestParams, acme_echo)
    server.add_notification_handler("notifications/acme", types.NotificationParams, acme_note)
    answers: list[str] = []

    async def send(client: Client, method: str, params: dict[str, Any]) -> None:
        try:
            await client.session.send_request(_Custom(method=method, params=params), types.EmptyResult)
            answers.append("ok")
        except MCPError as error:
            answers.append(error.error.message)

    async def run() -> None:
        async with Client(server, mode=mode) as client:
            for name in ("ok", "a\nb", "y" * 200):
                result = await client.session.call_tool(name, {})
                answers.append(result.content[0].text)
            await send(client, "tools/call", {"name": "z" * 300, "arguments": 5})  # invalid: refused before any handler
            await send(client, "custom/" + "q" * 300, {"name": "w" * 300})
            await send(client, "acme/echo", {"name": "acme\n" * 50})
            if mode == "legacy":  # in process, the modern protocol: the server is sent no notification
                await client.session.send_notification(types.Notification(method="notifications/" + "v" * 300,
                                                                          params=None))
                await client.session.send_notification(types.Notification(method="notifications/acme", params=None))
                with anyio.fail_after(10):
                    await noted.wait()

    asyncio.run(run())
    assert answers == ["ok", "ok", "ok", "Invalid request parameters", "Method not found", "ok"]
    served = sorted(r["name"] for r in traced.records() if not r["name"].startswith(("MCP send", "mcp.")))
    connected = ["initialize", "notifications/initialized"] if mode == "legacy" else ["server/discover"]
    notified = ["_OTHER", "notifications/acme"] if mode == "legacy" else []  # notifications, likewise
    assert served == sorted([
        *connected, *notified,
        "tools/call ok", "ok",  # the SDK's span, then autotrace's tool observation
        "tools/list", "tools/list", "tools/list",  # the client's, to check each result
        "tools/call", "tools/call", "tools/call", "tools/call",  # names the specification does not allow
        "tools/call",  # refused before any handler
        "_OTHER",  # a method the server does not know
        "acme/echo",  # a method it has a handler for (an extension's)
    ])


def test_uninstall_restores_how_the_server_names_its_spans(tmp_path: Path) -> None:
    originals = (lowlevel_server.Server.__dict__["get_notification_handler"], server_otel.otel_span)
    _install(tmp_path)
    assert server_otel.otel_span is not originals[1]
    autotrace.uninstall()
    assert (lowlevel_server.Server.__dict__["get_notification_handler"], server_otel.otel_span) == originals
