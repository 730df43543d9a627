"""autotrace next to the rest of OpenTelemetry in one process: the contrib gRPC instrumentation
(opentelemetry-instrumentation-grpc's own interceptors, real grpcio on loopback) inside or
outside ours, OTel's global ``propagate.inject`` in a handler, and ``propagation.inject`` for an
HTTP request (real httpx to a loopback server). One span per call where ours is outside, one
consistent trace either way, autotrace's headers on the wire, and the tenant kept from hosts the
``tenant_baggage`` setting does not name."""

from __future__ import annotations

import asyncio
from concurrent import futures
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import grpc
import grpc.aio
import httpx
import pytest
from opentelemetry import baggage, propagate
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.grpc import client_interceptor, server_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

import autotrace
from autotrace import propagation
from autotrace.integrations import grpc as grpc_integration
from tests import grpc_services as svc
from tests.helpers import Traced, served_in_thread, shape

RPC = "test.Echo"
OTEL_NAME = f"/{RPC}/Unary"  # the contrib instrumentation names its spans by the full path


class _Seen(svc.Echo):
    """Echo, recording what OTel's own ``propagate.inject`` writes in the handler and the trace
    headers the call arrived with."""

    def __init__(self) -> None:
        self.injected: list[dict[str, str]] = []
        self.metadata: list[dict[str, str]] = []

    def Unary(self, request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        self.injected.append(carrier)
        self.metadata.append({k: v for k, v in context.invocation_metadata() if k in ("traceparent", "baggage")})
        return super().Unary(request, context)


def _serve(servicer: svc.Echo, interceptors: list[Any], unpatched: bool = False) -> tuple[grpc.Server, int]:
    """A server with ``interceptors``; ``unpatched``: made by grpc's own ``grpc.server``, as one made
    before ``install()`` is (on a server made after it, OpenTelemetry's interceptor is left off)."""
    make = getattr(grpc.server, "__wrapped__", grpc.server) if unpatched else grpc.server
    server = make(futures.ThreadPoolExecutor(max_workers=2), interceptors=interceptors)
    server.add_generic_rpc_handlers((svc.handler(servicer),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


@pytest.fixture
def traced(tmp_path: Any) -> Traced:
    return svc.install(tmp_path, trust_incoming_tenant=True)


@pytest.fixture
def seen() -> _Seen:
    return _Seen()


def _call_with_baggage(port: int) -> str:
    """One unary call under tenant acme with a baggage entry of the application's; the trace id."""
    token = otel_context.attach(baggage.set_baggage("user", "u1"))
    try:
        with autotrace.tenant("acme"), autotrace.start_agent("turn") as turn:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                svc.Stub(channel).Unary({"text": "hi"})
    finally:
        otel_context.detach(token)
    return turn.trace_id


def test_contrib_server_outside_ours_nests_our_span_and_keeps_the_callers_tenant_out_of_otel_baggage(
        traced: Traced, seen: _Seen) -> None:
    # the contrib interceptor first (outermost), then ours, on a server autotrace did not make (one
    # made before install(), or by other means): it cannot take the contrib one off
    server, port = _serve(seen, [server_interceptor(), grpc_integration.server_interceptor()], unpatched=True)
    try:
        trace_id = _call_with_baggage(port)
    finally:
        server.stop(0)
    # OTel's propagator in the handler: the caller's other entries, never the caller's tenant
    assert seen.injected[0]["baggage"] == "user=u1"
    records = traced.trace(trace_id)
    assert shape(records) == [("agent", "turn", [("span", f"{RPC}/Unary", [("span", OTEL_NAME, [
        ("span", f"{RPC}/Unary", [("retriever", "inner-unary", [])])])])])]
    assert {r["tenant"] for r in records} == {"acme"}  # the contrib span too, adopted, not left out


def test_ours_outside_the_contrib_server_interceptor_is_the_one_server_span(traced: Traced, seen: _Seen) -> None:
    # given at creation after install(): ours is put first, outside it
    server, port = _serve(seen, [server_interceptor()])
    try:
        trace_id = _call_with_baggage(port)
    finally:
        server.stop(0)
    assert shape(traced.trace(trace_id)) == [("agent", "turn", [("span", f"{RPC}/Unary", [
        ("span", f"{RPC}/Unary", [("retriever", "inner-unary", [])])])])]
    assert seen.injected[0]["baggage"] == "user=u1"


def test_ours_outside_the_contrib_client_interceptor_is_the_one_client_span_and_sends_its_headers(
        tmp_path: Any) -> None:
    seen = _Seen()
    server, port = _serve(seen, [grpc_integration.server_interceptor()])
    target = f"127.0.0.1:{port}"
    raw = grpc.insecure_channel(target)  # made before install(): the contrib interceptor on it, ours outside
    traced = svc.install(tmp_path)
    channel = grpc_integration.instrument_channel(intercept_channel(raw, client_interceptor()), target)
    try:
        with autotrace.tenant("acme"), autotrace.start_agent("turn") as turn:
            svc.Stub(channel).Unary({"text": "hi"})
            assert [m["i"] for m in svc.Stub(channel).ServerStream({"n": 2})] == [0, 1]
    finally:
        raw.close()
        server.stop(0)
    records = traced.trace(turn.trace_id)
    assert shape(records) == [("agent", "turn", [
        ("span", f"{RPC}/Unary", [("span", f"{RPC}/Unary", [("retriever", "inner-unary", [])])]),
        ("span", f"{RPC}/ServerStream", [("span", f"{RPC}/ServerStream", [
            ("retriever", "inner-stream-0", []), ("retriever", "inner-stream-1", [])])]),
    ])]
    client = next(r for r in records if r["name"] == f"{RPC}/Unary" and r["parent_id"] == turn.id)
    # the client span's context is the one on the wire: only the sampled bit, with the tenant
    assert seen.metadata == [{"traceparent": f"00-{turn.trace_id}-{client['id']}-01",
                              "baggage": "autotrace.tenant=acme"}]
    assert not [name for name in autotrace.stats() if name.startswith("internal_errors")]


class _Headers(BaseHTTPRequestHandler):
    received: list[dict[str, str]] = []

    def do_GET(self) -> None:
        type(self).received.append({k.lower(): v for k, v in self.headers.items()
                                    if k.lower() in ("traceparent", "baggage")})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_manual_http_inject_tells_the_tenant_only_to_hosts_tenant_baggage_names(tmp_path: Any) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(),
                      tenant_baggage="rag-service:*")
    _Headers.received = []
    with served_in_thread(HTTPServer(("127.0.0.1", 0), _Headers)) as url:
        with autotrace.tenant("acme"), autotrace.start_span("turn") as turn:
            parent = f"00-{turn.trace_id}-{turn.id}-01"
            httpx.get(url, headers=propagation.inject({}))  # a third party: the host is not named
            otel: dict[str, str] = {}
            propagate.inject(otel)  # OTel's own propagator: the same span; autotrace's tenant never
            httpx.get(url, headers=otel)
            assert _Headers.received == [{"traceparent": parent}, {"traceparent": otel["traceparent"]}]
            httpx.get(url, headers=propagation.inject({}, target="rag-service:8080"))
            httpx.get(url, headers=propagation.inject({}, target="api.example.com:443"))
    assert _Headers.received[2:] == [{"traceparent": parent, "baggage": "autotrace.tenant=acme"},
                                     {"traceparent": parent}]
    assert otel["traceparent"][:-2] == parent[:-2]  # its flags are OTel's own (the level-2 random bit too)


class _BaggageSetter(grpc.aio.ServerInterceptor):
    """An application's interceptor (after ours) that makes a baggage entry current for the call."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        otel_context.attach(baggage.set_baggage("region", "eu"))  # for the handler: never detached
        return await continuation(details)


def test_what_an_interceptor_inside_ours_makes_current_stays_for_the_handler(traced: Traced) -> None:
    seen: dict[str, Any] = {}

    async def unary(request: Any, context: Any) -> dict[str, Any]:
        seen.update(baggage.get_all())
        seen["enabled"] = is_instrumentation_enabled()
        return {}

    async def scenario() -> None:
        handler = grpc.method_handlers_generic_handler(RPC, {
            "Unary": grpc.unary_unary_rpc_method_handler(unary, **svc.SERVER_KW)})
        server, port = await svc.start_server(True, handler, interceptors=[_BaggageSetter()])
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await channel.unary_unary(f"/{RPC}/Unary", **svc.CLIENT_KW)({})
        finally:
            await svc.stop_server(server)

    asyncio.run(scenario())
    assert seen == {"region": "eu", "enabled": True}  # other instrumentations trace what the handler does
