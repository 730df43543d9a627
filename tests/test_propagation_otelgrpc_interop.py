"""Propagation: interoperating with grpc-go services instrumented by otelgrpc, which send
lower-case ``traceparent``, ``tracestate`` and ``baggage`` metadata (one value each; otel-go writes
baggage values unescaped when they are W3C baggage octets, and may add member properties), and
expect the same back. Real grpcio servers on loopback; the "Go" caller is a plain channel given the
metadata otelgrpc sends, the third-party server a plain one that records what it gets. The HTTP
middleware is held to the same header cases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest
from opentelemetry import propagate, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import autotrace
from autotrace.integrations.grpc import aio_client_interceptors, instrument_channel, server_interceptor
from autotrace.middleware import TenantASGIMiddleware, TenantWSGIMiddleware
from tests import grpc_services as svc
from tests.helpers import Traced

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
OTELGRPC = [("traceparent", TRACEPARENT), ("tracestate", TRACESTATE),
            ("baggage", "autotrace.tenant=org:acme@x/y,userId=alice")]  # as otel-go writes them
EXTERNAL = "/ext.Billing/Charge"


@pytest.fixture
def traced(tmp_path: Any) -> Traced:
    """autotrace without patching (servers get ``server_interceptor()``, outgoing channels are
    instrumented explicitly), so that the "Go" caller and the third party stay plain; servers
    trust their callers' tenant."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "r8.db", integrations=(), export_interval=0.05,
                      trust_incoming_tenant=True)
    return Traced(tmp_path / "r8.db")


@pytest.fixture
def third_party() -> Iterator[svc.MetadataRecorder]:
    party = svc.MetadataRecorder()
    yield party
    party.server.stop(0)


def _serve(handlers: dict[str, Any]) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[server_interceptor()])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(svc.SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def _sent(seen: list[tuple[str, str]]) -> tuple[list[str], dict[str, str], set[str]]:
    """Metadata names in order, values by name, and the baggage members."""
    values = dict(seen)
    return [k for k, _ in seen], values, set(values.get("baggage", "").split(","))


# -- 1. an otelgrpc caller: trace, tenant, tracestate and baggage travel on -------------------------
@pytest.mark.parametrize("kind", ["unary", "server-stream"])
def test_an_otelgrpc_call_is_joined_and_its_context_travels_on_to_a_third_party(
        traced: Traced, third_party: svc.MetadataRecorder, kind: str) -> None:
    """The server span's parent is the Go caller's span; the handler's call to a service that is
    not ours carries exactly the W3C headers, lower case: this call's traceparent, the caller's
    tracestate, and the caller's baggage entries with the tenant in scope. The caller's other
    entries (``userId``) were dropped by a gRPC server, not by the HTTP middleware."""
    billing = instrument_channel(grpc.insecure_channel(f"127.0.0.1:{third_party.port}"))
    charge = billing.unary_unary(EXTERNAL, **svc.CLIENT_KW)

    def unary(request: Any, context: Any) -> dict[str, Any]:
        charge({})
        return {"tenant": autotrace.current_tenant()}

    def stream(request: Any, context: Any) -> Iterator[dict[str, Any]]:
        charge({})
        yield {"tenant": autotrace.current_tenant()}

    server, port = _serve({"Unary": grpc.unary_unary_rpc_method_handler(unary, **svc.SERVER_KW),
                           "Stream": grpc.unary_stream_rpc_method_handler(stream, **svc.SERVER_KW)})
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as go:  # plain: the Go agent
            if kind == "unary":
                reply = go.unary_unary(f"/{svc.SERVICE}/Unary", **svc.CLIENT_KW)({}, metadata=OTELGRPC)
            else:
                (reply,) = go.unary_stream(f"/{svc.SERVICE}/Stream", **svc.CLIENT_KW)({}, metadata=OTELGRPC)
    finally:
        server.stop(0)
        billing.close()
    assert reply == {"tenant": "org:acme@x/y"}
    records = traced.trace(TRACE_ID)
    name = f"{svc.SERVICE}/{'Unary' if kind == 'unary' else 'Stream'}"
    assert [(r["type"], r["name"], r["tenant"]) for r in records] == [
        ("span", name, "org:acme@x/y"), ("span", "ext.Billing/Charge", "org:acme@x/y")]
    served, client = records
    assert (served["parent_id"], client["parent_id"]) == (PARENT_ID, served["id"])
    names, values, members = _sent(third_party.seen[0])
    assert names == ["traceparent", "tracestate", "baggage"]
    assert values["traceparent"] == f"00-{TRACE_ID}-{client['id']}-01"
    assert values["tracestate"] == TRACESTATE
    assert members == {"userId=alice", "autotrace.tenant=org%3Aacme%40x%2Fy"}


def test_an_aio_server_hands_the_callers_baggage_on_too(traced: Traced, third_party: svc.MetadataRecorder) -> None:
    async def scenario() -> dict[str, Any]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{third_party.port}",
                                             interceptors=aio_client_interceptors()) as billing:
            charge = billing.unary_unary(EXTERNAL, **svc.CLIENT_KW)

            async def unary(request: Any, context: Any) -> dict[str, Any]:
                await charge({})
                return {"tenant": autotrace.current_tenant()}

            server = grpc.aio.server(interceptors=[server_interceptor(asyncio=True)])
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(svc.SERVICE, {
                "Unary": grpc.unary_unary_rpc_method_handler(unary, **svc.SERVER_KW)}),))
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as go:
                    return await go.unary_unary(f"/{svc.SERVICE}/Unary", **svc.CLIENT_KW)({}, metadata=OTELGRPC)
            finally:
                await server.stop(0)

    assert asyncio.run(scenario()) == {"tenant": "org:acme@x/y"}
    served, client = traced.trace(TRACE_ID)
    assert (served["parent_id"], client["parent_id"]) == (PARENT_ID, served["id"])
    assert _sent(third_party.seen[0])[2] == {"userId=alice", "autotrace.tenant=org%3Aacme%40x%2Fy"}


