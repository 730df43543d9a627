"""MCP resource reads and prompts against the real ``mcp`` SDK: what an agent read through MCP, as
``retriever`` and ``span`` observations from the client's turn to the work inside the server's
resource or prompt function, in memory and over streamable HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
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
from mcp.shared.exceptions import MCPError

import autotrace
from autotrace.integrations import _mcp_results as mcp_integration
from autotrace.integrations.documents import CONTENT_CHARS, MAX_DOCUMENTS
from tests.helpers import shape, unordered
from tests.test_mcp import _by_name, _install
from tests.test_web_frameworks import uvicorn_server

#: The ``_meta`` keys the SDK's modern protocol adds to every request.
PROTOCOL_KEYS = "io.modelcontextprotocol/"
HANDBOOK = "Refunds are accepted within 30 days of purchase. " * 8
LOGO = b"\x89PNG" + bytes(96)


def _library() -> tuple[MCPServer, dict[str, Any]]:
    """An ``MCPServer`` with a text resource, a binary one and a prompt, each doing its work in a
    span or ``@traced_tool``; ``seen``: the tenant each saw."""
    server = MCPServer("library")
    seen: dict[str, Any] = {}

    @autotrace.traced_tool
    def fetch_handbook() -> str:
        return HANDBOOK

    @server.resource("docs://handbook")
    def handbook() -> str:
        seen["handbook"] = autotrace.current_tenant()
        return fetch_handbook()

    @server.resource("docs://logo", mime_type="image/png")
    def logo() -> bytes:
        return LOGO

    @server.prompt()
    def review(code: str) -> list[Any]:
        seen["review"] = autotrace.current_tenant()
        with autotrace.start_span("render review"):
            return [{"role": "user", "content": f"Review this: {code}"},
                    {"role": "assistant", "content": types.ImageContent(data="QUJD" * 10, mime_type="image/png")}]

    return server, seen


def _turn(server: Any, mode: str, requests: Any) -> tuple[str, Any]:
    """``requests(client)`` run in a turn of tenant ``acme``, the client connected to ``server`` (in
    process, or its URL); the trace id and what the requests returned."""

    async def turn() -> tuple[str, Any]:
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as root:
            async with Client(server, mode=mode) as client:
                return root.trace_id, await requests(client)

    return asyncio.run(turn())


def _in_turn(mode: str, *children: tuple[Any, ...]) -> list[Any]:
    """The expected tree of a turn: in process (``auto``) the SDK discovers the server, over
    JSON-RPC (``legacy``) it initializes, and each request has the SDK's client span."""
    if mode == "auto":
        return [("chain", "turn", [("span", "server/discover", []), *children])]
    sent = [(kind, name, [("span", f"MCP send {server_span[1]}", [server_span])])
            for kind, name, [server_span] in children]
    return [("chain", "turn", [("span", "MCP send initialize", [("span", "initialize", [])]),
                               ("span", "notifications/initialized", []), *sent])]


