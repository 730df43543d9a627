"""gRPC with real grpcio servers on loopback: several trace headers in one call, trace
headers grpc rejects, calls left running as their event loop ends, sync stream handlers that return
a list, and method handlers that are not grpc's own type."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
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
FIRST = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
SECOND = "00-1bf7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01"


def _spans(records: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(r["level"], r["status_message"]) for r in records if r["type"] == "span"]


def test_several_baggage_entries_are_one_list(tmp_path) -> None:
    """W3C baggage allows several baggage headers, which make one list; only the first was read,
    so a tenant in a later one (another proxy or SDK adding its own header) was lost. (Several
    traceparent headers never reach the handler: grpc keeps the last one.)"""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2),
                         interceptors=[grpc_integration.server_interceptor()])
    server.add_generic_rpc_handlers((svc.handler(svc.Echo()),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")  # made before install: sends the headers as given
    traced = svc.install(tmp_path, trust_incoming_tenant=True)
    try:
        reply = svc.Stub(channel).Unary({"text": "x"}, metadata=[
            ("traceparent", FIRST), ("traceparent", SECOND),
            ("baggage", "region=eu"), ("baggage", "autotrace.tenant=acme,plan=pro"),
        ])
    finally:
        channel.close()
        server.stop(0)
    assert (reply["tenant"], reply["traceparent"]) == ("acme", SECOND)
    records = traced.trace(SECOND.split("-")[1])
    assert shape(records) == [("span", f"{RPC}/Unary", [("retriever", "inner-unary", [])])]
    assert [(r["tenant"], r["parent_id"]) for r in records] == [
        ("acme", SECOND.split("-")[2]), ("acme", records[0]["id"])]


def test_several_traceparents_given_to_a_call_start_a_new_trace(tmp_path) -> None:
    """A call made outside any span joins the trace its metadata names; with two traceparent
    entries (incoming HTTP headers forwarded as they came) it joined the first, where W3C trace
    context says none is valid."""
    traced = svc.install(tmp_path)
    server, port = svc.start_sync_server()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = svc.Stub(channel).Unary({"text": "x"}, metadata=[("traceparent", FIRST), ("traceparent", SECOND)])
    finally:
        server.stop(0)
    records = traced.records()
    assert shape(records) == [("span", f"{RPC}/Unary", [("span", f"{RPC}/Unary", [("retriever", "inner-unary", [])])])]
    client = records[0]
    assert client["parent_id"] is None and client["trace_id"] not in (FIRST.split("-")[1], SECOND.split("-")[1])
    assert reply["traceparent"] == f"00-{client['trace_id']}-{client['id']}-01"
    assert autotrace.stats()["propagation_duplicate_traceparent"] == 1


def _wait(request: Any, context: Any) -> Any:
    time.sleep(0.5)
    return {}


def _trickle(request: Any, context: Any) -> Iterator[Any]:
    for i in range(1000):  # until the caller cancels
        time.sleep(0.01)
        yield {"i": i}


def test_aio_calls_still_running_as_their_loop_ends_are_ended(tmp_path) -> None:
    """A grpc.aio call left running as ``asyncio.run`` ends (a stream read in part, a call never
    awaited) reports its status only when it is freed: while the application held it, its span
    stayed open and was never exported. It ends as the loop shuts down, CANCELLED."""
    traced = svc.install(tmp_path)
    slow = grpc.method_handlers_generic_handler("test.Slow", {
        "Wait": grpc.unary_unary_rpc_method_handler(_wait, **svc.SERVER_KW),
        "Trickle": grpc.unary_stream_rpc_method_handler(_trickle, **svc.SERVER_KW),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((slow,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    held: list[Any] = []

    async def scenario() -> str:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        with autotrace.start_chain("caller") as root:
            stream = channel.unary_stream("/test.Slow/Trickle", **svc.CLIENT_KW)({})
            await stream.read()
            held.extend([channel, stream, channel.unary_unary("/test.Slow/Wait", **svc.CLIENT_KW)({})])
        return root.trace_id

    try:
        trace_id = asyncio.run(scenario())
        ended = "CANCELLED: the event loop ended before the call did"
        records = traced.trace(trace_id)  # the calls still held
        assert shape(records) == [
            ("chain", "caller", [("span", "test.Slow/Trickle", []), ("span", "test.Slow/Wait", [])])]
        assert _spans(records) == [("WARNING", ended), ("WARNING", ended)]
        held.clear()
        gc.collect()  # grpc cancels the calls: the server's handler stops
        deadline = time.monotonic() + 5
        while len(records) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
            records = traced.trace(trace_id)
    finally:
        server.stop(0)
    assert shape(records) == [("chain", "caller", [
        ("span", "test.Slow/Trickle", [("span", "test.Slow/Trickle", [])]), ("span", "test.Slow/Wait", [])])]
    assert _spans(records) == [("WARNING", ended), ("WARNING", "CANCELLED: the call was cancelled"), ("WARNING", ended)]
    assert not any(key.startswith("internal_errors") for key in autotrace.stats())


def _a_list(request: Any, context: Any) -> Any:
    return [{"i": 0}, {"i": 1}]


def _nothing(request: Any, context: Any) -> Any:
    return None


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_a_sync_stream_handler_that_returns_no_iterator_is_recorded_as_the_client_sees_it(tmp_path,
                                                                                         asyncio_server: bool) -> None:
    """The sync server calls ``next`` on what a streaming handler returns, so a list (or None)
    fails the call, UNKNOWN; grpc.aio iterates it, so only None fails. The server span said OK."""
    traced = svc.install(tmp_path)
    handlers = grpc.method_handlers_generic_handler("test.Bad", {
        "List": grpc.unary_stream_rpc_method_handler(_a_list, **svc.SERVER_KW),
        "Nothing": grpc.unary_stream_rpc_method_handler(_nothing, **svc.SERVER_KW),
    })

    async def scenario() -> dict[str, Any]:
        server, port = await svc.start_server(asyncio_server, handlers)
        outcome = {}
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                for method in ("List", "Nothing"):
                    with autotrace.start_chain(method) as root:
                        try:
                            call = channel.unary_stream(f"/test.Bad/{method}", **svc.CLIENT_KW)({})
                            replies = [r async for r in call]
                            seen: Any = ("OK", replies)
                        except grpc.aio.AioRpcError as error:
                            seen = (error.code().name, error.details())
                    records = traced.trace(root.trace_id)
                    assert shape(records) == [("chain", method, [("span", f"test.Bad/{method}", [
                        ("span", f"test.Bad/{method}", [])])])]
                    outcome[method] = [seen, _spans(records)[1]]
        finally:
            await svc.stop_server(server)
        return outcome

    if asyncio_server:
        expected = {
            "List": [("OK", [{"i": 0}, {"i": 1}]), ("DEFAULT", None)],
            "Nothing": [("UNKNOWN", "Unexpected <class 'TypeError'>: 'NoneType' object is not iterable"),
                        ("ERROR", "TypeError: 'NoneType' object is not iterable")],
        }
    else:
        expected = {
            kind: [("UNKNOWN", f"Exception iterating responses: '{name}' object is not an iterator"),
                   ("ERROR", f"TypeError: '{name}' object is not an iterator")]
            for kind, name in (("List", "list"), ("Nothing", "NoneType"))
        }
    assert asyncio.run(scenario()) == expected


class _Handler(grpc.RpcMethodHandler):
    """A method handler of the application's own type (``grpc.RpcMethodHandler`` is an interface)."""

    def __init__(self, behavior: Any) -> None:
        self.request_streaming = self.response_streaming = False
        self.request_deserializer, self.response_serializer = svc.loads, svc.dumps
        self.unary_unary, self.unary_stream, self.stream_unary, self.stream_stream = behavior, None, None, None


