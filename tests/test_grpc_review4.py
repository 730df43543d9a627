"""gRPC, fourth review, with real grpcio servers on loopback: calls of untraced methods that grpc
rejects, and the cleanup of a streaming handler whose call ended while it was still sending."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest

import autotrace
from tests import grpc_services as svc
from tests.helpers import Traced, shape

SERVICE = "t.Review4"
UNTRACED = ("/grpc.health.v1.Health/Check", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_an_untraced_method_the_server_has_no_handler_for_gets_no_span(tmp_path: Any, asyncio_server: bool) -> None:
    """``grpc_untraced_methods`` (health checks, reflection by default) means no span, client or
    server: a probe or ``grpcurl`` calling one on a server that does not serve it got an ``_OTHER``
    server span (UNIMPLEMENTED) on every call, each a trace of its own with no tenant."""
    traced = svc.install(tmp_path, unknown_tenant="default")

    async def scenario() -> list[grpc.StatusCode]:
        server, port = await svc.start_server(asyncio_server, svc.handler(
            svc.AioEcho() if asyncio_server else svc.Echo()))
        codes = []
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                for method in UNTRACED:
                    with pytest.raises(grpc.RpcError) as raised:
                        await channel.unary_unary(method)(b"")
                    codes.append(raised.value.code())
                await svc.Stub(channel).Unary({"text": "x"}, metadata=[("x-probe", "1")])
        finally:
            await svc.stop_server(server)
        return codes

    assert asyncio.run(scenario()) == [grpc.StatusCode.UNIMPLEMENTED] * 2
    inner = "inner-aio-unary" if asyncio_server else "inner-unary"
    assert shape(traced.records()) == [("span", f"{svc.SERVICE}/Unary", [
        ("span", f"{svc.SERVICE}/Unary", [("retriever", inner, [])])])]


def _cleanup_tree(traced: Traced, root: Any) -> None:
    """The caller's trace holds the handler's cleanup under the server span, every span the caller's
    tenant, and nothing was recorded outside it."""
    records = traced.records()
    assert shape(records) == [("chain", "caller", [("span", f"{SERVICE}/S", [
        ("span", f"{SERVICE}/S", [("retriever", "cleanup", [])])])])]
    assert {(r["trace_id"], r["tenant"]) for r in records} == {(root.trace_id, "acme")}
    server_span = records[2]
    assert (server_span["level"], server_span["status_message"]) == ("WARNING", "CANCELLED: the call was cancelled")


def test_a_sync_streams_cleanup_after_its_caller_cancelled_is_the_calls(tmp_path: Any) -> None:
    """A sync server drops a stream whose call ended (here cancelled by its caller) after the
    handler's last ``yield``: the handler's ``finally`` ran only then, once the call's scope was
    gone, so what it recorded was a trace of its own with no tenant. It runs in the call's scope now."""
    traced = svc.install(tmp_path, trust_incoming_tenant=True, unknown_tenant="default")
    sent, cancelled, cleaned = threading.Event(), threading.Event(), threading.Event()

    def stream(request: Any, context: grpc.ServicerContext) -> Iterator[dict[str, Any]]:
        try:
            yield {"i": 0}
            sent.set()
            cancelled.wait(10)
            for _ in range(1000):  # until grpc has seen the cancellation
                if not context.is_active():
                    break
                threading.Event().wait(0.01)
            yield {"i": 1}  # grpc sends nothing more, and drops the stream
        finally:
            with autotrace.start_retrieval("cleanup", query="q"):
                pass
            cleaned.set()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
        "S": grpc.unary_stream_rpc_method_handler(stream, **svc.SERVER_KW)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            with autotrace.tenant("acme"), autotrace.start_chain("caller") as root:
                call = channel.unary_stream(f"/{SERVICE}/S", **svc.CLIENT_KW)({})
                assert next(call) == {"i": 0}
                assert sent.wait(10)
                call.cancel()
                cancelled.set()
            assert cleaned.wait(10)
    finally:
        server.stop(0)
    _cleanup_tree(traced, root)


def test_an_aio_streams_cleanup_after_its_caller_cancelled_is_the_calls(tmp_path: Any) -> None:
    """grpc.aio drops an async-generator stream whose call ends while it waits to send an item (the
    caller stopped reading, then cancelled): the handler's ``finally`` ran when the loop closed it,
    with the span no longer current, so what it recorded was a trace of its own. Now under the call."""
    traced = svc.install(tmp_path, trust_incoming_tenant=True, unknown_tenant="default")
    cleaned = threading.Event()

    async def stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x" * (1 << 20)  # more than the caller's flow-control window
        finally:
            with autotrace.start_retrieval("cleanup", query="q"):
                pass
            cleaned.set()

    async def scenario() -> Any:
        server, port = await svc.start_server(True, grpc.method_handlers_generic_handler(SERVICE, {
            "S": grpc.unary_stream_rpc_method_handler(stream)}))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with autotrace.tenant("acme"), autotrace.start_chain("caller") as root:
                    call = channel.unary_stream(f"/{SERVICE}/S")(b"")
                    assert len(await call.read()) == 1 << 20
                    call.cancel()
                for _ in range(200):
                    if cleaned.is_set():
                        break
                    gc.collect()
                    await asyncio.sleep(0.05)
        finally:
            await svc.stop_server(server)
        return root

    root = asyncio.run(scenario())
    assert cleaned.is_set()
    _cleanup_tree(traced, root)


def test_an_aio_channel_made_before_install_is_traced_by_instrument_channel(tmp_path: Any) -> None:
    """``instrument_channel`` on a ``grpc.aio`` channel made before ``install()`` wrapped it with
    ``grpc.intercept_channel``, which made a sync channel of it: every call through it raised
    AttributeError. Its calls are traced now, stubs made before included, and once only."""
    from autotrace.integrations.grpc import instrument_channel

    traced = svc.install(tmp_path, trust_incoming_tenant=True)

    async def scenario() -> tuple[Any, dict[str, Any]]:
        server, port = await svc.start_server(True, svc.handler(svc.AioEcho()))
        channel = grpc.aio.insecure_channel.__wrapped__(f"127.0.0.1:{port}")  # as grpc has it: untraced
        early = svc.Stub(channel)
        try:
            instrumented = instrument_channel(instrument_channel(channel))
            with autotrace.tenant("acme"), autotrace.start_chain("caller") as root:
                reply = await svc.Stub(instrumented).Unary({"text": "x"})
                await early.Unary({"text": "y"})
        finally:
            await channel.close()
            await svc.stop_server(server)
        return root, reply

    root, reply = asyncio.run(scenario())
    assert (reply["echo"], reply["tenant"]) == ("x", "acme")
    records = traced.trace(root.trace_id)
    call = ("span", f"{svc.SERVICE}/Unary", [("span", f"{svc.SERVICE}/Unary", [("retriever", "inner-aio-unary", [])])])
    assert shape(records) == [("chain", "caller", [call, call])]
    assert {r["tenant"] for r in records} == {"acme"}
