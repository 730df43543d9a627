"""W3C propagation helpers: compat flags, tenant baggage, and fuzzed incoming headers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace

import autotrace
from autotrace import propagation
from autotrace.context import tenant_from_baggage
from tests.helpers import Traced


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
