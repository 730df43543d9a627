"""MCP review 20: a failing resource or prompt of an ``MCPServer``. The SDK answers a crash with a
message naming only the URI or the prompt (``Error reading resource ...``, ``Error rendering
prompt ...``) and logs the original; the server observation records that original (type, message,
the exception event with its stack trace), as it does for a tool, and the client gets the same
error as untraced."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.prompts.base import Prompt
from mcp.shared.exceptions import MCPError

import autotrace
from tests.test_mcp import _install

_URIS = ("weather://Oslo/now", "station://main", "forecast://Oslo", "missing://x")


def _server() -> MCPServer:
    server = MCPServer("weather")

    @server.resource("weather://{city}/now")
    def weather(city: str) -> str:  # a template's crash
        raise ValueError(f"no station in {city}")

    @server.resource("station://main")
    def station() -> str:  # a static resource's crash
        raise KeyError("sensor")

    @server.resource("forecast://{city}")
    def forecast(city: str) -> str:  # anticipated: its message is the client's
        raise ResourceError(f"no forecasts for {city}")

    @server.prompt()
    def greet(name: str) -> str:
        raise ValueError(f"no greeting for {name}")

    @server.prompt()
    def refuse(name: str) -> str:  # a protocol error: passed through as it is
        raise MCPError(code=-32000, message=f"refused {name}")

    return server


async def _requests(server: MCPServer, mode: str) -> list[str]:
    answers = []
    async with Client(server, mode=mode) as client:
        for uri in _URIS:
            try:
                await client.read_resource(uri)
            except MCPError as error:
                answers.append(error.error.message)
        for name in ("greet", "refuse", "nope"):
            try:
                await client.get_prompt(name, {"name": "Ann"})
            except MCPError as error:
                answers.append(error.error.message)
    return answers


def _events(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["attributes"]["exception.type"], e["attributes"]["exception.message"]) for e in record["events"]]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_a_crashing_resource_or_prompt_records_what_it_raised_and_answers_as_untraced(tmp_path: Path,
                                                                                    mode: str) -> None:
    untraced = asyncio.run(_requests(_server(), mode))
    traced = _install(tmp_path)

    async def turn() -> tuple[str, list[str]]:
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as root:
            return root.trace_id, await _requests(_server(), mode)

    trace_id, answers = asyncio.run(turn())
    assert answers == untraced
    assert answers[:4] == ["Error creating resource from template weather://Oslo/now",
                           "Error reading resource station://main", "no forecasts for Oslo", "Unknown resource: missing://x"]
    records = traced.trace(trace_id)
    reads = [r for r in records if r["type"] == "retriever" and r["name"] == "resources/read"]
    assert [(r["input"]["uri"], r["level"], r["status_message"], _events(r)) for r in reads] == [
        ("weather://Oslo/now", "ERROR", "ValueError: no station in Oslo", [("ValueError", "no station in Oslo")]),
        ("station://main", "ERROR", "KeyError: 'sensor'", [("KeyError", "'sensor'")]),
        ("forecast://Oslo", "ERROR", "MCPError: no forecasts for Oslo",  # anticipated: as answered
         [("mcp.shared.exceptions.MCPError", "no forecasts for Oslo")]),
        ("missing://x", "ERROR", "MCPError: Unknown resource: missing://x",
         [("mcp.shared.exceptions.MCPError", "Unknown resource: missing://x")]),
    ]
    assert 'raise ValueError(f"no station in {city}")' in reads[0]["events"][0]["attributes"]["exception.stacktrace"]
    prompts = {r["name"]: r for r in records if r["type"] == "span" and r["name"] in ("greet", "refuse", "prompts/get")
               and r["input"] is not None}
    assert {name: (r["status_message"], _events(r)) for name, r in prompts.items()} == {
        "greet": ("ValueError: no greeting for Ann", [("ValueError", "no greeting for Ann")]),
        "refuse": ("MCPError: refused Ann", [("mcp.shared.exceptions.MCPError", "refused Ann")]),
        "prompts/get": ("ValueError: Unknown prompt: nope", [("ValueError", "Unknown prompt: nope")]),
    }
    callers = [r["status_message"] for r in records if r["name"] == "mcp.read_resource"]
    assert callers == [f"MCPError: {answer}" for answer in answers[:4]]  # the caller knows what it was answered


def test_a_resource_read_or_prompt_rendered_outside_a_request_is_left_as_it_is(tmp_path: Path) -> None:
    _install(tmp_path)
    assert hasattr(MCPServer.__dict__["read_resource"], "__wrapped__")
    assert hasattr(Prompt.__dict__["render"], "__wrapped__")
    server = _server()
    with pytest.raises(ResourceError) as raised:
        asyncio.run(server.read_resource("station://main"))
    assert (str(raised.value), type(raised.value.__cause__)) == ("Error reading resource station://main", KeyError)
    with pytest.raises(ValueError) as rendered:
        asyncio.run(server.get_prompt("greet", {"name": "Ann"}))
    assert (str(rendered.value), type(rendered.value.__cause__.__cause__)) == (  # type: ignore[union-attr]
        "Error rendering prompt greet", ValueError)
    autotrace.uninstall()
    assert not hasattr(Prompt.__dict__["render"], "__wrapped__")
    assert not hasattr(MCPServer.__dict__["read_resource"], "__wrapped__")
