"""MCP tool calls against the real ``mcp`` SDK: clients and servers connected in memory (the SDK's
in-process ``Client(server)``, modern and legacy) and over its streamable HTTP transport on
loopback, one trace from the client's turn to the work inside the server's tool."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientSession
from mcp.server.lowlevel import Server
from mcp.server.lowlevel import server as lowlevel_server
from mcp.server.mcpserver import MCPServer
from mcp.shared import jsonrpc_dispatcher
from mcp.shared.exceptions import MCPError

import autotrace
from tests.helpers import Traced, shape, unordered
from tests.test_web_frameworks import uvicorn_server


def _install(tmp_path: Path, **options: Any) -> Traced:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("mcp",),
                      export_interval=0.05, **options)
    return Traced(tmp_path / "t.db")


@autotrace.traced_tool
def lookup(city: str) -> str:
    return f"sunny in {city}"


def _weather() -> tuple[MCPServer, dict[str, Any]]:
    """An ``MCPServer`` whose tool calls a ``@traced_tool``; ``seen``: what the tool saw."""
    server = MCPServer("weather")
    seen: dict[str, Any] = {}

    @server.tool()
    def forecast(city: str) -> str:
        seen["tenant"] = autotrace.current_tenant()
        return lookup(city)

    @server.tool()
    def broken(city: str) -> str:
        raise ValueError(f"no station in {city}")

    return server, seen


def _by_name(records: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [record] = [r for r in records if r["name"] == name]
    return record


SERVER_SIDE = ("tool", "tools/call forecast", [("tool", "forecast", [("tool", "lookup", [])])])


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_in_memory_call_is_one_trace_from_the_turn_to_the_tools_work(tmp_path: Path, mode: str) -> None:
    traced = _install(tmp_path)
    server, seen = _weather()

    async def turn() -> tuple[str, Any]:
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as root:
            async with Client(server, mode=mode) as client:
                return root.trace_id, await client.call_tool("forecast", {"city": "Oslo"})

    trace_id, result = asyncio.run(turn())
    assert result.structured_content == {"result": "sunny in Oslo"} and not result.is_error
    records = traced.trace(trace_id)
    if mode == "auto":  # in process, no JSON-RPC: no client span of the SDK's
        expected = [("chain", "turn", [("span", "server/discover", []), ("tool", "mcp.call_tool forecast", [
            SERVER_SIDE, ("span", "tools/list", [])])])]
    else:
        expected = [("chain", "turn", [
            ("span", "MCP send initialize", [("span", "initialize", [])]),
            ("span", "notifications/initialized", []),
            ("tool", "mcp.call_tool forecast", [
                ("span", "MCP send tools/call forecast", [SERVER_SIDE]),
                ("span", "MCP send tools/list", [("span", "tools/list", [])])])])]
    assert unordered(shape(records)) == unordered(expected)
    client_call, served = _by_name(records, "mcp.call_tool forecast"), _by_name(records, "forecast")
    assert (client_call["input"], client_call["output"]) == ({"city": "Oslo"}, {"result": "sunny in Oslo"})
    assert client_call["metadata"] == {"tool_name": "forecast", "mcp_server": "weather"}
    assert (served["input"], served["output"], served["level"]) == ({"city": "Oslo"}, {"result": "sunny in Oslo"},
                                                                    "DEFAULT")
    assert {r["tenant"] for r in records} == {"acme"} and seen == {"tenant": "acme"}  # in process: the same program


def test_a_result_with_is_error_is_an_error_and_reaches_the_caller_unchanged(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    server, _ = _weather()

    async def turn() -> tuple[str, Any]:
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as root:
            async with Client(server) as client:
                return root.trace_id, await client.call_tool("broken", {"city": "Oslo"})

    trace_id, result = asyncio.run(turn())
    assert result.is_error and result.content == [types.TextContent(text="Error executing tool broken")]
    records = traced.trace(trace_id)
    for name, message in (("mcp.call_tool broken", "Error executing tool broken"),
                          ("broken", "ValueError: no station in Oslo")):  # the server's: what the tool raised
        record = _by_name(records, name)
        assert (record["level"], record["status_message"], record["output"]) == (
            "ERROR", message, "Error executing tool broken")


# -- a lowlevel server: the _meta it receives, errors, waiting ---------------------------------------
class _Recorder:
    """A lowlevel ``Server``'s tools: ``echo`` (answers text and an image), ``fail`` (raises
    ``MCPError``) and ``wait`` (waits for ``release``); ``seen`` holds what each call saw."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.started = anyio.Event()
        self.server = Server("recorder", version="9", on_call_tool=self.call_tool, on_list_tools=self.list_tools)

    async def list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name=n, input_schema={"type": "object"})
                                            for n in ("echo", "fail", "wait")])

    async def call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        self.seen.append({"meta": dict(params.meta or {}), "tenant": autotrace.current_tenant()})
        if params.name == "fail":
            raise MCPError(code=types.INVALID_PARAMS, message="no such city")
        if params.name == "wait":
            self.started.set()
            await anyio.Event().wait()  # until cancelled
        with autotrace.start_tool("inner"):
            pass
        return types.CallToolResult(content=[
            types.TextContent(text="hi"), types.ImageContent(data="QUJD" * 300, mime_type="image/png"),
            types.EmbeddedResource(resource=types.BlobResourceContents(uri="file:///a.pdf", blob="AAAA",
                                                                       mime_type="application/pdf"))])


