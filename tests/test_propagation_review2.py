"""The tenant's baggage entry against the W3C baggage limits (180 members, 8,192 bytes): when the
application's own baggage fills them, the propagator leaves out the last entries, and the tenant's
came last. The tenant must travel; the application's entries give way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context

import autotrace
from autotrace import propagation
from autotrace.context import tenant_from_baggage
from tests import grpc_services as svc
from tests.helpers import Traced

#: Tenant ids of every kind of character the grammar allows (their baggage values are percent-encoded).
TENANTS = ["acme", "Org-7/team.a:b@c_d", "x" * 128]


def _app_baggage(entries: dict[str, str]) -> Iterator[None]:
    ctx = None
    for key, value in entries.items():
        ctx = baggage.set_baggage(key, value, ctx)
    token = otel_context.attach(ctx)  # type: ignore[arg-type]
    try:
        yield
    finally:
        otel_context.detach(token)


MANY = {f"k{i}": str(i) for i in range(200)}  # past the 180 members a header may hold
LARGE = {f"big{i}": "v" * 3000 for i in range(3)}  # past the 8,192 bytes


@pytest.mark.parametrize("tenant", TENANTS)
@pytest.mark.parametrize("entries", [MANY, LARGE], ids=["members", "bytes"])
def test_the_tenant_travels_when_other_baggage_fills_the_limits(traced: Traced, entries: dict[str, str],
                                                                tenant: str) -> None:
    for _ in _app_baggage(entries):
        with autotrace.tenant(tenant), autotrace.start_span("outgoing") as span:
            carrier = propagation.inject({})
    header = carrier["baggage"]
    assert len(header) <= 8192 and len(header.split(",")) <= 180
    received = propagation.extract(carrier)
    assert tenant_from_baggage(received) == tenant
    kept = baggage.get_all(received)
    assert set(kept) - {"autotrace.tenant"} <= set(entries) and len(kept) > 1  # the others, as many as fit
    assert format(trace.get_current_span(received).get_span_context().span_id, "016x") == span.id


def test_within_the_limits_the_header_is_as_before(traced: Traced) -> None:
    for _ in _app_baggage({"other": "1"}):
        with autotrace.tenant("acme"):
            assert propagation.inject({})["baggage"] == "other=1,autotrace.tenant=acme"


@pytest.fixture
def server(tmp_path: Any) -> Iterator[tuple[Traced, int]]:
    traced = svc.install(tmp_path, trust_incoming_tenant=True)
    srv, port = svc.start_sync_server()
    yield traced, port
    srv.stop(0)


def test_a_grpc_server_gets_the_tenant_of_a_caller_with_much_baggage(server: tuple[Traced, int]) -> None:
    traced, port = server
    for _ in _app_baggage(MANY):
        with autotrace.tenant("acme"), autotrace.start_agent("caller") as agent:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                reply = svc.Stub(channel).Unary({"text": "hi"})
    assert reply["tenant"] == "acme"
    records = traced.trace(agent.trace_id)
    assert [(r["name"], r["tenant"]) for r in records] == [
        ("caller", "acme"), ("test.Echo/Unary", "acme"), ("test.Echo/Unary", "acme"), ("inner-unary", "acme")]
    by_id = {r["id"]: r for r in records}
    inner = next(r for r in records if r["name"] == "inner-unary")
    server_span = by_id[inner["parent_id"]]
    assert by_id[server_span["parent_id"]]["parent_id"] == agent.id  # server under client under the caller
