"""gRPC edge cases with real grpcio servers on loopback: forwarded metadata, interceptors given
positionally or explicitly after ``install()``, and calls the client cancels or lets expire."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest

import autotrace
from autotrace.integrations import grpc as grpc_integration
from tests import grpc_services as svc
from tests.helpers import shape

RPC = "test.Echo"
CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
KW = svc.SERVER_KW
CLIENT_KW = svc.CLIENT_KW
_install = svc.install


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


class _Metadata(grpc.ServerInterceptor):
    """Records every incoming call's metadata."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        self.seen.append(dict(details.invocation_metadata))
        return continuation(details)


def test_one_shot_metadata_reaches_the_server_whole(tmp_path) -> None:
    """grpc takes any iterable of pairs; a generator read while looking for the caller's
    traceparent (a call outside any span) sent the call without its metadata."""
    _install(tmp_path)
    capture = _Metadata()
    server, port = svc.start_sync_server(interceptors=[capture])
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            svc.Stub(channel).Unary({"text": "x"}, metadata=(pair for pair in [("authorization", "Bearer t")]))
    finally:
        server.stop(0)
    (seen,) = capture.seen
    assert seen["authorization"] == "Bearer t" and "traceparent" in seen


def test_a_response_stream_the_caller_drops_is_cancelled_and_its_span_ends(tmp_path) -> None:
    """grpc cancels a call whose iterator the caller drops; a done-callback that held the call kept
    it running on the server (every message produced) and its client span never ended."""
    traced = _install(tmp_path)
    server, port = svc.start_sync_server()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, autotrace.start_chain("caller") as root:
            responses = svc.Stub(channel).ServerStream({"n": 100_000})
            next(responses)
            freed = weakref.ref(responses)
            del responses
            gc.collect()
            assert freed() is None
            time.sleep(0.3)
    finally:
        server.stop(0)
    records = traced.trace(root.trace_id)
    client, server_span = (r for r in records if r["type"] == "span")
    assert (client["level"], client["status_message"]) == ("WARNING", "CANCELLED: the caller dropped the call")
    assert server_span["level"] == "WARNING" and server_span["status_message"].startswith("CANCELLED")
    assert len(records) < 1000  # the server stopped producing


def test_aio_call_freed_as_its_loop_ends_records_its_status(tmp_path) -> None:
    """A stream left unfinished as ``asyncio.run`` ends is cancelled with no loop running: its
    status was read in a task that could not start, so the span ended without one (and an
    internal error was logged)."""
    traced = _install(tmp_path)
    server, port = svc.start_sync_server()

    async def scenario() -> str:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        with autotrace.start_chain("caller") as root:
            async for _ in svc.Stub(channel).ServerStream({"n": 50}):
                break
        return root.trace_id

    try:
        trace_id = asyncio.run(scenario())
        gc.collect()
    finally:
        server.stop(0)
    records = traced.trace(trace_id)
    (root,) = (r for r in records if r["type"] == "chain")
    (client,) = (r for r in records if r["parent_id"] == root["id"])
    assert client["level"] == "WARNING" and client["status_message"].startswith("CANCELLED")
    assert not any(key.startswith("internal_errors") for key in autotrace.stats())


def _tenant_stream(request: Any, context: Any) -> Iterator[Any]:
    for i in range(2):
        with autotrace.start_tool(f"tool-{i}"):
            pass
        yield {"tenant": autotrace.current_tenant()}


def test_aio_server_sync_stream_handler_sees_the_adopted_tenant(tmp_path) -> None:
    """A grpc.aio server reads a synchronous response stream on its thread pool: the adopted
    tenant must be in scope there, as the observation is (outgoing calls carry it on)."""
    traced = _install(tmp_path, trust_incoming_tenant=True)

    async def scenario() -> tuple[str, list[Any]]:
        server = grpc.aio.server(futures.ThreadPoolExecutor(max_workers=2))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "test.T", {"S": grpc.unary_stream_rpc_method_handler(_tenant_stream, **KW)}),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with autotrace.tenant("acme"), autotrace.start_chain("caller") as root:
                    replies = [r async for r in channel.unary_stream("/test.T/S", **CLIENT_KW)({})]
            return root.trace_id, replies
        finally:
            await server.stop(0)

    trace_id, replies = asyncio.run(scenario())
    assert replies == [{"tenant": "acme"}, {"tenant": "acme"}]
    assert shape(traced.trace(trace_id)) == [("chain", "caller", [("span", "test.T/S", [
        ("span", "test.T/S", [("tool", "tool-0", []), ("tool", "tool-1", [])])])])]
