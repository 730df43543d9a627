"""Propagation review 3: W3C headers written into carriers that already hold some (a proxy
forwarding an incoming request's headers, as Flask's ``dict(request.headers)`` spells them), a
mapping holding a header in two spellings, and baggage encoded and read as W3C readers (otel-go)
do: a space as ``%20``, a ``+`` a plus sign, no member otel-go cannot read."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from werkzeug.datastructures import EnvironHeaders

import autotrace
from autotrace import propagation
from autotrace.context import tenant_from_baggage
from tests.helpers import Traced

GO_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _forwarded() -> dict[str, str]:
    """An incoming request's headers as a Flask handler forwards them (``Traceparent``, ...)."""
    return dict(EnvironHeaders({"HTTP_TRACEPARENT": GO_PARENT, "HTTP_TRACESTATE": "congo=t61rcWkgMzE",
                                "HTTP_BAGGAGE": "autotrace.tenant=victim,userId=alice", "HTTP_ACCEPT": "*/*"}))


@pytest.mark.parametrize(("tenant", "members"), [(None, ["userId=alice"]),
                                                 ("acme", ["autotrace.tenant=acme", "userId=alice"])])
def test_inject_replaces_the_headers_a_forwarded_request_holds(traced: Traced, tenant: str | None,
                                                                members: list[str]) -> None:
    """The caller's tenant travelled on (``Baggage`` left next to the ``baggage`` written, or kept
    when there was no baggage to write), with its ``tracestate`` and a second traceparent."""
    with autotrace.start_span("proxy") as span:
        if tenant is None:
            carrier = propagation.inject(_forwarded())
        else:
            with autotrace.tenant(tenant):
                carrier = propagation.inject(_forwarded())
    assert sorted(carrier) == ["Accept", "baggage", "traceparent"]
    assert carrier["traceparent"] == f"00-{span.trace_id}-{span.id}-01"
    assert sorted(carrier["baggage"].split(",")) == members


def test_inject_without_a_span_keeps_the_given_trace_but_not_the_callers_tenant(traced: Traced) -> None:
    carrier = propagation.inject(_forwarded(), send_tenant=False)
    assert carrier == {"Traceparent": GO_PARENT, "Tracestate": "congo=t61rcWkgMzE", "Accept": "*/*",
                       "baggage": "userId=alice"}


def test_a_mapping_holding_a_header_in_two_spellings_has_two_of_them() -> None:
    """As for metadata pairs: two traceparents are none (W3C), two baggage headers naming different
    tenants give none. The mapping's last spelling won (``evil`` chose the tenant)."""
    other = GO_PARENT.replace("00f067aa0ba902b7", "1111111111111111")
    ctx = propagation.extract({"traceparent": GO_PARENT, "Traceparent": other,
                               "baggage": "autotrace.tenant=acme,a=1", "Baggage": "autotrace.tenant=evil,b=2"})
    assert not trace.get_current_span(ctx).get_span_context().is_valid
    assert baggage.get_all(ctx) == {"a": "1", "b": "2"}
    stats = autotrace.stats()
    assert (stats["propagation_duplicate_traceparent"], stats["propagation_conflicting_tenant"]) == (1, 1)


def test_a_plus_sign_in_a_tenant_value_is_read_as_one_by_both_readers() -> None:
    """``conflicting_tenants`` reads values as ``extract`` does: ``acme+`` is not ``acme`` (it was,
    the ``+`` form-decoded into a space and stripped), so the header names two tenants."""
    assert tenant_from_baggage(propagation.extract({"baggage": "autotrace.tenant=acme,autotrace.tenant=acme+"})) is None
    assert tenant_from_baggage(propagation.extract({"baggage": "autotrace.tenant=acme+"})) is None  # no tenant id
    assert autotrace.stats()["propagation_conflicting_tenant"] == 1
    # a header the %2B would take past 8,192 bytes (the propagator then ignores it all) keeps its tenant
    many = propagation.extract({"baggage": "autotrace.tenant=acme,k=a" + "+" * 4000})
    assert (tenant_from_baggage(many), baggage.get_all(many)["k"]) == ("acme", "a")


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40).map(str.strip)
       .filter(bool))
@example("Jane Doe")
@example("a+b c%20d;e,f=g")
def test_a_baggage_value_reads_the_same_to_a_w3c_reader_and_to_extract(value: str) -> None:
    """Whatever the value, the header ``inject`` writes decodes to it by percent-decoding alone (as
    otel-go reads it) and through ``extract`` (as the next Python service reads it)."""
    token = otel_context.attach(baggage.set_baggage("note", value))
    try:
        header = propagation.inject({})["baggage"]
    finally:
        otel_context.detach(token)
    key, _, encoded = header.partition("=")
    assert (key, unquote(encoded)) == ("note", value)
    assert baggage.get_all(propagation.extract({"baggage": header})) == {"note": value}


#: A baggage member as otel-go reads one (a header with any other is ignored whole): a key of one
#: token character or more, a value of W3C baggage octets.
_GO_MEMBER = re.compile(r"[!#-'*+.0-9A-Z^-z|~-]+=[!#-+\--:<-\[\]-~]*")


@pytest.mark.parametrize("sent", ["+=1", "%20=1", " + =1;p"])
def test_an_entry_with_an_empty_key_is_not_sent_on(traced: Traced, sent: str) -> None:
    """OTel Python reads a caller's ``+=1`` as an entry with the empty key, which went on as
    ``=1``: otel-go then ignores the whole header, the tenant with it."""
    token = otel_context.attach(propagation.extract({"baggage": f"{sent},autotrace.tenant=victim,ok=2"}))
    try:
        with autotrace.tenant("acme"):
            header = propagation.inject({})["baggage"]
    finally:
        otel_context.detach(token)
    assert header == "ok=2,autotrace.tenant=acme"
    assert all(_GO_MEMBER.fullmatch(member) for member in header.split(","))
    assert autotrace.stats()["propagation_baggage_dropped"] == 1
