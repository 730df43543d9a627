"""Propagation review 3 over real grpcio on loopback: a Go agent (otelgrpc's metadata) calls a
Python service, whose handler calls a third party (a tool bundle). The baggage the third party
gets must read, as W3C baggage readers (otel-go, Java, .NET) decode it, as the Python service holds it."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import grpc
from opentelemetry import baggage
from opentelemetry import context as otel_context

import autotrace
from autotrace.integrations.grpc import instrument_channel
from tests import grpc_services as svc
from tests.helpers import Traced
from tests.test_propagation_otelgrpc_interop import EXTERNAL, TRACEPARENT, _serve, third_party, traced

__all__ = ["third_party", "traced"]  # fixtures


def _w3c_members(header: str) -> dict[str, str]:
    """A baggage header as a W3C reader decodes it: percent-decoding only (otel-go: ``PathUnescape``)."""
    return dict((unquote(k), unquote(v)) for k, _, v in (m.partition("=") for m in header.split(",")))


def test_baggage_values_reach_the_next_service_as_the_service_holds_them(traced: Traced,
                                                                         third_party: svc.MetadataRecorder) -> None:
    """OTel Python's propagator form-encodes: a space went out as ``+``, which W3C readers take as a
    plus sign (the Go caller's ``Jane Doe`` and the handler's own ``New York`` reached the tool
    bundle as ``Jane+Doe`` and ``New+York``), and the Go caller's ``gold+24h`` (a plus sign,
    which otel-go writes as is) was ``gold 24h`` in the handler, and so downstream once spaces
    are encoded. A ``+`` goes out as ``%2B``."""
    billing = instrument_channel(grpc.insecure_channel(f"127.0.0.1:{third_party.port}"))
    charge = billing.unary_unary(EXTERNAL, **svc.CLIENT_KW)
    held: list[dict[str, object]] = []

    def unary(request: Any, context: Any) -> dict[str, Any]:
        token = otel_context.attach(baggage.set_baggage("query", "New York 1+1"))
        try:
            held.append(dict(baggage.get_all()))
            charge({})
        finally:
            otel_context.detach(token)
        return {"tenant": autotrace.current_tenant()}

    server, port = _serve({"Unary": grpc.unary_unary_rpc_method_handler(unary, **svc.SERVER_KW)})
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as go:
            reply = go.unary_unary(f"/{svc.SERVICE}/Unary", **svc.CLIENT_KW)({}, metadata=[
                ("traceparent", TRACEPARENT), ("baggage", "autotrace.tenant=acme,user=Jane%20Doe,plan=gold+24h")])
    finally:
        server.stop(0)
        billing.close()
    assert reply == {"tenant": "acme"}
    assert held == [{"user": "Jane Doe", "plan": "gold+24h", "query": "New York 1+1"}]
    (header,) = [v for k, v in third_party.seen[0] if k == "baggage"]
    assert _w3c_members(header) == {"user": "Jane Doe", "plan": "gold+24h", "query": "New York 1+1",
                                   "autotrace.tenant": "acme"}
    assert " " not in header and "+" not in header
