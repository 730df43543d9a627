"""gRPC with real grpcio servers on loopback: responses grpc cannot send (not bytes,
with no serializer or from one), a sync stream ended by a None item, and sync handlers served by a
grpc.aio server (whose context has no ``code()``). Each case: what the client gets, and the server
span's status, as exported over OTLP."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import grpc.aio
import pytest

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests import grpc_services as svc

SERVER_KIND = 2  # OTLP SPAN_KIND_SERVER
SERVICE = "test.Raw"


def _install(rx: OtlpReceiver) -> None:
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=("grpc",), export_interval=0.05,
                      credentials={"t": Credentials("pk-t", "sk-t", host=rx.endpoint)}, trust_incoming_tenant=True)


async def _call(channel: grpc.aio.Channel, method: str, streaming: bool, timeout: float | None) -> tuple[str, Any]:
    """What the client gets: ``("OK", reply)``, or the status code and details of the error."""
    replies: list[Any] = []
    try:
        if streaming:
            async for reply in channel.unary_stream(f"/{SERVICE}/{method}")(b"", timeout=timeout):
                replies.append(reply)
            return "OK", replies
        return "OK", await channel.unary_unary(f"/{SERVICE}/{method}")(b"", timeout=timeout)
    except grpc.aio.AioRpcError as error:
        # grpc words a passed deadline in more than one way, by timing: its code is what counts
        details = None if error.code() is grpc.StatusCode.DEADLINE_EXCEEDED else error.details()
        return error.code().name, (replies, details) if streaming else details


def _outcomes(rx: OtlpReceiver, handlers: grpc.GenericRpcHandler, asyncio_server: bool,
              calls: dict[str, tuple[bool, float | None]]) -> dict[str, Any]:
    """Each method called once (concurrently), with what its client got and its server span's
    status code, level and message."""

    async def scenario() -> list[tuple[str, Any]]:
        server, port = await svc.start_server(asyncio_server, handlers)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with autotrace.tenant("t"):
                    return await asyncio.gather(*(_call(channel, method, streaming, timeout)
                                                   for method, (streaming, timeout) in calls.items()))
        finally:
            await svc.stop_server(server)

    seen = dict(zip(calls, asyncio.run(scenario()), strict=True))
    assert autotrace.flush(10)
    spans = rx.wait_for_spans(2 * len(calls))
    outcome = {}
    for method in calls:
        (client,) = [s for s in spans if s.name == f"{SERVICE}/{method}" and s.kind != SERVER_KIND]
        (server,) = [s for s in spans if s.kind == SERVER_KIND and s.parent_span_id == client.span_id]
        outcome[method] = (seen[method], _status(server))
    assert not any(key.startswith("internal_errors") for key in autotrace.stats())
    return outcome


def _status(span: ReceivedSpan) -> tuple[Any, str | None, str | None]:
    attributes = span.attributes
    return (attributes.get("rpc.grpc.status_code"), attributes.get("langfuse.observation.level"),
            attributes.get("langfuse.observation.status_message"))


# -- 1. responses grpc cannot send --------------------------------------------------------------
class _Inputs:
    """A serializer that notes what it is given: grpc.aio encodes a str response first."""

    def __init__(self) -> None:
        self.given: list[Any] = []

    def __call__(self, response: Any) -> bytes:
        self.given.append(response)
        return bytes(response)


def _raw_handlers(inputs: _Inputs) -> grpc.GenericRpcHandler:
    def returns(value: Any) -> Any:
        return lambda request, context: value

    def set_code_then_text(request: Any, context: grpc.ServicerContext) -> str:
        context.set_code(grpc.StatusCode.NOT_FOUND)
        return "text"

    def stream(request: Any, context: Any) -> Iterator[Any]:
        yield b"0"
        yield {"not": "bytes"}

    def stops_at_none(request: Any, context: Any) -> Iterator[Any]:
        yield b"0"
        yield None
        yield b"2"

    unary = grpc.unary_unary_rpc_method_handler
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Bytes": unary(returns(b"ok")),
        "Text": unary(returns("text")),
        "Nothing": unary(returns(None)),
        "Dict": unary(returns({"not": "bytes"})),
        "SetCodeText": unary(set_code_then_text),
        "SerializedToText": unary(returns(b"ok"), response_serializer=lambda response: "text"),
        "TextSerialized": unary(returns("text"), response_serializer=inputs),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
        "StopsAtNone": grpc.unary_stream_rpc_method_handler(stops_at_none),
    })


_NOT_BYTES = "Argument 'message' has incorrect type (expected bytes, got {})"  # grpc's TypeError
_HANGS = 0.5  # a sync server sends no status for these: the client waits for its deadline
_SYNC_SERVER: dict[str, Any] = {  # the client's status and reply, the server span's code, level, message
    "Bytes": (("OK", b"ok"), (0, None, None)),
    "Text": (("DEADLINE_EXCEEDED", None), (None, "ERROR", "TypeError: " + _NOT_BYTES.format("str"))),
    "Nothing": (("INTERNAL", "Failed to serialize response!"), (13, "ERROR", "INTERNAL: Failed to serialize response!")),
    "Dict": (("DEADLINE_EXCEEDED", None), (None, "ERROR", "TypeError: " + _NOT_BYTES.format("dict"))),
    "SetCodeText": (("DEADLINE_EXCEEDED", None),
                    (None, "ERROR", "TypeError: " + _NOT_BYTES.format("str"))),
    "SerializedToText": (("DEADLINE_EXCEEDED", None),
                         (None, "ERROR", "TypeError: " + _NOT_BYTES.format("str"))),
    "TextSerialized": (("INTERNAL", "Failed to serialize response!"),  # given the str, as is
                       (13, "ERROR", "TypeError: string argument without an encoding")),
    "Stream": (("DEADLINE_EXCEEDED", ([b"0"], None)),
               (None, "ERROR", "TypeError: " + _NOT_BYTES.format("dict"))),
    "StopsAtNone": (("OK", [b"0"]), (0, None, None)),  # a None item ends a sync server's stream
}
_AIO_SERVER: dict[str, Any] = {  # grpc.aio encodes a str, sends None as empty, fails the rest UNKNOWN
    "Bytes": (("OK", b"ok"), (0, None, None)),
    "Text": (("OK", b"text"), (0, None, None)),
    "Nothing": (("OK", b""), (0, None, None)),
    "Dict": (("UNKNOWN", "Unexpected <class 'TypeError'>: Expected bytes, got dict"),
             (2, "ERROR", "TypeError: Expected bytes, got dict")),
    "SetCodeText": (("NOT_FOUND", ""), (5, "ERROR", "NOT_FOUND")),
    "SerializedToText": (("UNKNOWN", "Unexpected <class 'TypeError'>: Expected bytes, got str"),
                         (2, "ERROR", "TypeError: Expected bytes, got str")),
    "TextSerialized": (("OK", b"text"), (0, None, None)),
    "Stream": (("UNKNOWN", ([b"0"], "Unexpected <class 'TypeError'>: Expected bytes, got dict")),
               (2, "ERROR", "TypeError: Expected bytes, got dict")),
    "StopsAtNone": (("OK", [b"0", b"", b"2"]), (0, None, None)),
}


def _stream_calls(expected: dict[str, Any]) -> dict[str, tuple[bool, float | None]]:
    return {method: (method in ("Stream", "StopsAtNone"), _HANGS if "DEADLINE" in client[0] else None)
            for method, (client, _) in expected.items()}


def test_a_sync_server_that_cannot_send_a_response_is_recorded_as_sending_no_status(rx: OtlpReceiver) -> None:
    """A sync server hands a response on as it is when its handler has no serializer; one that is
    not exactly bytes (or a serializer's output that is not) makes grpc raise TypeError and send
    no status at all, the client waiting for its deadline: the span said OK (or the code the
    handler set). It now records grpc's error and no status code. A None item ends a sync
    server's stream, OK: the span, left open, said CANCELLED when it was collected."""
    _install(rx)
    inputs = _Inputs()
    assert _outcomes(rx, _raw_handlers(inputs), False, _stream_calls(_SYNC_SERVER)) == _SYNC_SERVER
    assert inputs.given == ["text"]


def test_an_aio_server_response_that_is_not_bytes_is_recorded_as_the_client_sees_it(rx: OtlpReceiver) -> None:
    """grpc.aio fails a response that is not bytes (after encoding a str) with UNKNOWN, with or
    without a serializer: the span said OK. A str response reaches a serializer encoded, and is
    serialised once, as untraced."""
    _install(rx)
    inputs = _Inputs()
    assert _outcomes(rx, _raw_handlers(inputs), True, _stream_calls(_AIO_SERVER)) == _AIO_SERVER
    assert inputs.given == [b"text"]


# -- 2. sync handlers on a grpc.aio server -------------------------------------------------------
def _sync_handlers() -> grpc.GenericRpcHandler:
    def ok(request: Any, context: Any) -> bytes:
        return b"ok"

    def abort(request: Any, context: Any) -> bytes:
        context.abort(grpc.StatusCode.NOT_FOUND, "gone")
        return b"unreached"

    def set_code(request: Any, context: Any) -> bytes:
        context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
        context.set_details("not yet")
        return b"ignored"

    def fails(request: Any, context: Any) -> bytes:
        raise ValueError("broken")

    def outlives_deadline(request: Any, context: Any) -> bytes:
        while context.time_remaining() > 0:  # returns after the deadline, when grpc has ended the call
            time.sleep(0.02)
        time.sleep(0.2)
        return b"late"

    def stream_sets_code(request: Any, context: Any) -> Iterator[bytes]:
        yield b"0"
        context.set_code(grpc.StatusCode.DATA_LOSS)
        context.set_details("half")

    unary = grpc.unary_unary_rpc_method_handler
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Ok": unary(ok), "Abort": unary(abort), "SetCode": unary(set_code), "Fails": unary(fails),
        "OutlivesDeadline": unary(outlives_deadline),
        "StreamSetsCode": grpc.unary_stream_rpc_method_handler(stream_sets_code),
    })


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_a_sync_handler_records_the_status_its_client_gets_on_either_server(rx: OtlpReceiver,
                                                                            asyncio_server: bool) -> None:
    """grpc.aio runs a sync handler in a thread with a context that has no ``code()``: the span
    missed what the handler set (``abort``: UNKNOWN with AbortError; ``set_code``: OK), and a
    deadline that passed while the handler ran (OK). The same as on a sync server now."""
    _install(rx)
    calls = {"Ok": (False, None), "Abort": (False, None), "SetCode": (False, None), "Fails": (False, None),
             "OutlivesDeadline": (False, 0.2), "StreamSetsCode": (True, None)}
    failed = "Unexpected <class 'ValueError'>: broken" if asyncio_server else "Exception calling application: broken"
    assert _outcomes(rx, _sync_handlers(), asyncio_server, calls) == {
        "Ok": (("OK", b"ok"), (0, None, None)),
        "Abort": (("NOT_FOUND", "gone"), (5, "ERROR", "NOT_FOUND: gone")),
        "SetCode": (("FAILED_PRECONDITION", "not yet"), (9, "ERROR", "FAILED_PRECONDITION: not yet")),
        "Fails": (("UNKNOWN", failed), (2, "ERROR", "ValueError: broken")),
        "OutlivesDeadline": (("DEADLINE_EXCEEDED", None),
                             (4, "WARNING", "DEADLINE_EXCEEDED: the caller's deadline passed")),
        "StreamSetsCode": (("DATA_LOSS", ([b"0"], "half")), (15, "ERROR", "DATA_LOSS: half")),
    }