# -- 2. invalid traceparents: a new trace, counted, never an error ----------------------------------
@pytest.mark.parametrize(("traceparent", "joined"), [
    (f"00-{TRACE_ID.upper()}-{PARENT_ID}-01", False),  # W3C: lower-case hex only
    (f"00-{'0' * 32}-{PARENT_ID}-01", False),  # all-zero trace id
    (f"00-{TRACE_ID}-{'0' * 16}-01", False),  # all-zero parent id
    (f"ff-{TRACE_ID}-{PARENT_ID}-01", False),  # version ff is invalid
    (f"00-{TRACE_ID}-{PARENT_ID}-01-extra", False),  # version 00 has exactly four fields
    (f"00-{TRACE_ID}-{PARENT_ID}-01" + "0" * 600, False),
    (f"cc-{TRACE_ID}-{PARENT_ID}-01-future", True),  # a later version: its first four fields are read
])
def test_an_invalid_traceparent_starts_a_new_trace_and_is_counted(
        traced: Traced, traceparent: str, joined: bool) -> None:
    server, port = _serve({"Unary": grpc.unary_unary_rpc_method_handler(lambda r, c: {"ok": 1}, **svc.SERVER_KW)})
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as go:
            reply = go.unary_unary(f"/{svc.SERVICE}/Unary", **svc.CLIENT_KW)(
                {}, metadata=[("traceparent", traceparent), ("tracestate", TRACESTATE)])
    finally:
        server.stop(0)
    assert reply == {"ok": 1}
    (served,) = traced.records()
    assert (served["trace_id"] == TRACE_ID, served["parent_id"]) == ((True, PARENT_ID) if joined else (False, None))
    assert autotrace.stats().get("propagation_invalid_traceparent", 0) == (0 if joined else 1)


