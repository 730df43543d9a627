"""W3C propagation helpers: compat flags, tenant baggage, fuzzed incoming headers and tenant ids."""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry import context as otel_context
from opentelemetry import trace

import autotrace
from autotrace import propagation
from autotrace.context import tenant_from_baggage, valid_tenant
from tests.helpers import Traced

_ALNUM = string.ascii_letters + string.digits
_TENANT_CHARS = _ALNUM + "._:@/-"


def test_inject_then_extract_round_trip(traced: Traced) -> None:
    carrier: dict[str, str] = {}
    with autotrace.tenant("acme"), autotrace.start_chain("outgoing") as obs:
        propagation.inject(carrier)
    assert carrier["traceparent"] == f"00-{obs.trace_id}-{obs.id}-01"
    assert carrier["baggage"] == "autotrace.tenant=acme"
    ctx = propagation.extract(carrier)
    span_context = trace.get_current_span(ctx).get_span_context()
    assert format(span_context.trace_id, "032x") == obs.trace_id and span_context.is_remote
    assert tenant_from_baggage(ctx) == "acme"
    pairs = propagation.extract(list(carrier.items()))
    assert trace.get_current_span(pairs).get_span_context().span_id == span_context.span_id


def test_full_flags_when_configured(tmp_path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), full_trace_flags=True)
    with autotrace.start_chain("x"):
        assert propagation.traceparent().endswith("-03")
        assert propagation.traceparent(full_flags=False).endswith("-01")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["traceparent", "tracestate", "baggage", "other"]),
                       st.text(max_size=200), max_size=4))
def test_fuzzed_headers_never_raise(headers: dict[str, str]) -> None:
    ctx = propagation.extract(headers)
    tenant = tenant_from_baggage(ctx)
    assert tenant is None or isinstance(tenant, str)
    propagation.extract(list(headers.items()))


def test_inject_never_forwards_a_tenant_that_is_only_in_the_baggage(traced: Traced) -> None:
    # e.g. another OpenTelemetry instrumentation attached an incoming request's baggage
    token = otel_context.attach(propagation.extract({"baggage": "autotrace.tenant=victim,other=1"}))
    try:
        assert propagation.inject({})["baggage"] == "other=1"
        with autotrace.tenant("acme"):
            assert set(propagation.inject({})["baggage"].split(",")) == {"other=1", "autotrace.tenant=acme"}
    finally:
        otel_context.detach(token)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=_TENANT_CHARS + "\n\r\t \x00\u00e9\u0661", max_size=130))
@example("acme\n")
@example("acme\r\n")
def test_tenant_ids_are_exactly_the_documented_shape(value: str) -> None:
    documented = 1 <= len(value) <= 128 and value[0] in _ALNUM and set(value) <= set(_TENANT_CHARS)
    assert valid_tenant(value) is documented


def test_merge_baggage_keeps_given_entries_and_ignores_bad_ones(traced: Traced) -> None:
    from opentelemetry import baggage

    pairs = [("baggage", "a=1"), ("Baggage", b"b=2"), ("baggage", "%%%;;;=="), ("baggage", "c=" + "x" * 9000),
             ("traceparent", "not baggage"), (b"baggage", "d=4")]
    merged = propagation.merge_baggage(pairs, otel_context.Context())
    assert baggage.get_all(merged) == {"a": "1", "b": "2"}


def test_several_traceparents_are_invalid_and_several_baggage_headers_one_list() -> None:
    """W3C trace context: several traceparent headers make none valid (a new trace starts), while
    tracestate headers combine; W3C baggage: several baggage headers are one list, a later entry
    for a key winning. Only the first of each was read."""
    from opentelemetry import baggage

    first = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    second = "00-1bf7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01"
    ctx = propagation.extract([("traceparent", first), ("TraceParent", second), ("baggage", "a=1,b=1"),
                               ("Baggage", b"b=2"), ("baggage", "%%%;;"), ("baggage", "c=" + "x" * 9000)])
    assert not trace.get_current_span(ctx).get_span_context().is_valid
    assert baggage.get_all(ctx) == {"a": "1", "b": "2"}
    assert autotrace.stats()["propagation_duplicate_traceparent"] == 1
    one = propagation.extract([("traceparent", first), ("tracestate", "x=1"), ("tracestate", "y=2")])
    span_context = trace.get_current_span(one).get_span_context()
    assert format(span_context.span_id, "016x") == "b7ad6b7169203331"
    assert span_context.trace_state.to_header() == "x=1,y=2"


def test_baggage_naming_several_tenants_carries_none() -> None:
    """As gRPC metadata (pairs) or one header (a mapping): several tenants named, none is taken."""
    conflicting = propagation.extract([("baggage", "autotrace.tenant=a%2Fb"), ("baggage", "autotrace.tenant=c")])
    single = propagation.extract({"baggage": "autotrace.tenant=a,x=1,autotrace.tenant=c"})
    same = propagation.extract([("baggage", "autotrace.tenant=a%2Fb;p=1"), ("baggage", "autotrace.tenant=a/b")])
    assert (tenant_from_baggage(conflicting), tenant_from_baggage(single), tenant_from_baggage(same)) == \
        (None, None, "a/b")
    assert autotrace.stats()["propagation_conflicting_tenant"] == 2


@pytest.mark.parametrize("later", ["autotrace%2Etenant=globex", "autotrace.tenant+=globex", "autotrace.tenant%20=globex",
                                   "%61utotrace.tenant=globex", " autotrace.tenant =globex;p=1"])
def test_a_tenant_key_spelled_otherwise_is_still_a_second_tenant(later: str) -> None:
    """The baggage propagator decodes keys (``%2E``, ``+``) and strips them: a later entry so spelled
    names the tenant too, so it cannot choose one either."""
    for carrier in ([("baggage", "autotrace.tenant=acme"), ("baggage", later)], {"baggage": f"autotrace.tenant=acme,{later}"}):
        assert tenant_from_baggage(propagation.extract(carrier)) is None
    assert autotrace.stats()["propagation_conflicting_tenant"] == 2
    assert tenant_from_baggage(propagation.extract({"baggage": later})) == "globex"  # alone, it is the tenant


def test_an_oversized_baggage_header_is_ignored_counted_and_said_once(caplog) -> None:
    """A baggage header over 8,192 bytes (W3C) takes the caller's tenant with it: that was silent.
    A header as a mapping (HTTP) and as pairs (gRPC metadata) alike; other oversized headers are
    ignored without a count (they carry no tenant)."""
    big = "autotrace.tenant=acme,big=" + "x" * 9000
    for carrier in ({"Baggage": big}, [("baggage", big)], [("baggage", big.encode())]):
        assert tenant_from_baggage(propagation.extract(carrier)) is None
    assert tenant_from_baggage(propagation.extract({"baggage": "autotrace.tenant=acme"})) == "acme"
    propagation.extract({"x-other": "y" * 9000})
    assert autotrace.stats()["propagation_baggage_too_long"] == 3
    said = [r.getMessage() for r in caplog.records if "propagation_baggage_too_long" in r.getMessage()]
    assert len(said) == 1 and "x" * 100 not in said[0]
