"""gRPC propagation with real grpcio servers on loopback: one trace across client and server,
every call kind, sync and asyncio, status codes, tenants, and the otel-go flags rule."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest

import autotrace
from autotrace import propagation
from autotrace.integrations import grpc as grpc_integration
from tests import grpc_services as svc
from tests.helpers import Traced, shape

RPC = "test.Echo"


@pytest.fixture
def traced_grpc(tmp_path) -> Traced:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("grpc",),
                      export_interval=0.05, trust_incoming_tenant=True)
    return Traced(tmp_path / "t.db")


@pytest.fixture
def server(traced_grpc: Traced) -> Iterator[int]:
    srv, port = svc.start_sync_server()
    yield port
    srv.stop(0)


def test_unary_call_joins_one_trace(traced_grpc: Traced, server: int) -> None:
    with autotrace.tenant("acme"), autotrace.start_agent("caller") as agent:
        with grpc.insecure_channel(f"127.0.0.1:{server}") as channel:
            reply = svc.Stub(channel).Unary({"text": "hi"})
    assert reply["echo"] == "hi" and reply["tenant"] == "acme"
    records = traced_grpc.trace(agent.trace_id)
    assert shape(records) == [
        ("agent", "caller", [("span", f"{RPC}/Unary", [("span", f"{RPC}/Unary", [("retriever", "inner-unary", [])])])])
    ]
    assert len({r["trace_id"] for r in records}) == 1
    assert reply["traceparent"].endswith("-01")  # only the sampled bit, by default


def test_streaming_calls_in_both_directions(traced_grpc: Traced, server: int) -> None:
    with autotrace.start_chain("caller") as root:
        with grpc.insecure_channel(f"127.0.0.1:{server}") as channel:
            stub = svc.Stub(channel)
            assert [m["i"] for m in stub.ServerStream({"n": 2})] == [0, 1]
            assert stub.ClientStream(iter([{"n": 1}, {"n": 2}]))["total"] == 3
            assert [m["twice"] for m in stub.Bidi(iter([{"n": 1}, {"n": 4}]))] == [2, 8]
    tree = shape(traced_grpc.trace(root.trace_id))
    assert tree == [("chain", "caller", [
        ("span", f"{RPC}/ServerStream", [("span", f"{RPC}/ServerStream", [
            ("retriever", "inner-stream-0", []), ("retriever", "inner-stream-1", [])])]),
        ("span", f"{RPC}/ClientStream", [("span", f"{RPC}/ClientStream", [("retriever", "inner-client-stream", [])])]),
        ("span", f"{RPC}/Bidi", [("span", f"{RPC}/Bidi", [])]),
    ])]


def test_status_codes_and_errors_reach_the_caller_unchanged(traced_grpc: Traced, server: int) -> None:
    with autotrace.start_chain("caller") as root:
        with grpc.insecure_channel(f"127.0.0.1:{server}") as channel, pytest.raises(grpc.RpcError) as raised:
            svc.Stub(channel).Unary({"fail": True})
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    rpc_records = [r for r in traced_grpc.trace(root.trace_id) if r["name"] == f"{RPC}/Unary"]
    assert len(rpc_records) == 2
    for record in rpc_records:
        assert record["level"] == "ERROR"
        assert record["status_message"].startswith("NOT_FOUND")


def test_untrusted_callers_cannot_set_the_tenant(tmp_path, server: int) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "u.db", integrations=("grpc",),
                      export_interval=0.05, trust_incoming_tenant=False)
    srv, port = svc.start_sync_server()
    try:
        with autotrace.tenant("acme"), grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = svc.Stub(channel).Unary({"text": "x"})
    finally:
        srv.stop(0)
    assert reply["tenant"] is None


def test_asyncio_client_and_server(traced_grpc: Traced) -> None:
    async def scenario() -> tuple[str, dict[str, Any], list[int]]:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((svc.handler(svc.AioEcho()),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            with autotrace.tenant("globex"), autotrace.start_agent("aio-caller") as agent:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    stub = svc.Stub(channel)
                    reply = await stub.Unary({"text": "yo"})
                    streamed = [m["i"] async for m in stub.ServerStream({"n": 2})]
                    with pytest.raises(grpc.aio.AioRpcError) as raised:
                        await stub.Unary({"fail": True})
                    assert raised.value.code() is grpc.StatusCode.PERMISSION_DENIED
            return agent.trace_id, reply, streamed
        finally:
            await server.stop(0)

    trace_id, reply, streamed = asyncio.run(scenario())
    assert reply == {"echo": "yo", "tenant": "globex", "traceparent": None} and streamed == [0, 1]
    assert shape(traced_grpc.trace(trace_id)) == [("agent", "aio-caller", [
        ("span", f"{RPC}/Unary", [("span", f"{RPC}/Unary", [("retriever", "inner-aio-unary", [])])]),
        ("span", f"{RPC}/ServerStream", [("span", f"{RPC}/ServerStream", [])]),
        ("span", f"{RPC}/Unary", [("span", f"{RPC}/Unary", [])]),
    ])]


class _OldOtelGoPeer(grpc.ServerInterceptor):
    """Validates traceparent the way otel-go releases before 2026 did: flags above 2 are invalid."""

    def __init__(self) -> None:
        self.accepted: list[bool] = []

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        header = dict(details.invocation_metadata or ()).get("traceparent", "")
        parts = header.split("-")
        self.accepted.append(len(parts) == 4 and int(parts[3], 16) <= 2)
        return continuation(details)


@pytest.mark.parametrize(("full_flags", "joined"), [(False, True), (True, False)])
def test_trace_flags_interoperate_with_old_otel_go(tmp_path, full_flags: bool, joined: bool) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "f.db", integrations=("grpc",),
                      export_interval=0.05, full_trace_flags=full_flags)
    peer = _OldOtelGoPeer()
    srv, port = svc.start_sync_server(interceptors=[peer])
    try:
        with autotrace.start_chain("caller"), grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = svc.Stub(channel).Unary({"text": "x"})
    finally:
        srv.stop(0)
    assert peer.accepted == [joined]
    assert reply["traceparent"].endswith("-01" if not full_flags else "-03")


def test_malformed_and_oversized_headers_are_ignored(traced_grpc: Traced, server: int) -> None:
    autotrace.uninstall()
    autotrace.install(local_store="on", local_store_path=traced_grpc.path, integrations=(), export_interval=0.05)
    srv, port = svc.start_sync_server(interceptors=[grpc_integration.ServerInterceptor()])
    bad = [
        [("traceparent", "00-zz-yy-01")],
        [("traceparent", "00-" + "a" * 32 + "-" + "b" * 16 + "-01" + "x" * 2000)],  # over traceparent's limit
        [("baggage", "autotrace.tenant=" + "x" * 5000)],  # over the per-entry baggage limit
        # (gRPC itself refuses metadata above its 8 KiB soft limit before any interceptor runs)
        [("traceparent", "ff-" + "0" * 32 + "-" + "0" * 16 + "-01"), ("baggage", "%%%;;;==")],
    ]
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            for metadata in bad:
                assert svc.Stub(channel).Unary({"text": "ok"}, metadata=metadata)["echo"] == "ok"
    finally:
        srv.stop(0)
    records = traced_grpc.records()
    servers = [r for r in records if r["name"] == f"{RPC}/Unary"]
    assert len(servers) == 4 and all(r["parent_id"] is None for r in servers)


def test_channels_and_servers_made_before_install_can_be_wrapped(tmp_path) -> None:
    srv, port = svc.start_sync_server(interceptors=[grpc_integration.server_interceptor()])
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    autotrace.install(local_store="on", local_store_path=tmp_path / "p.db", integrations=(), export_interval=0.05)
    traced_channel = grpc_integration.instrument_channel(channel)
    try:
        with autotrace.start_chain("caller") as root:
            svc.Stub(traced_channel).Unary({"text": "x"})
    finally:
        channel.close()
        srv.stop(0)
    assert shape(Traced(tmp_path / "p.db").trace(root.trace_id)) == [
        ("chain", "caller", [("span", f"{RPC}/Unary", [("span", f"{RPC}/Unary", [("retriever", "inner-unary", [])])])])
    ]


def test_uninstall_restores_grpc(traced_grpc: Traced) -> None:
    patched = grpc.insecure_channel
    autotrace.uninstall()
    assert grpc.insecure_channel is not patched
    assert not hasattr(grpc.insecure_channel, "__wrapped__")


def _forwarding_handler(asyncio_server: bool) -> grpc.GenericRpcHandler:
    """``Forward``: the tenant in scope and the headers an onward call would carry."""

    def seen() -> dict[str, Any]:
        return {"tenant": autotrace.current_tenant(), "outgoing": dict(propagation.inject({}))}

    async def aio_forward(request: Any, context: Any) -> dict[str, Any]:
        return seen()

    def forward(request: Any, context: Any) -> dict[str, Any]:
        return seen()

    method = grpc.unary_unary_rpc_method_handler(aio_forward if asyncio_server else forward,
                                                 request_deserializer=svc.loads, response_serializer=svc.dumps)
    return grpc.method_handlers_generic_handler("test.Forward", {"Forward": method})


@pytest.mark.parametrize("asyncio_server", [False, True])
@pytest.mark.parametrize(("trust", "tenant"), [(False, None), (True, "victim")])
def test_incoming_tenant_is_forwarded_only_when_adopted(tmp_path, asyncio_server: bool, trust: bool,
                                                         tenant: str | None) -> None:
    """The servers never attach the caller's baggage: only an adopted tenant travels on."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "b.db", integrations=("grpc",),
                      export_interval=0.05, trust_incoming_tenant=trust)
    # The caller sends tenant "victim" in its baggage (a client sends only the tenant in scope).
    metadata = (("baggage", "other=1"),)

    async def scenario() -> dict[str, Any]:
        if asyncio_server:
            server: Any = grpc.aio.server()
            server.add_generic_rpc_handlers((_forwarding_handler(True),))
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
        else:
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
            server.add_generic_rpc_handlers((_forwarding_handler(False),))
            port = server.add_insecure_port("127.0.0.1:0")
            server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary("/test.Forward/Forward", request_serializer=svc.dumps,
                                           response_deserializer=svc.loads)
                with autotrace.tenant("victim"):
                    return await call({}, metadata=metadata)
        finally:
            stopped = server.stop(0)
            if asyncio_server:
                await stopped

    reply = asyncio.run(scenario())
    forwarded = [e for e in reply["outgoing"].get("baggage", "").split(",") if e.startswith("autotrace.tenant=")]
    assert (reply["tenant"], forwarded) == (tenant, [f"autotrace.tenant={tenant}"] if tenant else [])
