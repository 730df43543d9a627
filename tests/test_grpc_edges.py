"""gRPC edge cases with real grpcio servers on loopback: forwarded metadata, interceptors given
positionally or explicitly after ``install()``, and calls the client cancels or lets expire."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest

import autotrace
from autotrace.integrations import grpc as grpc_integration
from tests import grpc_services as svc
from tests.helpers import Traced, shape

RPC = "test.Echo"
CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
KW = {"request_deserializer": svc.loads, "response_serializer": svc.dumps}
CLIENT_KW = {"request_serializer": svc.dumps, "response_deserializer": svc.loads}


def _install(tmp_path: Any, **options: Any) -> Traced:
    autotrace.install(local_store="on", local_store_path=tmp_path / "e.db", integrations=("grpc",),
                      export_interval=0.05, **options)
    return Traced(tmp_path / "e.db")


class _Capture(grpc.ServerInterceptor):
    """Records the trace headers each incoming call carries."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        self.seen.append({k: v for k, v in details.invocation_metadata if k in ("traceparent", "baggage")})
        return continuation(details)


def test_forwarded_metadata_carries_this_call_not_the_callers_trace_or_tenant(tmp_path) -> None:
    """A handler that forwards its incoming metadata (e.g. for auth) must not pass on the caller's
    traceparent (the downstream server would skip the forwarding call's span) nor the untrusted
    caller's tenant; other baggage entries stay."""
    traced = _install(tmp_path, trust_incoming_tenant=False)
    capture = _Capture()
    downstream, down_port = svc.start_sync_server(interceptors=[capture])

    def forward(request: Any, context: grpc.ServicerContext) -> Any:
        keep = [(k, v) for k, v in context.invocation_metadata() if k in ("authorization", "traceparent", "baggage")]
        with grpc.insecure_channel(f"127.0.0.1:{down_port}") as channel:
            return svc.Stub(channel).Unary({"text": "fwd"}, metadata=keep)

    middle = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    middle.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "test.Fwd", {"F": grpc.unary_unary_rpc_method_handler(forward, **KW)}),))
    port = middle.add_insecure_port("127.0.0.1:0")
    middle.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/test.Fwd/F", **CLIENT_KW)
            call({}, metadata=[("authorization", "Bearer t"), ("traceparent", CALLER),
                               ("baggage", "autotrace.tenant=victim,region=eu")])
    finally:
        middle.stop(0)
        downstream.stop(0)
    (headers,) = capture.seen
    assert headers["baggage"] == "region=eu"
    records = traced.trace(CALLER.split("-")[1])
    assert shape(records) == [("span", "test.Fwd/F", [("span", "test.Fwd/F", [("span", f"{RPC}/Unary", [
        ("span", f"{RPC}/Unary", [("retriever", "inner-unary", [])])])])])]
    client, server = (r for r in records if r["name"] == f"{RPC}/Unary")
    assert headers["traceparent"].split("-")[2] == client["id"] == server["parent_id"]
    assert records[0]["parent_id"] == CALLER.split("-")[2]  # the explicit traceparent, outside any span


class _UserInterceptor(grpc.ServerInterceptor):
    def intercept_service(self, continuation: Any, details: Any) -> Any:
        return continuation(details)


class _AioUserInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        return await continuation(details)


