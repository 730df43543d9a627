"""A gRPC server span records what the handler did to end its call: ``context.abort`` is the
status it names, not the signal grpc raises to stop the handler (``abort(UNKNOWN, "db down")`` was
recorded as a failure named ``Exception``, or ``AbortError: Locally aborted.``, with that signal
as its exception); an error raised after ``set_code`` is recorded with the status (it was lost:
the span said ``NOT_FOUND`` and nothing of why). Real grpcio servers on loopback: grpc's, and
grpc.aio's with an async and a sync handler."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc.aio
import pytest

import autotrace
from tests import grpc_services as svc
from tests.helpers import shape

METHOD = "t.Status/Do"


def _act(request: dict[str, Any], context: Any) -> None:
    if request["do"] == "abort":
        context.abort(grpc.StatusCode.UNKNOWN, "db down")
    context.set_code(grpc.StatusCode.NOT_FOUND)
    if request["do"] == "details":
        context.set_details("no user 42")
    raise LookupError("user 42")


async def _aio_act(request: dict[str, Any], context: Any) -> None:
    if request["do"] == "abort":
        await context.abort(grpc.StatusCode.UNKNOWN, "db down")
    _act(request, context)


def _event(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["attributes"]["exception.type"], e["attributes"]["exception.message"]) for e in record["events"]]


@pytest.mark.parametrize(("asyncio_server", "async_handler"), [(False, False), (True, True), (True, False)])
def test_a_handlers_abort_and_an_error_raised_after_set_code_are_recorded_as_done(
        tmp_path: Any, asyncio_server: bool, async_handler: bool) -> None:
    traced = svc.install(tmp_path)
    method = grpc.unary_unary_rpc_method_handler(_aio_act if async_handler else _act, **svc.SERVER_KW)
    handler = grpc.method_handlers_generic_handler("t.Status", {"Do": method})

    async def scenario() -> list[tuple[str, str, Any]]:
        server, port = await svc.start_server(asyncio_server, handler)
        got = []
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                do = channel.unary_unary(f"/{METHOD}", **svc.CLIENT_KW)
                for what in ("abort", "raise", "details"):
                    with autotrace.start_chain(what) as root:
                        with pytest.raises(grpc.RpcError) as raised:
                            await asyncio.to_thread(do, {"do": what})
                    got.append((root.trace_id, raised.value.code().name, raised.value.details()))
        finally:
            await svc.stop_server(server)
        return got

    results = asyncio.run(scenario())
    servers = []
    for (trace_id, code, _details), what in zip(results, ("abort", "raise", "details"), strict=True):
        records = traced.trace(trace_id)
        assert shape(records) == [("chain", what, [("span", METHOD, [("span", METHOD, [])])])]
        server = records[2]
        assert server["parent_id"] == records[1]["id"]
        servers.append((code, server["level"], server["status_message"], _event(server)))
    assert servers == [
        ("UNKNOWN", "ERROR", "UNKNOWN: db down", []),  # the status it named, no exception of grpc's
        ("NOT_FOUND", "ERROR", "LookupError: user 42", [("LookupError", "user 42")]),
        ("NOT_FOUND", "ERROR", "NOT_FOUND: no user 42", [("LookupError", "user 42")]),
    ]
