"""gRPC methods left untraced (``grpc_untraced_methods``): health checks and reflection by default.
A Kubernetes probe calls ``/grpc.health.v1.Health/Check`` every few seconds; each call was a trace of
its own, with no tenant (dropped and counted, or exported as noise under a default tenant). Real
grpcio servers on loopback, sync and asyncio, the methods served by generic handlers under the
health service's own name."""

from __future__ import annotations

import asyncio
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest

import autotrace
from autotrace.config import ConfigError, load_settings
from tests import grpc_services as svc
from tests.helpers import shape

HEALTH = "grpc.health.v1.Health"


def _answer(request: Any, context: Any) -> dict[str, Any]:
    with autotrace.start_retrieval("inside", query="q"):
        pass
    return {"status": "SERVING"}


def _handlers() -> tuple[grpc.GenericRpcHandler, ...]:
    method = grpc.unary_unary_rpc_method_handler(_answer, **svc.SERVER_KW)
    return (grpc.method_handlers_generic_handler(HEALTH, {"Check": method}),
            grpc.method_handlers_generic_handler("t.Orders", {"Get": method}))


def _call_both(port: int) -> tuple[str, list[Any]]:
    """Health check and an ordinary method, each under a root chain; the chain's trace id and replies."""
    with autotrace.start_chain("caller") as root, grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        replies = [channel.unary_unary(f"/{service}/{name}", **svc.CLIENT_KW)({})
                   for service, name in ((HEALTH, "Check"), ("t.Orders", "Get"))]
    return root.trace_id, replies


def _sync_server() -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(_handlers())
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_health_checks_get_no_span_on_client_or_server_while_other_methods_do(tmp_path: Any) -> None:
    traced = svc.install(tmp_path)
    server, port = _sync_server()
    try:
        trace_id, replies = _call_both(port)
    finally:
        server.stop(0)
    assert replies == [{"status": "SERVING"}] * 2
    # the health check's own work is recorded where it runs (under the current span: none on the server)
    records = traced.records()
    assert shape(traced.trace(trace_id)) == [("chain", "caller", [
        ("span", "t.Orders/Get", [("span", "t.Orders/Get", [("retriever", "inside", [])])])])]
    roots = [r for r in records if r["trace_id"] != trace_id]
    assert [(r["type"], r["name"], r["parent_id"]) for r in roots] == [("retriever", "inside", None)]


def test_the_setting_names_other_methods_or_none(tmp_path: Any) -> None:
    traced = svc.install(tmp_path, grpc_untraced_methods=["/t.Orders/*"])
    server, port = _sync_server()
    try:
        trace_id, _ = _call_both(port)
    finally:
        server.stop(0)
    assert shape(traced.trace(trace_id)) == [("chain", "caller", [
        ("span", f"{HEALTH}/Check", [("span", f"{HEALTH}/Check", [("retriever", "inside", [])])])])]

    autotrace.uninstall()
    traced = svc.install(tmp_path / "none", grpc_untraced_methods="none")
    server, port = _sync_server()
    try:
        trace_id, _ = _call_both(port)
    finally:
        server.stop(0)
    assert [name for _, name, _ in shape(traced.trace(trace_id))[0][2]] == [f"{HEALTH}/Check", "t.Orders/Get"]


def test_an_asyncio_server_and_channel_leave_health_checks_untraced(tmp_path: Any) -> None:
    traced = svc.install(tmp_path)

    async def main() -> tuple[str, list[Any]]:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(_handlers())
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            with autotrace.start_chain("caller") as root:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    replies = [await channel.unary_unary(f"/{service}/{name}", **svc.CLIENT_KW)({})
                               for service, name in ((HEALTH, "Check"), ("t.Orders", "Get"))]
            return root.trace_id, replies
        finally:
            await server.stop(0)

    trace_id, replies = asyncio.run(main())
    assert replies == [{"status": "SERVING"}] * 2
    assert shape(traced.trace(trace_id)) == [("chain", "caller", [
        ("span", "t.Orders/Get", [("span", "t.Orders/Get", [("retriever", "inside", [])])])])]


@pytest.mark.parametrize(("raw", "expected"), [
    ("none", ()), ("off", ()), ("/a.B/*, /c.D/E", ("/a.B/*", "/c.D/E")),
])
def test_the_environment_variable(raw: str, expected: tuple[str, ...]) -> None:
    assert load_settings(env={"AUTOTRACE_GRPC_UNTRACED_METHODS": raw}).grpc_untraced_methods == expected


def test_a_pattern_that_is_no_text_is_refused() -> None:
    with pytest.raises(ConfigError, match="grpc_untraced_methods"):
        load_settings({"grpc_untraced_methods": [3]})
    assert load_settings(env={}).grpc_untraced_methods == ("/grpc.health.v1.Health/*", "/grpc.reflection.*")