# -- 3. a tenant with W3C baggage properties --------------------------------------------------------
@pytest.mark.parametrize(("baggage", "tenant"), [
    ("autotrace.tenant=acme;ttl=5", "acme"),  # otel-go: a member with a property
    ("k=v;p, autotrace.tenant = acme ;ttl", "acme"),
    ("autotrace.tenant=ac%3Bme", None),  # a ';' inside the value (percent-encoded): no tenant, not "ac"
])
def test_a_tenant_sent_with_baggage_properties_is_that_tenant(traced: Traced, baggage: str, tenant: Any) -> None:
    server, port = _serve({"Unary": grpc.unary_unary_rpc_method_handler(
        lambda request, context: {"tenant": autotrace.current_tenant()}, **svc.SERVER_KW)})
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as go:
            reply = go.unary_unary(f"/{svc.SERVICE}/Unary", **svc.CLIENT_KW)(
                {}, metadata=[("traceparent", TRACEPARENT), ("baggage", baggage)])
    finally:
        server.stop(0)
    assert reply == {"tenant": tenant}
    seen: list[Any] = []
    _asgi(TenantASGIMiddleware(_asgi_app(seen)), [(b"baggage", baggage.encode())])
    assert seen == [(tenant, None)]


# -- 4. the HTTP middleware, with the same header cases ---------------------------------------------
def _request() -> tuple[str | None, str | None]:
    """What a handler sees: its tenant, and the id of the span its spans nest under."""
    parent = trace.get_current_span().get_span_context()
    return autotrace.current_tenant(), f"{parent.span_id:016x}" if parent.is_valid else None


def _asgi_app(seen: list[Any]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(_request())

    return app


def _asgi(app: Any, headers: list[tuple[bytes, bytes]]) -> None:
    asyncio.run(app({"type": "http", "headers": headers, "path": "/"}, None, None))


def _wsgi(headers: dict[str, str]) -> list[Any]:
    seen: list[Any] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        seen.append(_request())
        return []

    TenantWSGIMiddleware(app)({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}, None)
    return seen


@pytest.fixture
def tracecontext_only() -> Iterator[None]:
    """The application's global propagator reads trace context only (OTEL_PROPAGATORS=tracecontext)."""
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(TraceContextTextMapPropagator())
    yield
    propagate.set_global_textmap(before)


def test_the_middleware_reads_the_w3c_headers_whatever_the_global_propagator(
        traced: Traced, tracecontext_only: None) -> None:
    seen: list[Any] = []
    headers = [(b"Traceparent", TRACEPARENT.encode()), (b"baggage", b"autotrace.tenant=acme")]
    _asgi(TenantASGIMiddleware(_asgi_app(seen)), headers)
    assert seen == [("acme", PARENT_ID)]
    assert _wsgi({"traceparent": TRACEPARENT, "baggage": "autotrace.tenant=acme"}) == [("acme", PARENT_ID)]


def test_the_middleware_counts_what_it_ignores(traced: Traced) -> None:
    """An oversized baggage header, a repeated traceparent (ASGI: two headers; WSGI: the server's
    comma-joined value) and an invalid one are ignored and counted, as for gRPC metadata."""
    seen: list[Any] = []
    app = TenantASGIMiddleware(_asgi_app(seen))
    _asgi(app, [(b"traceparent", TRACEPARENT.encode()),
                (b"baggage", b"autotrace.tenant=acme,k=" + b"v" * 9000)])
    _asgi(app, [(b"traceparent", TRACEPARENT.encode()), (b"traceparent", TRACEPARENT.encode())])
    seen += _wsgi({"traceparent": f"{TRACEPARENT},{TRACEPARENT}"})
    seen += _wsgi({"traceparent": TRACEPARENT.upper()})
    assert seen == [(None, PARENT_ID), (None, None), (None, None), (None, None)]
    stats = autotrace.stats()
    assert [stats.get(f"propagation_{name}", 0) for name in ("baggage_too_long", "duplicate_traceparent",
                                                             "invalid_traceparent")] == [1, 2, 1]