HANDBOOK_DOC = [{"id": "docs://handbook", "content": HANDBOOK[:CONTENT_CHARS], "metadata": {"mime_type": "text/plain"}}]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_a_resource_read_is_a_retriever_from_the_turn_to_the_resource_functions_work(tmp_path: Path,
                                                                                       mode: str) -> None:
    traced = _install(tmp_path)
    server, seen = _library()
    trace_id, result = _turn(server, mode, lambda client: client.read_resource("docs://handbook"))
    assert result.contents == [types.TextResourceContents(uri="docs://handbook", text=HANDBOOK, mime_type="text/plain")]
    records = traced.trace(trace_id)
    assert unordered(shape(records)) == unordered(_in_turn(mode, ("retriever", "mcp.read_resource", [
        ("span", "resources/read", [("retriever", "resources/read", [("tool", "fetch_handbook", [])])])])))
    client_read, served = (r for r in records if r["type"] == "retriever")
    assert (client_read["name"], client_read["input"], client_read["output"]) == (
        "mcp.read_resource", {"uri": "docs://handbook"}, HANDBOOK_DOC)
    assert client_read["metadata"] == {"mcp_server": "library", "doc_count": 1} and client_read["doc_count"] == 1
    assert (served["input"], served["output"], served["doc_count"], served["level"]) == (
        {"uri": "docs://handbook"}, HANDBOOK_DOC, 1, "DEFAULT")
    assert {r["tenant"] for r in records} == {"acme"} and seen == {"handbook": "acme"}  # in process: one program


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_a_prompt_is_a_span_with_its_arguments_and_messages(tmp_path: Path, mode: str) -> None:
    traced = _install(tmp_path)
    server, seen = _library()
    trace_id, result = _turn(server, mode, lambda client: client.get_prompt("review", {"code": "x = 1"}))
    assert [message.role for message in result.messages] == ["user", "assistant"]
    records = traced.trace(trace_id)
    assert unordered(shape(records)) == unordered(_in_turn(mode, ("span", "mcp.get_prompt review", [
        ("span", "prompts/get review", [("span", "review", [("span", "render review", [])])])])))
    messages = [{"role": "user", "content": "Review this: x = 1"},
                {"role": "assistant", "content": "<image/png base64, 40 chars>"}]
    for name, metadata in (("mcp.get_prompt review", {"mcp_prompt": "review", "mcp_server": "library"}),
                           ("review", {"mcp_prompt": "review"})):
        record = _by_name(records, name)
        assert (record["input"], record["output"], record["metadata"], record["level"], record["tenant"]) == (
            {"code": "x = 1"}, messages, metadata, "DEFAULT", "acme")
    assert seen == {"review": "acme"}


