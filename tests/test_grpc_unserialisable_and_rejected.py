"""gRPC with real grpcio servers on loopback: responses grpc cannot serialise (the client
gets an error after the handler returned) and calls grpc rejects before any handler runs (no
handler for the method, or an interceptor that failed). Spans are read as exported over OTLP,
with their attributes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.integrations import grpc as grpc_integration
from autotrace.testing.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests import grpc_services as svc

SERVER_KIND = 2  # OTLP SPAN_KIND_SERVER
UNSERIALISABLE = "Object of type object is not JSON serializable"


def _install(rx: OtlpReceiver) -> None:
    """autotrace with the gRPC integration, tenant ``t`` exporting to ``rx``; servers adopt the
    caller's tenant, so that their spans are exported too."""
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=("grpc",), export_interval=0.05,
                      credentials={"t": Credentials("pk-t", "sk-t", host=rx.endpoint)}, trust_incoming_tenant=True)


async def _call(channel: grpc.aio.Channel, method: str, streaming: bool = False) -> tuple[str, Any]:
    """What the client gets: ``("OK", reply)``, or the status code and details of the error."""
    replies: list[Any] = []
    try:
        if streaming:
            async for reply in channel.unary_stream(method, **svc.CLIENT_KW)({}):
                replies.append(reply)
            return "OK", replies
        return "OK", await channel.unary_unary(method, **svc.CLIENT_KW)({})
    except grpc.aio.AioRpcError as error:
        return error.code().name, (replies, error.details()) if streaming else error.details()


def _server_span(spans: list[ReceivedSpan], client: ReceivedSpan) -> ReceivedSpan:
    (server,) = [s for s in spans if s.kind == SERVER_KIND and s.parent_span_id == client.span_id]
    return server


def _status(span: ReceivedSpan) -> tuple[Any, str | None, str | None]:
    attributes = span.attributes
    return (attributes.get("rpc.grpc.status_code"), attributes.get("langfuse.observation.level"),
            attributes.get("langfuse.observation.status_message"))


# -- 1. responses that cannot be serialised --------------------------------------------------------
def _raises(response: Any) -> bytes:
    raise ValueError("cannot serialise")


def _no_bytes(response: Any) -> None:
    return None