# -- 3. grpc.aio reads a sync stream one item ahead of sending it ------------------------------------
_LARGE = [("grpc.max_receive_message_length", -1)]


def test_an_aio_sync_stream_whose_last_item_cannot_be_sent_after_it_ran_out_is_recorded_as_failed(
        rx: OtlpReceiver) -> None:
    """grpc.aio reads a sync stream on its thread pool one item ahead of sending it: the stream ran
    out (and its span ended OK) while the item before was still being sent, and only then did the
    last item fail to serialise, the client getting UNKNOWN. The span now ends with the call.
    Forced here: the first item (16 MB) is sent only as the client reads it, and the client reads
    once the stream has run out."""
    _install(rx)
    ran_out = threading.Event()

    def stream(request: Any, context: Any) -> Iterator[bytes]:
        yield b"0" * 16_000_000
        yield b"last"
        ran_out.set()

    def serialize(item: bytes) -> Any:
        return item if item != b"last" else "not bytes"

    handlers = grpc.method_handlers_generic_handler(SERVICE, {
        "Stream": grpc.unary_stream_rpc_method_handler(stream, response_serializer=serialize)})

    async def scenario() -> tuple[list[int], grpc.StatusCode, str]:
        server, port = await svc.start_server(True, handlers)
        sizes: list[int] = []
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=_LARGE) as channel:
                with autotrace.tenant("t"):
                    call = channel.unary_stream(f"/{SERVICE}/Stream")(b"")
                    assert await asyncio.get_running_loop().run_in_executor(None, ran_out.wait, 10)
                    try:
                        async for reply in call:
                            sizes.append(len(reply))
                    except grpc.aio.AioRpcError as error:
                        return sizes, error.code(), error.details()
            raise AssertionError("the call did not fail")
        finally:
            await svc.stop_server(server)

    sizes, code, details = asyncio.run(scenario())
    assert (sizes, code, details) == ([16_000_000], grpc.StatusCode.UNKNOWN,
                                      "Unexpected <class 'TypeError'>: Expected bytes, got str")
    assert autotrace.flush(10)
    (server,) = [span for span in rx.wait_for_spans(2) if span.kind == SERVER_KIND]
    assert _status(server) == (2, "ERROR", "TypeError: Expected bytes, got str")