def test_a_binary_resource_is_noted_by_type_and_size_never_inlined(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    server, _ = _library()
    trace_id, result = _turn(server, "auto", lambda client: client.read_resource("docs://logo"))
    [blob] = result.contents
    assert isinstance(blob, types.BlobResourceContents) and blob.blob.startswith("iVBOR")
    records = traced.trace(trace_id)
    noted = [{"id": "docs://logo", "metadata": {"mime_type": "image/png", "bytes": len(LOGO)}}]
    assert [r["output"] for r in records if r["type"] == "retriever"] == [noted, noted]
    assert blob.blob[:12] not in json.dumps(records)


def test_a_failing_read_or_prompt_is_an_error_and_raises_unchanged(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    server, _ = _library()

    async def requests(client: Client) -> tuple[MCPError, MCPError]:
        with pytest.raises(MCPError) as unknown_resource:
            await client.read_resource("docs://missing")
        with pytest.raises(MCPError) as unknown_prompt:
            await client.get_prompt("nope", {})
        return unknown_resource.value, unknown_prompt.value

    trace_id, (unknown_resource, unknown_prompt) = _turn(server, "legacy", requests)
    assert (unknown_resource.error.code, unknown_resource.error.message) == (types.INVALID_PARAMS,
                                                                            "Unknown resource: docs://missing")
    assert unknown_prompt.error.message == "Unknown prompt: nope"
    failed = [(r["type"], r["name"], r["level"], r["status_message"], r["output"]) for r in traced.trace(trace_id)
              if r["name"] in ("mcp.read_resource", "resources/read", "mcp.get_prompt nope", "prompts/get")]
    assert failed == [
        ("retriever", "mcp.read_resource", "ERROR", "MCPError: Unknown resource: docs://missing", None),
        ("span", "resources/read", "ERROR", "Unknown resource: docs://missing", None),  # the SDK's server span
        ("retriever", "resources/read", "ERROR", "MCPError: Unknown resource: docs://missing", None),
        ("span", "mcp.get_prompt nope", "ERROR", "MCPError: Unknown prompt: nope", None),
        ("span", "prompts/get", "ERROR", "Unknown prompt: nope", None),  # no prompt of the server's: no name
        ("span", "prompts/get", "ERROR", "ValueError: Unknown prompt: nope", None),  # the SDK answers it as MCPError
    ]


# -- a lowlevel server: the _meta it receives, the tenant, waiting -----------------------------------
class _Shelf:
    """A lowlevel ``Server`` serving ``docs://<name>`` (``docs://slow`` waits until cancelled,
    ``docs://many`` has 150 pages), a
    prompt ``greet``, and resource listing (a request autotrace does not wrap); ``seen``: the
    ``_meta`` and tenant of each request, by method."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}
        self.started = anyio.Event()
        self.server = Server("shelf", version="2", on_read_resource=self.read, on_get_prompt=self.prompt,
                             on_list_resources=self.list)

    def _saw(self, method: str, params: Any) -> None:
        self.seen[method] = {"meta": dict(params.meta or {}) if params else {}, "tenant": autotrace.current_tenant()}

    async def read(self, ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        self._saw("resources/read", params)
        if params.uri == "docs://slow":
            self.started.set()
            await anyio.Event().wait()  # until cancelled
        pages = 150 if params.uri == "docs://many" else 1
        with autotrace.start_span("inner"):
            return types.ReadResourceResult(contents=[types.TextResourceContents(uri=params.uri, text="page")] * pages)

    async def prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        self._saw("prompts/get", params)
        return types.GetPromptResult(messages=[types.PromptMessage(role="user", content=types.TextContent(text="hi"))])

    async def list(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        self._saw("resources/list", params)
        return types.ListResourcesResult(resources=[])


async def _read_prompt_and_list(client: Client) -> None:
    await client.read_resource("docs://a", meta={"app/request": "r-1", "baggage": "k=v"})
    await client.get_prompt("greet", {"who": "Ada"})
    await client.list_resources()


@pytest.mark.parametrize("trusted", [True, False])
def test_over_streamable_http_every_request_carries_the_trace_and_the_tenant_is_taken_only_when_trusted(
        tmp_path: Path, trusted: bool) -> None:
    traced = _install(tmp_path, trust_incoming_tenant=trusted)
    shelf = _Shelf()
    with uvicorn_server(shelf.server.streamable_http_app()) as base:
        trace_id, _ = _turn(f"{base}/mcp", "legacy", _read_prompt_and_list)
    records = traced.trace(trace_id)
    assert unordered(shape(records)) == unordered([("chain", "turn", [  # a notification carries no trace over HTTP
        ("span", "MCP send initialize", [("span", "initialize", [])]),
        ("retriever", "mcp.read_resource", [("span", "MCP send resources/read", [
            ("span", "resources/read", [("retriever", "resources/read", [("span", "inner", [])])])])]),
        ("span", "mcp.get_prompt greet", [("span", "MCP send prompts/get greet", [
            ("span", "prompts/get greet", [("span", "greet", [])])])]),
        ("span", "MCP send resources/list", [("span", "resources/list", [])])])])
    for method in ("resources/read", "prompts/get greet", "resources/list"):  # wrapped or not: the SDK's injection
        meta = shelf.seen[method.split()[0]]["meta"]
        sender = _by_name(records, f"MCP send {method}")
        assert (meta["traceparent"], meta.get("tracestate")) == (f"00-{trace_id}-{sender['id']}-01", None)
    assert shelf.seen["resources/read"]["meta"] == {  # the caller's keys kept, its tenant added
        "app/request": "r-1", "baggage": "k=v,autotrace.tenant=acme",
        "traceparent": shelf.seen["resources/read"]["meta"]["traceparent"]}
    assert shelf.seen["prompts/get"]["meta"]["baggage"] == "autotrace.tenant=acme"
    tenant = "acme" if trusted else None
    assert (shelf.seen["resources/read"]["tenant"], shelf.seen["prompts/get"]["tenant"]) == (tenant, tenant)
    served = [r for r in records if r["name"] in ("resources/read", "inner", "prompts/get greet", "greet")]
    assert {r["tenant"] for r in served} == {tenant}
    # the SDK's server span of a request autotrace does not trace takes the tenant too; not that of
    # ``initialize``, which the SDK's runner answers itself (no handler)
    assert (_by_name(records, "resources/list")["tenant"], _by_name(records, "initialize")["tenant"]) == (tenant, None)
    assert _by_name(records, "mcp.read_resource")["metadata"] == {"mcp_server": "shelf", "mcp_server_version": "2",
                                                                  "doc_count": 1}


def test_in_process_only_the_traced_requests_carry_their_observations_trace(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    shelf = _Shelf()
    trace_id, _ = _turn(shelf.server, "auto", _read_prompt_and_list)  # no JSON-RPC: no injection by the SDK
    records = traced.trace(trace_id)
    read, prompt = _by_name(records, "mcp.read_resource"), _by_name(records, "mcp.get_prompt greet")
    sent = {method: {key: value for key, value in seen["meta"].items() if not key.startswith(PROTOCOL_KEYS)}
            for method, seen in shelf.seen.items()}
    assert sent == {
        "resources/read": {"app/request": "r-1", "baggage": "k=v,autotrace.tenant=acme",
                           "traceparent": f"00-{trace_id}-{read['id']}-01"},
        "prompts/get": {"baggage": "autotrace.tenant=acme", "traceparent": f"00-{trace_id}-{prompt['id']}-01"},
        "resources/list": {},  # nor needs it: the server runs in the caller's context
    }
    assert _by_name(records, "resources/list")["trace_id"] == trace_id


def test_a_timed_out_read_is_an_error_and_a_cancelled_one_a_warning(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    shelf = _Shelf()

    async def turn() -> tuple[str, MCPError, bool]:
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as root:
            async with Client(shelf.server, mode="legacy", read_timeout_seconds=0.5) as client:
                with pytest.raises(MCPError) as timed_out:
                    await client.read_resource("docs://slow")
            shelf.started = anyio.Event()
            async with Client(shelf.server, mode="legacy") as client:
                task = asyncio.ensure_future(client.read_resource("docs://slow"))
                await shelf.started.wait()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            return root.trace_id, timed_out.value, task.cancelled()

    trace_id, timed_out, cancelled = asyncio.run(turn())
    assert timed_out.error.code == types.REQUEST_TIMEOUT and cancelled
    records = traced.trace(trace_id)
    assert next(r["status_message"] for r in records if r["name"] == "mcp.read_resource") == (
        "MCPError: Request 'resources/read' timed out")
    reads = [(r["type"], r["name"], r["level"], r["status_message"].split(":")[0]) for r in records
             if r["type"] == "retriever"]
    assert reads == [("retriever", "mcp.read_resource", "ERROR", "MCPError"),
                     ("retriever", "resources/read", "WARNING", "CancelledError"),  # the server gave up too
                     ("retriever", "mcp.read_resource", "WARNING", "CancelledError"),
                     ("retriever", "resources/read", "WARNING", "CancelledError")]


def test_a_read_of_many_contents_records_the_first_documents_and_counts_them_all(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    shelf = _Shelf()
    trace_id, result = _turn(shelf.server, "auto", lambda client: client.read_resource("docs://many"))
    assert len(result.contents) == 150
    read = _by_name(traced.trace(trace_id), "mcp.read_resource")
    assert (read["doc_count"], len(read["output"]), read["metadata"]["documents_recorded"]) == (150, MAX_DOCUMENTS,
                                                                                               MAX_DOCUMENTS)
    assert read["output"][0] == {"id": "docs://many", "content": "page"}
    assert autotrace.stats()["retrieval_documents_truncated"] == 2 * (150 - MAX_DOCUMENTS)  # client and server


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_a_result_autotrace_cannot_read_reaches_the_caller_unchanged(tmp_path: Path, mode: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    traced = _install(tmp_path)
    shelf = _Shelf()

    def unreadable(contents: Any) -> Any:
        raise RuntimeError("a content autotrace does not understand")

    monkeypatch.setattr(mcp_integration, "_resource_document", unreadable)  # autotrace's own reading fails
    trace_id, result = _turn(shelf.server, mode, lambda client: client.read_resource("docs://a"))
    assert result.contents == [types.TextResourceContents(uri="docs://a", text="page")]
    reads = [(r["name"], r["level"], r["output"], r["input"]) for r in traced.trace(trace_id) if r["type"] == "retriever"]
    assert reads == [("mcp.read_resource", "DEFAULT", None, {"uri": "docs://a"}),
                     ("resources/read", "DEFAULT", None, {"uri": "docs://a"})]
    assert autotrace.stats()["internal_errors.mcp.finish"] == 2  # on each side, counted and logged once


def test_uninstall_restores_reads_and_prompts(tmp_path: Path) -> None:
    originals = {name: ClientSession.__dict__[name] for name in ("read_resource", "get_prompt")}
    handler = lowlevel_server.Server.__dict__["get_request_handler"]
    _install(tmp_path)
    assert all(ClientSession.__dict__[name] is not original for name, original in originals.items())
    autotrace.uninstall()
    assert {name: ClientSession.__dict__[name] for name in originals} == originals
    assert lowlevel_server.Server.__dict__["get_request_handler"] is handler
