"""A server span whose request stream was cut by the caller's deadline is not OK. grpc.aio ends such
a stream as if the client had finished it (the handler reads fewer requests, no error, and returns
normally; its context still says the call is live): the span said OK while the client got
DEADLINE_EXCEEDED and the handler worked on part of the input. It is now WARNING with the
deadline that passed, as for a unary call. A real grpc.aio server on loopback, async handlers,
called by a grpc client with a deadline. (grpc's sync server shows it too, but only at times:
there the deadline may pass a moment after the handler returns.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import grpc.aio
import pytest

import autotrace
from tests import grpc_services as svc

SERVICE = "t.Sum"


async def _total(requests: AsyncIterator[dict[str, Any]], context: Any) -> dict[str, Any]:
    total = 0
    async for r in requests:
        total += r["n"]
    return {"total": total}


async def _echo(requests: AsyncIterator[dict[str, Any]], context: Any) -> AsyncIterator[dict[str, Any]]:
    async for r in requests:
        yield r


def _slow_requests() -> Iterator[dict[str, Any]]:
    for n in range(200):
        time.sleep(0.02)
        yield {"n": n}


def _calls(port: int) -> list[tuple[str, str]]:
    """Each method called with a deadline that passes while its requests are still being sent."""
    got = []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        total = channel.stream_unary(f"/{SERVICE}/Total", **svc.CLIENT_KW)
        echo = channel.stream_stream(f"/{SERVICE}/Echo", **svc.CLIENT_KW)
        for name, call in (("total", lambda: total(_slow_requests(), timeout=0.15)),
                           ("echo", lambda: list(echo(_slow_requests(), timeout=0.15)))):
            with autotrace.start_chain(name) as root:
                with pytest.raises(grpc.RpcError) as raised:
                    call()
            assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            got.append((name, root.trace_id))
    return got


def test_a_request_stream_cut_by_the_deadline_ends_its_server_span_with_the_deadline(tmp_path: Any) -> None:
    traced = svc.install(tmp_path)
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Total": grpc.stream_unary_rpc_method_handler(_total, **svc.SERVER_KW),
        "Echo": grpc.stream_stream_rpc_method_handler(_echo, **svc.SERVER_KW),
    })

    async def scenario() -> list[tuple[str, str]]:
        server, port = await svc.start_server(True, handler)
        try:
            got = await asyncio.to_thread(_calls, port)
            await asyncio.sleep(0.3)  # the server's end of the calls
        finally:
            await svc.stop_server(server)
        return got

    servers = []
    for name, trace_id in asyncio.run(scenario()):
        records = traced.trace(trace_id)
        assert [r["name"] for r in records] == [name, f"{SERVICE}/{name.title()}", f"{SERVICE}/{name.title()}"]
        servers.append((records[2]["name"], records[2]["level"], records[2]["status_message"]))
    assert servers == [
        (f"{SERVICE}/Total", "WARNING", "DEADLINE_EXCEEDED: the caller's deadline passed"),
        (f"{SERVICE}/Echo", "WARNING", "DEADLINE_EXCEEDED: the caller's deadline passed"),
    ]