class _Generic(grpc.GenericRpcHandler):
    def __init__(self, behavior: Any) -> None:
        self.behavior = behavior

    def service(self, handler_call_details: Any) -> Any:
        return _Handler(self.behavior) if handler_call_details.method == f"/{RPC}/Unary" else None


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_a_method_handler_of_another_type_is_traced(tmp_path, asyncio_server: bool) -> None:
    """A handler that is not grpc's named tuple could not be wrapped: no server span, the
    handler's work in no trace, and an internal error logged on every call."""
    traced = svc.install(tmp_path, trust_incoming_tenant=True)
    servicer: Any = svc.AioEcho() if asyncio_server else svc.Echo()

    async def scenario() -> tuple[str, dict[str, Any]]:
        server, port = await svc.start_server(asyncio_server, _Generic(servicer.Unary))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with autotrace.tenant("acme"), autotrace.start_chain("caller") as root:
                    reply = await svc.Stub(channel).Unary({"text": "x"})
        finally:
            await svc.stop_server(server)
        return root.trace_id, reply

    trace_id, reply = asyncio.run(scenario())
    inner = "inner-aio-unary" if asyncio_server else "inner-unary"
    assert (reply["echo"], reply["tenant"]) == ("x", "acme")
    assert shape(traced.trace(trace_id)) == [
        ("chain", "caller", [("span", f"{RPC}/Unary", [("span", f"{RPC}/Unary", [("retriever", inner, [])])])])
    ]
    assert not any(key.startswith("internal_errors") for key in autotrace.stats())


_REJECTED = {  # trace headers grpc refuses to send
    "upper-case name": [("Traceparent", FIRST)],
    "not text": [("baggage", 5)],
    "control character": [("traceparent", FIRST + "\n")],
}


@pytest.mark.parametrize("case", sorted(_REJECTED))
def test_trace_headers_grpc_would_reject_fail_the_call_as_untraced(tmp_path, case: str) -> None:
    """A traceparent or baggage entry the caller passed was replaced by this call's own even when
    grpc rejects it: the call failed untraced and succeeded traced."""
    server, port = svc.start_sync_server()
    untraced_channel = grpc.insecure_channel(f"127.0.0.1:{port}")  # made before install
    traced = svc.install(tmp_path)

    def outcome(channel: grpc.Channel) -> tuple[str, str | None]:
        try:
            svc.Stub(channel).Unary({"text": "x"}, metadata=_REJECTED[case])
        except grpc.RpcError as error:
            return type(error).__name__, error.code().name
        except Exception as error:
            return type(error).__name__, None
        return "ok", None

    try:
        untraced = outcome(untraced_channel)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, autotrace.start_chain("caller") as root:
            traced_outcome = outcome(channel)
    finally:
        untraced_channel.close()
        server.stop(0)
    expected = ("TypeError", None) if case == "not text" else ("_InactiveRpcError", "INTERNAL")
    assert traced_outcome == untraced == expected
    records = traced.trace(root.trace_id)
    assert shape(records) == [("chain", "caller", [("span", f"{RPC}/Unary", [])])]
    assert [(r["level"], r["error"]) for r in records] == [("DEFAULT", False), ("ERROR", True)]
