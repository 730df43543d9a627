"""gRPC with real grpcio servers on loopback: grpc.aio handlers that send with ``context.write``
(their return value is not a response), a str response grpc.aio cannot encode, and a sync call
whose caller freed it before grpc ran its done-callback. Spans are read from the local store."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import AsyncIterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest

import autotrace
from autotrace.integrations.grpc._client import _call_ended
from autotrace.integrations.grpc._common import KIND_CLIENT, start_call
from tests import grpc_services as svc
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("grpc")


def _levels(traced: Traced) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(name, client or server) -> (level, status message) of every gRPC span."""
    records = traced.records()
    ids = {r["id"]: r for r in records}
    found = {}
    for r in records:
        if r["name"] == "turn":
            continue
        side = "client" if ids.get(r["parent_id"], {}).get("name") == "turn" else "server"
        found[(r["name"], side)] = (r["level"], r["status_message"])
    return found


def test_a_grpc_aio_handler_writing_its_responses_is_ok_and_its_serializer_sees_only_them(traced: Traced) -> None:
    """grpc.aio ignores what such a handler returns (None): it is no response to serialise. (It was
    given to the serializer, which raised on None, and the span said ERROR while the client got OK.)"""
    serialized: list[Any] = []

    def serialize(response: Any) -> bytes:
        serialized.append(response)
        if not isinstance(response, dict):
            raise TypeError(f"not a message: {response!r}")
        return svc.dumps(response)

    async def stream(request: Any, context: Any) -> None:
        for i in range(3):
            await context.write({"i": i})

    async def bidi(requests: AsyncIterator[Any], context: Any) -> None:
        async for request in requests:
            await context.write({"twice": request["n"] * 2})

    async def bad_write(request: Any, context: Any) -> None:
        await context.write({"i": 0})
        await context.write(object())

    kw = {"request_deserializer": svc.loads, "response_serializer": serialize}
    handlers = grpc.method_handlers_generic_handler("test.W", {
        "Stream": grpc.unary_stream_rpc_method_handler(stream, **kw),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, **kw),
        "BadWrite": grpc.unary_stream_rpc_method_handler(bad_write, **kw)})

    async def scenario() -> dict[str, Any]:
        server, port = await svc.start_server(True, handlers)
        seen: dict[str, Any] = {}
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                seen["Stream"] = [r async for r in channel.unary_stream("/test.W/Stream", **svc.CLIENT_KW)({})]
                bidi_call = channel.stream_stream("/test.W/Bidi", **svc.CLIENT_KW)(iter([{"n": 1}, {"n": 2}]))
                seen["Bidi"] = [r async for r in bidi_call]
                try:
                    [r async for r in channel.unary_stream("/test.W/BadWrite", **svc.CLIENT_KW)({})]
                except grpc.aio.AioRpcError as error:
                    seen["BadWrite"] = error.code().name
        finally:
            await svc.stop_server(server)
        return seen

    with autotrace.start_chain("turn"):
        seen = asyncio.run(scenario())
    assert seen == {"Stream": [{"i": 0}, {"i": 1}, {"i": 2}], "Bidi": [{"twice": 2}, {"twice": 4}],
                    "BadWrite": "UNKNOWN"}
    assert [r for r in serialized if not isinstance(r, dict)] == [serialized[-1]]  # the bad write only, no None
    levels = _levels(traced)
    assert levels[("test.W/Stream", "server")] == levels[("test.W/Bidi", "server")] == ("DEFAULT", None)
    assert levels[("test.W/BadWrite", "server")][0] == "ERROR"
    assert levels[("test.W/BadWrite", "server")][1].startswith("TypeError: not a message")


def test_a_str_response_grpc_aio_cannot_encode_still_ends_the_server_span(traced: Traced) -> None:
    async def reply(request: Any, context: Any) -> str:
        return "bad\ud800"

    handlers = grpc.method_handlers_generic_handler("test.S", {"U": grpc.unary_unary_rpc_method_handler(reply)})

    async def scenario() -> str:
        server, port = await svc.start_server(True, handlers)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await channel.unary_unary("/test.S/U")(b"")
        except grpc.aio.AioRpcError as error:
            return error.code().name
        finally:
            await svc.stop_server(server)
        return "OK"

    with autotrace.start_chain("turn"):
        assert asyncio.run(scenario()) == "UNKNOWN"
    level, message = _levels(traced)[("test.S/U", "server")]
    assert level == "ERROR" and message.startswith("UnicodeEncodeError: 'utf-8' codec can't encode")


def test_a_call_freed_before_its_callback_ran_ends_with_the_status_it_had(traced: Traced) -> None:
    """grpc sets a call's status and wakes its reader before running its done-callbacks, so a
    caller that read to the end can free the call first: the span takes the status from the call's
    state, and only a call freed while running is one its caller dropped (grpc cancels it)."""
    release = threading.Event()

    def wait(request: Any, context: Any) -> Any:
        release.wait(10)
        return {"ok": True}

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.L", {
        "Quick": grpc.unary_unary_rpc_method_handler(lambda request, context: {"ok": True}, **svc.SERVER_KW),
        "Wait": grpc.unary_unary_rpc_method_handler(wait, **svc.SERVER_KW)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, autotrace.start_chain("turn"):
            finished = channel.unary_unary("/test.L/Quick", **svc.CLIENT_KW).future({})
            assert finished.result(10) == {"ok": True}
            running = channel.unary_unary("/test.L/Wait", **svc.CLIENT_KW).future({})
            states = [finished._state, running._state]
            del finished, running
            gc.collect()  # grpc cancels a running call it frees
            dead: Any = weakref.ref(threading.Event())  # a call already freed
            for state, name in zip(states, ("test.L/Quick", "test.L/Wait"), strict=True):
                obs = start_call(f"/{name}", KIND_CLIENT)
                assert obs is not None
                _call_ended(dead, state, obs)
            release.set()
    finally:
        server.stop(0)
    levels = _levels(traced)
    assert levels[("test.L/Quick", "client")] == ("DEFAULT", None)
    assert levels[("test.L/Wait", "client")] == ("WARNING", "CANCELLED: the caller dropped the call")