@pytest.mark.parametrize("asyncio_server", [False, True])
@pytest.mark.parametrize("explicit", [False, True])
def test_interceptors_given_positionally_or_explicitly_give_one_server_span(tmp_path, asyncio_server: bool,
                                                                            explicit: bool) -> None:
    """``grpc.server(pool, None, [interceptor])`` is traced; passing ``server_interceptor()`` (code
    written for servers made before ``install()``) and ``instrument_channel`` on a channel made
    after it do not trace a call twice."""
    traced = _install(tmp_path)
    if explicit:
        user: Any = grpc_integration.server_interceptor(asyncio=asyncio_server)
    else:
        user = _AioUserInterceptor() if asyncio_server else _UserInterceptor()

    async def scenario() -> str:
        if asyncio_server:
            server: Any = grpc.aio.server(None, None, [user])
            server.add_generic_rpc_handlers((svc.handler(svc.AioEcho()),))
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
        else:
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), None, [user])
            server.add_generic_rpc_handlers((svc.handler(svc.Echo()),))
            port = server.add_insecure_port("127.0.0.1:0")
            server.start()
        try:
            with autotrace.start_chain("caller") as root, grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = svc.Stub(grpc_integration.instrument_channel(channel) if explicit else channel)
                await asyncio.to_thread(stub.Unary, {"text": "x"})  # a sync call must not block the aio server
            return root.trace_id
        finally:
            stopped = server.stop(0)
            if asyncio_server:
                await stopped

    trace_id = asyncio.run(scenario())
    inner = "inner-aio-unary" if asyncio_server else "inner-unary"
    assert shape(traced.trace(trace_id)) == [
        ("chain", "caller", [("span", f"{RPC}/Unary", [("span", f"{RPC}/Unary", [("retriever", inner, [])])])])
    ]


def _slow(request: Any, context: Any) -> Any:
    time.sleep(0.5)
    return {}


def _stream(request: Any, context: Any) -> Iterator[Any]:
    for i in range(100):
        time.sleep(0.02)
        yield {"i": i}


async def _aio_slow(request: Any, context: Any) -> Any:
    await asyncio.sleep(0.5)
    return {}


async def _aio_stream(request: Any, context: Any) -> AsyncIterator[Any]:
    for i in range(100):
        await asyncio.sleep(0.02)
        yield {"i": i}


def _slow_handler(asyncio_server: bool) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler("test.Slow", {
        "Wait": grpc.unary_unary_rpc_method_handler(_aio_slow if asyncio_server else _slow, **KW),
        "Stream": grpc.unary_stream_rpc_method_handler(_aio_stream if asyncio_server else _stream, **KW),
    })


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_calls_the_client_gives_up_on_are_warnings_with_their_status(tmp_path, asyncio_server: bool) -> None:
    """A handler that finishes after the caller's deadline, or whose caller cancelled, recorded OK
    (or an UNKNOWN error); a client that cancels its own call recorded an ERROR."""
    traced = _install(tmp_path)

    async def scenario() -> dict[str, str]:
        if asyncio_server:
            server: Any = grpc.aio.server()
            server.add_generic_rpc_handlers((_slow_handler(True),))
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
        else:
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
            server.add_generic_rpc_handlers((_slow_handler(False),))
            port = server.add_insecure_port("127.0.0.1:0")
            server.start()
        traces = {}
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                wait = channel.unary_unary("/test.Slow/Wait", **CLIENT_KW)
                stream = channel.unary_stream("/test.Slow/Stream", **CLIENT_KW)
                with autotrace.start_chain("deadline") as root, pytest.raises(grpc.aio.AioRpcError):
                    traces["deadline"] = root.trace_id
                    await wait({}, timeout=0.2)
                with autotrace.start_chain("cancel") as root:
                    traces["cancel"] = root.trace_id
                    call = wait({})
                    await asyncio.sleep(0.1)
                    call.cancel()
                with autotrace.start_chain("stream") as root:
                    traces["stream"] = root.trace_id
                    call = stream({})
                    async for _ in call:
                        break
                    call.cancel()
                await asyncio.sleep(0.7)  # the sync handlers run on to their end
        finally:
            stopped = server.stop(0)
            if asyncio_server:
                await stopped
        return traces

    traces = asyncio.run(scenario())
    outcome = {}
    for case, trace_id in traces.items():
        client, server = (r for r in traced.trace(trace_id) if r["type"] == "span")
        outcome[case] = [(r["level"], r["status_message"].split(":")[0]) for r in (client, server)]
    assert outcome == {
        "deadline": [("ERROR", "DEADLINE_EXCEEDED"), ("WARNING", "DEADLINE_EXCEEDED")],
        "cancel": [("WARNING", "CANCELLED"), ("WARNING", "CANCELLED")],
        "stream": [("WARNING", "CANCELLED"), ("WARNING", "CANCELLED")],
    }
