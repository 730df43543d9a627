"""gRPC client metadata given with ``bytes`` keys (grpc sends ``b"baggage"`` as ``baggage``): the
caller's trace headers are replaced by this call's, as under ``str`` keys, and never sent beside
ours (a second ``baggage`` carried the caller's tenant on)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import grpc.aio
import pytest

import autotrace
from tests import grpc_services as svc

CALLER_TRACE, CALLER_SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
CALLER = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
FORWARDED = [(b"traceparent", CALLER), (b"baggage", b"region=eu,autotrace.tenant=evil"), (b"x-request-id", "r1")]


@pytest.fixture
def third_party() -> Iterator[svc.MetadataRecorder]:
    party = svc.MetadataRecorder()  # started before install(): an untraced server that records what it gets
    yield party
    party.server.stop(0)


def _call(port: int, aio: bool, metadata: list[tuple[Any, Any]]) -> None:
    target = f"127.0.0.1:{port}"
    if not aio:
        with grpc.insecure_channel(target) as channel:
            channel.unary_unary(svc.RECORDED_METHOD, **svc.CLIENT_KW)({}, metadata=metadata)
        return

    async def call() -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            await channel.unary_unary(svc.RECORDED_METHOD, **svc.CLIENT_KW)({}, metadata=metadata)

    asyncio.run(call())


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "aio"])
def test_bytes_keyed_trace_headers_are_replaced_not_sent_beside_ours(tmp_path, third_party, aio: bool) -> None:
    traced = svc.install(tmp_path)
    with autotrace.start_chain("caller") as root, autotrace.tenant("acme"):
        _call(third_party.port, aio, FORWARDED)
    (seen,) = third_party.seen
    (client,) = [r for r in traced.trace(root.trace_id) if r["name"] == "ext.Billing/Charge"]
    assert client["parent_id"] == root.id
    assert sorted(seen) == [("baggage", "region=eu,autotrace.tenant=acme"),
                            ("traceparent", f"00-{root.trace_id}-{client['id']}-01"), ("x-request-id", "r1")]


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "aio"])
def test_a_call_outside_any_trace_joins_the_trace_a_bytes_keyed_traceparent_names(tmp_path, third_party,
                                                                                 aio: bool) -> None:
    traced = svc.install(tmp_path)
    _call(third_party.port, aio, FORWARDED)
    (seen,) = third_party.seen
    (client,) = traced.trace(CALLER_TRACE)
    assert (client["name"], client["parent_id"]) == ("ext.Billing/Charge", CALLER_SPAN)
    assert sorted(seen) == [("baggage", "region=eu"), ("traceparent", f"00-{CALLER_TRACE}-{client['id']}-01"),
                            ("x-request-id", "r1")]
