"""gRPC after ``uninstall()``: the interceptors ``install()`` put on channels and servers stay on them
(a long-lived channel, a server started at boot). They must then pass every call on as given: they
went on adding trace headers and baggage, the tenant included whatever ``tenant_baggage`` had said
(to a third party that was never told it while autotrace was installed), and made the caller's
baggage current in handlers. Real grpcio servers and channels on loopback, sync and asyncio."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc.aio
import pytest
from opentelemetry import baggage, trace

import autotrace
from tests import grpc_services as svc

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize("asyncio_channel", [False, True])
def test_a_channel_made_while_installed_sends_metadata_as_given_after_uninstall(tmp_path: Any,
                                                                               asyncio_channel: bool) -> None:
    third_party = svc.MetadataRecorder()  # started before install(): plain

    async def aio_calls() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{third_party.port}") as channel:
            charge = channel.unary_unary(svc.RECORDED_METHOD, **svc.CLIENT_KW)
            with autotrace.tenant("acme"):
                await charge({}, metadata=(("x-k", "v"),))
            autotrace.uninstall()
            with autotrace.tenant("acme"):
                await charge({}, metadata=(("x-k", "v"),))

    try:
        svc.install(tmp_path, tenant_baggage=("internal-*",))
        if asyncio_channel:
            asyncio.run(aio_calls())
        else:
            with grpc.insecure_channel(f"127.0.0.1:{third_party.port}") as channel:
                charge = channel.unary_unary(svc.RECORDED_METHOD, **svc.CLIENT_KW)
                with autotrace.tenant("acme"):
                    charge({}, metadata=[("x-k", "v")])
                autotrace.uninstall()
                with autotrace.tenant("acme"):
                    charge({}, metadata=[("x-k", "v")])
    finally:
        third_party.server.stop(0)
    installed, uninstalled = third_party.seen
    assert sorted(key for key, _ in installed) == ["traceparent", "x-k"]  # traced; the tenant kept from it
    assert uninstalled == [("x-k", "v")]


def _seen(request: Any, context: Any) -> dict[str, Any]:
    return {"baggage": dict(baggage.get_all()), "span": trace.get_current_span().get_span_context().is_valid,
            "tenant": autotrace.current_tenant()}


async def _aio_seen(request: Any, context: Any) -> dict[str, Any]:
    return _seen(request, context)


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_a_server_made_while_installed_runs_its_handlers_as_given_after_uninstall(tmp_path: Any,
                                                                                  asyncio_server: bool) -> None:
    method = grpc.unary_unary_rpc_method_handler(_aio_seen if asyncio_server else _seen, **svc.SERVER_KW)
    handler = grpc.method_handlers_generic_handler("t.Seen", {"Get": method})
    metadata = (("traceparent", CALLER), ("baggage", "region=eu"))

    async def scenario() -> list[Any]:
        with autotrace.tenant("boot"):  # grpc.aio runs each call in a copy of this context
            server, port = await svc.start_server(asyncio_server, handler)  # traced: made while installed
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:  # made while installed too
                get = channel.unary_unary("/t.Seen/Get", **svc.CLIENT_KW)
                with autotrace.tenant("acme"):  # sent to the server, which trusts it
                    replies = [await asyncio.to_thread(get, {}, metadata=metadata)]
                    autotrace.uninstall()
                    replies.append(await asyncio.to_thread(get, {}, metadata=metadata))
                return replies
        finally:
            await svc.stop_server(server)

    svc.install(tmp_path, trust_incoming_tenant=True)
    installed, uninstalled = asyncio.run(scenario())
    assert installed == {"baggage": {"region": "eu"}, "span": True, "tenant": "acme"}
    # as plain grpc runs it: grpc.aio in the context the server started in, grpc in an empty one
    assert uninstalled == {"baggage": {}, "span": False, "tenant": "boot" if asyncio_server else None}