def _http_turn(url: str, meta: dict[str, Any], mode: str = "legacy") -> tuple[str, Any]:
    async def turn() -> tuple[str, Any]:
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as root:
            async with Client(url, mode=mode) as client:
                return root.trace_id, await client.call_tool("echo", {"a": 1}, meta=meta)

    return asyncio.run(turn())


EXPECTED_HTTP = [("chain", "turn", [  # over HTTP a notification carries no trace context: it is not in the turn's trace
    ("span", "MCP send initialize", [("span", "initialize", [])]),
    ("tool", "mcp.call_tool echo", [
        ("span", "MCP send tools/call echo", [
            ("tool", "tools/call echo", [("tool", "echo", [("tool", "inner", [])])])]),
        ("span", "MCP send tools/list", [("span", "tools/list", [])])])])]


def test_over_streamable_http_the_trusted_callers_tenant_and_trace_arrive_in_meta(tmp_path: Path) -> None:
    traced = _install(tmp_path, trust_incoming_tenant=True)
    tools = _Recorder()
    meta = {"mine": "x", "baggage": "k=v,autotrace.tenant=evil", "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    with uvicorn_server(tools.server.streamable_http_app()) as base:
        trace_id, result = _http_turn(f"{base}/mcp", meta)
    assert result.content[0] == types.TextContent(text="hi")
    assert meta == {"mine": "x", "baggage": "k=v,autotrace.tenant=evil",  # the caller's dict is untouched
                    "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    [seen] = tools.seen
    sent = seen["meta"]
    assert sent["mine"] == "x" and sent["baggage"] == "k=v,autotrace.tenant=acme"  # its own tenant, not the one given
    assert seen["tenant"] == "acme"
    records = traced.trace(trace_id)
    sender = _by_name(records, "MCP send tools/call echo")  # the SDK's span: its injection runs last
    assert sent["traceparent"] == f"00-{trace_id}-{sender['id']}-01"  # the sampled bit only, as autotrace sends
    assert unordered(shape(records)) == unordered(EXPECTED_HTTP)
    server_side = [r for r in records if r["name"] in ("tools/call echo", "echo", "inner")]
    assert [r["tenant"] for r in server_side] == ["acme"] * 3  # the SDK's server span adopted by the tenant too
    call = _by_name(records, "mcp.call_tool echo")
    assert call["output"] == "hi\n<image/png base64, 1200 chars>\n<application/pdf base64, 4 chars: file:///a.pdf>"
    assert call["metadata"] == {"tool_name": "echo", "mcp_server": "recorder", "mcp_server_version": "9"}


def test_a_server_without_the_sdks_own_span_joins_the_caller_from_meta(tmp_path: Path) -> None:
    traced = _install(tmp_path, trust_incoming_tenant=True)
    tools = _Recorder()
    tools.server.middleware.clear()  # the SDK's documented opt-out of its server spans
    with uvicorn_server(tools.server.streamable_http_app()) as base:
        trace_id, _ = _http_turn(f"{base}/mcp", {})
    records = traced.trace(trace_id)
    assert unordered(shape(records)) == unordered([("chain", "turn", [
        ("span", "MCP send initialize", []),
        ("tool", "mcp.call_tool echo", [
            ("span", "MCP send tools/call echo", [("tool", "echo", [("tool", "inner", [])])]),
            ("span", "MCP send tools/list", [])])])])
    assert [r["tenant"] for r in records if r["name"] in ("echo", "inner")] == ["acme", "acme"]


def test_an_untrusted_callers_tenant_is_not_taken(tmp_path: Path) -> None:
    traced = _install(tmp_path, trust_incoming_tenant=False)
    tools = _Recorder()
    with uvicorn_server(tools.server.streamable_http_app()) as base:
        trace_id, _ = _http_turn(f"{base}/mcp", {}, mode="auto")
    [seen] = tools.seen
    assert seen["meta"]["baggage"] == "autotrace.tenant=acme" and seen["tenant"] is None
    records = traced.trace(trace_id)
    assert _by_name(records, "echo")["tenant"] is None and _by_name(records, "mcp.call_tool echo")["tenant"] == "acme"


def test_the_tenant_stays_home_unless_tenant_baggage_is_all(tmp_path: Path) -> None:
    _install(tmp_path, tenant_baggage="rag-service:*", trust_incoming_tenant=True)
    tools = _Recorder()
    with uvicorn_server(tools.server.streamable_http_app()) as base:
        _http_turn(f"{base}/mcp", {"baggage": "k=v,autotrace.tenant=evil"})
    [seen] = tools.seen
    assert seen["meta"]["baggage"] == "k=v" and seen["tenant"] is None


def test_errors_timeouts_and_cancellations_propagate_and_mark_the_call(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    tools = _Recorder()

    async def turn() -> tuple[str, BaseException, BaseException, bool]:
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as root:
            async with Client(tools.server, mode="legacy") as client:
                with pytest.raises(MCPError) as failed:
                    await client.call_tool("fail", {})
                with pytest.raises(MCPError) as timed_out:
                    await client.call_tool("wait", {}, read_timeout_seconds=0.2)
                tools.started = anyio.Event()
                task = asyncio.ensure_future(client.call_tool("wait", {}))
                await tools.started.wait()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                return root.trace_id, failed.value, timed_out.value, task.cancelled()

    trace_id, failed, timed_out, cancelled = asyncio.run(turn())
    assert failed.error.message == "no such city" and timed_out.error.code == types.REQUEST_TIMEOUT and cancelled
    calls = [r for r in traced.trace(trace_id) if r["name"] in ("mcp.call_tool fail", "mcp.call_tool wait", "fail", "wait")]
    served = sorted((r["name"], r["level"], r["status_message"].split(":")[0]) for r in calls if r["name"] in ("fail", "wait"))
    assert served == [("fail", "ERROR", "MCPError"),  # the server's side: the handler raised, or was cancelled
                      ("wait", "WARNING", "CancelledError"), ("wait", "WARNING", "CancelledError")]
    calls = [r for r in calls if r["name"].startswith("mcp.")]
    assert [(r["name"], r["level"], r["status_message"]) for r in calls] == [
        ("mcp.call_tool fail", "ERROR", "MCPError: no such city"),
        ("mcp.call_tool wait", "ERROR", "MCPError: Request 'tools/call' timed out"),
        ("mcp.call_tool wait", "WARNING", "CancelledError"),
    ]


def test_in_process_the_meta_carries_the_calls_trace_context_and_the_tenant(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    tools = _Recorder()

    async def turn() -> str:
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as root:
            async with Client(tools.server) as client:  # no JSON-RPC: nothing but autotrace writes trace keys
                await client.call_tool("echo", {}, meta={"app/request": "r-1", "baggage": "k=v"})
            return root.trace_id

    trace_id = asyncio.run(turn())
    [seen] = tools.seen
    call = _by_name(traced.trace(trace_id), "mcp.call_tool echo")
    assert {key: seen["meta"].get(key) for key in ("app/request", "baggage", "traceparent", "tracestate")} == {
        "app/request": "r-1", "baggage": "k=v,autotrace.tenant=acme",
        "traceparent": f"00-{trace_id}-{call['id']}-01", "tracestate": None}


def test_each_round_of_a_call_that_needs_input_is_recorded(tmp_path: Path) -> None:
    traced = _install(tmp_path)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> Any:
        if not params.input_responses:  # first round: the server asks the client for its roots
            return types.InputRequiredResult(input_requests={"roots": types.ListRootsRequest()}, request_state="s")
        return types.CallToolResult(content=[types.TextContent(text="done")])

    async def roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[])

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name="plan", input_schema={"type": "object"})])

    async def turn() -> tuple[str, Any]:
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as root:
            async with Client(Server("asks", on_call_tool=call_tool, on_list_tools=list_tools),
                              list_roots_callback=roots) as client:
                return root.trace_id, await client.call_tool("plan", {})

    trace_id, result = asyncio.run(turn())
    assert result.content == [types.TextContent(text="done")]
    rounds = [r for r in traced.trace(trace_id) if r["name"] in ("mcp.call_tool plan", "plan")]
    assert [(r["name"], r["output"], r["level"]) for r in rounds] == [
        ("mcp.call_tool plan", {"input_required": {"roots": "roots/list"}}, "DEFAULT"),
        ("plan", {"input_required": {"roots": "roots/list"}}, "DEFAULT"),
        ("mcp.call_tool plan", "done", "DEFAULT"),
        ("plan", "done", "DEFAULT"),
    ]