@pytest.mark.parametrize(("gives_up", "status"), [
    ("cancel", (1, "WARNING", "CANCELLED: the call was cancelled")),
    ("deadline", (4, "WARNING", "DEADLINE_EXCEEDED: the caller's deadline passed")),
])
def test_an_aio_sync_stream_its_client_gives_up_on_is_recorded_so_when_the_call_ends(
        rx: OtlpReceiver, gives_up: str, status: tuple[Any, ...]) -> None:
    """grpc.aio goes on reading a sync stream after its client cancelled or its deadline passed:
    the span ended only when the stream ran out (OK), or never, while the handler waited. It now
    ends with the call, WARNING, while the handler still runs."""
    _install(rx)
    finish = threading.Event()

    def stream(request: Any, context: Any) -> Iterator[bytes]:
        yield b"0"
        finish.wait(10)  # the test lets the handler end once the server span is exported

    handlers = grpc.method_handlers_generic_handler(SERVICE, {"Stream": grpc.unary_stream_rpc_method_handler(stream)})

    async def scenario() -> list[ReceivedSpan]:
        server, port = await svc.start_server(True, handlers)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with autotrace.tenant("t"):
                    call = channel.unary_stream(f"/{SERVICE}/Stream")(b"", timeout=0.3 if gives_up == "deadline" else None)
                    try:
                        async for _ in call:
                            if gives_up == "cancel":
                                call.cancel()
                                break
                    except grpc.aio.AioRpcError as error:
                        assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
                spans = await asyncio.get_running_loop().run_in_executor(None, rx.wait_for_spans, 2)
                finish.set()  # while the loop runs: grpc's reader thread hands the stream's end over
                return spans
        finally:
            finish.set()
            await svc.stop_server(server)

    spans = asyncio.run(scenario())
    (server,) = [span for span in spans if span.kind == SERVER_KIND]
    assert _status(server) == status
    assert autotrace.flush(10)
    assert [_status(span) for span in rx.spans if span.kind == SERVER_KIND] == [status]  # ended once