class _Counted:
    """A serializer that counts its calls: a response must be serialised once, traced or not."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, response: Any) -> bytes:
        self.calls += 1
        return svc.dumps(response)


def _handlers(asyncio_server: bool, counted: _Counted) -> grpc.GenericRpcHandler:
    def reply(request: Any, context: Any) -> Any:
        return {"ok": True}

    def wrong(request: Any, context: Any) -> Any:
        return object()  # not what the serializer takes

    def stream(request: Any, context: Any) -> Iterator[Any]:
        yield {"i": 0}
        yield object()
        yield {"i": 2}

    async def areply(request: Any, context: Any) -> Any:
        return {"ok": True}

    async def awrong(request: Any, context: Any) -> Any:
        return object()

    async def astream(request: Any, context: Any) -> AsyncIterator[Any]:
        yield {"i": 0}
        yield object()
        yield {"i": 2}

    unary = grpc.unary_unary_rpc_method_handler
    plain, bad, many = (areply, awrong, astream) if asyncio_server else (reply, wrong, stream)
    return grpc.method_handlers_generic_handler("test.Ser", {
        "Ok": unary(plain, request_deserializer=svc.loads, response_serializer=counted),
        "Wrong": unary(bad, **svc.SERVER_KW),
        "Raises": unary(plain, request_deserializer=svc.loads, response_serializer=_raises),
        "NoBytes": unary(plain, request_deserializer=svc.loads, response_serializer=_no_bytes),
        "Stream": grpc.unary_stream_rpc_method_handler(many, **svc.SERVER_KW),
    })


_SYNC_SERVER = {  # client's status and details, the server span's status code, level, message
    "Ok": (("OK", {"ok": True}), (0, None, None)),
    "Wrong": (("INTERNAL", "Failed to serialize response!"), (13, "ERROR", f"TypeError: {UNSERIALISABLE}")),
    "Raises": (("INTERNAL", "Failed to serialize response!"), (13, "ERROR", "ValueError: cannot serialise")),
    "NoBytes": (("INTERNAL", "Failed to serialize response!"),
                (13, "ERROR", "INTERNAL: Failed to serialize response!")),
    "Stream": (("INTERNAL", ([{"i": 0}], "Failed to serialize response!")),
               (13, "ERROR", f"TypeError: {UNSERIALISABLE}")),
}
_AIO_SERVER = {  # grpc.aio: UNKNOWN when the serializer raises; None is sent as an empty message
    "Ok": (("OK", {"ok": True}), (0, None, None)),
    "Wrong": (("UNKNOWN", f"Unexpected <class 'TypeError'>: {UNSERIALISABLE}"),
              (2, "ERROR", f"TypeError: {UNSERIALISABLE}")),
    "Raises": (("UNKNOWN", "Unexpected <class 'ValueError'>: cannot serialise"),
               (2, "ERROR", "ValueError: cannot serialise")),
    "NoBytes": (("OK", None), (0, None, None)),
    "Stream": (("UNKNOWN", ([{"i": 0}], f"Unexpected <class 'TypeError'>: {UNSERIALISABLE}")),
               (2, "ERROR", f"TypeError: {UNSERIALISABLE}")),
}


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_a_response_that_cannot_be_serialised_is_recorded_as_the_client_sees_it(
        rx: OtlpReceiver, asyncio_server: bool, caplog: pytest.LogCaptureFixture) -> None:
    """grpc serialises a response after the handler returns; when that fails, the client gets
    INTERNAL (sync server) or UNKNOWN (grpc.aio), while the server span said OK. A response is
    still serialised once. (grpc.aio then abandons an async generator handler, closed later in
    another context: its span, kept current across ``yield``, could not be detached, and
    OpenTelemetry logged an error.)"""
    _install(rx)
    counted = _Counted()
    expected = _AIO_SERVER if asyncio_server else _SYNC_SERVER

    async def scenario() -> dict[str, Any]:
        server, port = await svc.start_server(asyncio_server, _handlers(asyncio_server, counted))
        seen = {}
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with autotrace.tenant("t"):
                    for method in expected:
                        seen[method] = await _call(channel, f"/test.Ser/{method}", streaming=method == "Stream")
        finally:
            await svc.stop_server(server)
        return seen

    client_seen = asyncio.run(scenario())
    assert autotrace.flush(10)
    spans = rx.wait_for_spans(2 * len(expected))
    outcome = {}
    for method in expected:
        (client,) = [s for s in spans if s.name == f"test.Ser/{method}" and s.kind != SERVER_KIND]
        server = _server_span(spans, client)
        assert (server.name, server.attributes["rpc.method"]) == (f"test.Ser/{method}", method)
        outcome[method] = (client_seen[method], _status(server))
    assert outcome == expected
    assert counted.calls == 1
    assert [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry")] == []
    assert not any(key.startswith("internal_errors") for key in autotrace.stats())


# -- 2. calls rejected before any handler runs -----------------------------------------------------
class _Gate(grpc.ServerInterceptor):
    """Handles nothing for ``Unary`` (returns None) and fails for ``ClientStream``."""

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        if handler_call_details.method.endswith("/ClientStream"):
            raise RuntimeError("gate broken")
        return None if handler_call_details.method.endswith("/Unary") else continuation(handler_call_details)


class _AioGate(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        if handler_call_details.method.endswith("/ClientStream"):
            raise RuntimeError("gate broken")
        return None if handler_call_details.method.endswith("/Unary") else await continuation(handler_call_details)


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_a_call_no_handler_takes_is_recorded_with_the_status_the_client_gets(rx: OtlpReceiver,
                                                                             asyncio_server: bool) -> None:
    """A method with no handler (none registered, or an interceptor returned None) is rejected
    UNIMPLEMENTED, and one whose interceptor raised UNKNOWN; the caller's trace had no server
    span. The span is named ``_OTHER`` (OTel's name for a method the server does not know: the
    path comes from the caller), the path kept in ``rpc.method_original``."""
    _install(rx)
    servicer: Any = svc.AioEcho() if asyncio_server else svc.Echo()
    gate = _AioGate() if asyncio_server else _Gate()

    async def scenario() -> dict[str, Any]:
        server, port = await svc.start_server(asyncio_server, svc.handler(servicer), interceptors=[gate])
        seen = {}
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with autotrace.tenant("t"):
                    for method in ("Unary", "Missing", "ClientStream", "ServerStream"):
                        seen[method] = await _call(channel, f"/{svc.SERVICE}/{method}",
                                                   streaming=method == "ServerStream")
        finally:
            await svc.stop_server(server)
        return seen

    client_seen = asyncio.run(scenario())
    assert autotrace.flush(10)
    spans = rx.wait_for_spans(8)
    broken = "Unexpected <class 'RuntimeError'>: gate broken" if asyncio_server else "Error in service handler!"
    not_found = ("UNIMPLEMENTED", "Method not found!")
    outcome = {}
    for method in ("Unary", "Missing", "ClientStream", "ServerStream"):
        (client,) = [s for s in spans if s.name == f"{svc.SERVICE}/{method}" and s.kind != SERVER_KIND]
        server = _server_span(spans, client)
        attributes = {k: v for k, v in server.attributes.items() if k.startswith("rpc.")}
        outcome[method] = (client_seen[method], server.name, attributes, server.status_code, _status(server)[1:])
    rejected = {"rpc.system": "grpc", "rpc.method": "_OTHER"}
    assert outcome == {
        "Unary": (not_found, "_OTHER", {**rejected, "rpc.method_original": f"{svc.SERVICE}/Unary",
                                        "rpc.grpc.status_code": 12},
                  2, ("ERROR", "UNIMPLEMENTED: Method not found!")),
        "Missing": (not_found, "_OTHER", {**rejected, "rpc.method_original": f"{svc.SERVICE}/Missing",
                                          "rpc.grpc.status_code": 12},
                    2, ("ERROR", "UNIMPLEMENTED: Method not found!")),
        "ClientStream": (("UNKNOWN", broken), "_OTHER", {**rejected, "rpc.method_original": f"{svc.SERVICE}/ClientStream",
                                                        "rpc.grpc.status_code": 2},
                         2, ("ERROR", "RuntimeError: gate broken")),
        "ServerStream": (("OK", [{"i": 0}, {"i": 1}, {"i": 2}]), f"{svc.SERVICE}/ServerStream",
                         {"rpc.system": "grpc", "rpc.service": svc.SERVICE, "rpc.method": "ServerStream",
                          "rpc.grpc.status_code": 0}, 0, (None, None)),
    }
    assert not any(key.startswith("internal_errors") for key in autotrace.stats())


_LARGE_METADATA = [("grpc.max_metadata_size", 64 * 1024), ("grpc.absolute_max_metadata_size", 64 * 1024)]


def test_an_oversized_incoming_baggage_header_is_counted_and_said_once(tmp_path: Any, caplog: Any) -> None:
    """A baggage header over 8,192 bytes (W3C) is ignored, and the caller's tenant with it: that
    was silent. (grpc passes such metadata only when its limits are raised.)"""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=_LARGE_METADATA,
                         interceptors=[grpc_integration.server_interceptor()])
    server.add_generic_rpc_handlers((svc.handler(svc.Echo()),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=_LARGE_METADATA)  # before install: sent as given
    svc.install(tmp_path, trust_incoming_tenant=True)
    try:
        replies = [svc.Stub(channel).Unary({"text": "x"}, metadata=[
            ("baggage", "autotrace.tenant=acme,big=" + "x" * 9000)]) for _ in range(2)]
    finally:
        channel.close()
        server.stop(0)
    assert [r["tenant"] for r in replies] == [None, None]
    assert autotrace.stats()["propagation_baggage_too_long"] == 2
    said = [r.getMessage() for r in caplog.records if "propagation_baggage_too_long" in r.getMessage()]
    assert len(said) == 1 and "x" * 100 not in said[0]