def test_a_malformed_meta_never_breaks_the_call(tmp_path: Path) -> None:
    traced = _install(tmp_path, trust_incoming_tenant=True)
    tools = _Recorder()
    bad = {"traceparent": "00-zz-yy-01", "tracestate": 5, "baggage": "autotrace.tenant=a,autotrace.tenant=b,%%%"}

    async def call() -> Any:  # sent as is: the SDK's own request, outside any call_tool and any trace
        async with Client(tools.server) as client:
            request = types.CallToolRequest(params=types.CallToolRequestParams(name="echo", arguments={}, _meta=bad))
            return await client.session.send_request(request, types.CallToolResult)

    result = asyncio.run(call())
    assert result.content[0] == types.TextContent(text="hi")
    [seen] = tools.seen
    assert {key: seen["meta"][key] for key in bad} == bad and seen["tenant"] is None
    stats = autotrace.stats()
    assert (stats["propagation_invalid_traceparent"], stats["propagation_conflicting_tenant"]) == (1, 1)
    served = _by_name(traced.records(), "echo")
    assert (served["level"], served["tenant"]) == ("DEFAULT", None)


def test_uninstall_restores_the_sdk(tmp_path: Path) -> None:
    originals = (ClientSession.__dict__["call_tool"], lowlevel_server.Server.__dict__["get_request_handler"],
                 jsonrpc_dispatcher.inject_trace_context)
    _install(tmp_path)
    assert ClientSession.__dict__["call_tool"] is not originals[0]
    assert jsonrpc_dispatcher.inject_trace_context is not originals[2]
    autotrace.uninstall()
    assert (ClientSession.__dict__["call_tool"], lowlevel_server.Server.__dict__["get_request_handler"],
            jsonrpc_dispatcher.inject_trace_context) == originals


def test_install_does_not_import_mcp_which_is_patched_when_the_application_imports_it(tmp_path: Path) -> None:
    code = ("import sys, autotrace; autotrace.install(local_store='off', integrations=('mcp',)); "
            "print('mcp' in sys.modules); from mcp.client.session import ClientSession; "
            "print(type(ClientSession.__dict__['call_tool']).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "FunctionWrapper"]
