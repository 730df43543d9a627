"""``inject`` into werkzeug's ``Headers`` (a Flask proxy forwarding ``request.headers``) found none
of the headers it held: iterating ``Headers`` gives (name, value) pairs, not names. The caller's
``baggage`` (its tenant) travelled on when there was none to write, and its ``tracestate`` with
this trace; with one to write, the caller's other entries were lost. And a ``baggage`` header of
fewer than 8,192 characters but more than 8,192 bytes (W3C's limit is in bytes) was read as
malformed (``propagation_invalid_baggage``), not as too long."""

from __future__ import annotations

import pytest
from opentelemetry import baggage
from werkzeug.datastructures import Headers

import autotrace
from autotrace import propagation
from tests.helpers import Traced

GO_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _forwarded() -> Headers:
    """An incoming request's headers, as werkzeug holds them: two ``baggage`` headers."""
    return Headers([("Traceparent", GO_PARENT), ("Tracestate", "congo=t61rcWkgMzE"), ("Accept", "*/*"),
                    ("Baggage", "autotrace.tenant=victim,userId=alice"), ("baggage", "region=eu")])


@pytest.mark.parametrize(("tenant", "members"), [(None, ["region=eu", "userId=alice"]),
                                                 ("acme", ["autotrace.tenant=acme", "region=eu", "userId=alice"])])
def test_inject_into_werkzeug_headers_replaces_the_forwarded_ones(traced: Traced, tenant: str | None,
                                                                  members: list[str]) -> None:
    with autotrace.start_span("proxy") as span:
        if tenant is None:
            carrier = propagation.inject(_forwarded())
        else:
            with autotrace.tenant(tenant):
                carrier = propagation.inject(_forwarded())
    assert sorted(name for name, _ in carrier.items()) == ["Accept", "baggage", "traceparent"]
    assert carrier.getlist("traceparent") == [f"00-{span.trace_id}-{span.id}-01"]
    assert sorted(carrier["baggage"].split(",")) == members


def test_inject_into_werkzeug_headers_without_a_span_keeps_the_trace_not_the_callers_tenant() -> None:
    carrier = propagation.inject(_forwarded(), send_tenant=False)
    assert list(carrier.items()) == [("Traceparent", GO_PARENT), ("Tracestate", "congo=t61rcWkgMzE"),
                                     ("Accept", "*/*"), ("baggage", "userId=alice,region=eu")]


@pytest.mark.parametrize("header", [
    "autotrace.tenant=acme,k=" + "é" * 5000,  # 5,024 characters, 10,024 bytes
    "autotrace.tenant=acme,k=" + "\u20ac" * 3000,  # 3,024 characters, 9,024 bytes
])
@pytest.mark.parametrize("form", ["mapping", "pairs"])
def test_a_baggage_header_over_8192_bytes_in_fewer_characters_is_too_long(header: str, form: str) -> None:
    carrier = {"baggage": header} if form == "mapping" else [("baggage", header), ("x", "1")]
    context = propagation.extract(carrier)
    assert baggage.get_all(context) == {}
    assert {k: v for k, v in autotrace.stats().items() if k.startswith("propagation")} == {
        "propagation_baggage_too_long": 1}


def test_a_non_ascii_baggage_header_within_8192_bytes_is_still_malformed() -> None:
    context = propagation.extract({"baggage": "autotrace.tenant=acme,k=" + "é" * 4000})  # 8,024 bytes
    assert baggage.get_all(context) == {"autotrace.tenant": "acme"}  # the malformed member alone is ignored
    assert {k: v for k, v in autotrace.stats().items() if k.startswith("propagation")} == {
        "propagation_invalid_baggage": 1}
