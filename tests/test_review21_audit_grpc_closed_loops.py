"""grpc.aio calls left running on a loop closed without closing its async generators (a new loop per
request: ``run_until_complete`` then ``close()``, not ``asyncio.run``): each such loop was held for
good, with the open spans of its calls, never exported. A loop closed so is let go once another
starts a call, its calls ended as at a loop's shutdown."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio

import autotrace
from autotrace.integrations.grpc import _client
from tests import grpc_services as svc

LOOPS = 20


_RELEASED = threading.Event()


def _trickle(request: Any, context: Any) -> Iterator[Any]:
    yield {"i": 0}
    _RELEASED.wait(30)  # the rest once the test is done: no server span ends before
    yield {"i": 1}


def test_loops_closed_with_calls_running_are_not_held(tmp_path) -> None:
    traced = svc.install(tmp_path)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=LOOPS + 2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Slow", {
        "Trickle": grpc.unary_stream_rpc_method_handler(_trickle, **svc.SERVER_KW)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    held: list[Any] = []  # the application keeps its calls (and channels): the loops are its to free

    async def request() -> str:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        with autotrace.tenant("acme"), autotrace.start_chain("request") as root:
            stream = channel.unary_stream("/test.Slow/Trickle", **svc.CLIENT_KW)({})
            assert await stream.read() == {"i": 0}
            held.extend([channel, stream])
        return root.trace_id

    try:
        trace_ids = []
        for _ in range(LOOPS):
            loop = asyncio.new_event_loop()
            try:
                trace_ids.append(loop.run_until_complete(request()))
            finally:
                loop.close()
        assert len(_client._loop_calls) == 1  # the last loop's, until another starts a call (was LOOPS)
        ended = ("WARNING", "CANCELLED: the event loop ended before the call did")
        for trace_id in trace_ids[:-1]:
            records = traced.trace(trace_id)
            assert [(r["type"], r["name"]) for r in records] == [("chain", "request"), ("span", "test.Slow/Trickle")]
            assert (records[1]["level"], records[1]["status_message"]) == ended
            assert records[1]["parent_id"] == records[0]["id"]
        assert not any(key.startswith("internal_errors") for key in autotrace.stats())
    finally:
        _RELEASED.set()
        held.clear()
        server.stop(0)
