"""Fuzzing review 15: W3C trace context and baggage as autotrace reads and writes them.

Properties: ``inject`` then ``extract`` gives back the span context, the tenant and the baggage;
forwarding what was extracted reads the same again; header lists (gRPC metadata, HTTP headers)
with repeats, any case, ``str`` or ``bytes`` values, never raise and join a trace exactly when one
well-formed ``traceparent`` came; an entry ``inject`` cannot write never costs the call its trace
context or tenant (a real gRPC call on loopback)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import autotrace
from autotrace import propagation
from autotrace.context import TENANT_BAGGAGE_KEY, tenant_from_baggage
from tests import grpc_services as svc

_TENANT = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,30}", fullmatch=True)
#: Baggage text as a service holds it: any UTF-8 text, without the blanks a W3C reader strips.
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=16).map(str.strip)
_ENTRIES = st.dictionaries(_TEXT.filter(lambda k: k and k != TENANT_BAGGAGE_KEY), _TEXT, max_size=8)
_FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _context(trace_id: int, span_id: int, flags: int, entries: dict[str, str]) -> Context:
    span = NonRecordingSpan(SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(flags)))
    context = set_span_in_context(span, Context())
    for key, value in entries.items():
        context = baggage.set_baggage(key, value, context=context)
    return context


@_FAST
@given(st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1), st.integers(0, 255), _ENTRIES,
       st.none() | _TENANT, st.booleans())
def test_inject_then_extract_gives_back_the_context_the_tenant_and_the_baggage(
        trace_id: int, span_id: int, flags: int, entries: dict[str, str], tenant: str | None, pairs: bool) -> None:
    context = _context(trace_id, span_id, flags, entries)
    if tenant is None:
        carrier = propagation.inject({}, context)
    else:
        with autotrace.tenant(tenant):
            carrier = propagation.inject({}, context, send_tenant=True)
    got = propagation.extract(list(carrier.items()) if pairs else carrier)
    remote = trace.get_current_span(got).get_span_context()
    assert (remote.trace_id, remote.span_id, int(remote.trace_flags), remote.is_remote) == \
        (trace_id, span_id, flags & 1, True)  # only the sampled bit, by default
    assert tenant_from_baggage(got) == tenant
    assert {k: v for k, v in baggage.get_all(got).items() if k != TENANT_BAGGAGE_KEY} == entries


#: Text as a hostile or odd caller may send it: percent-escapes (broken ones too), separators,
#: properties, blanks, quotes, non-ASCII and control characters.
_HEADER_TEXT = st.text("%0123456789abcdefABCDEF=;,+ \t\"\\kv.\u00e9\u00ff\x00\x7f", max_size=40)


@_FAST
@given(st.lists(_HEADER_TEXT, max_size=3))
@example(["k=a%2Cb;p=1", "k=%ff", "+=1,x=a+b"])
def test_forwarding_what_was_extracted_reads_the_same_again(headers: list[str]) -> None:
    first = propagation.extract([("baggage", header) for header in headers])
    read = {k: v for k, v in baggage.get_all(first).items() if k}  # an empty key is never sent on
    forwarded = propagation.inject({}, first, send_tenant=False)
    again = dict(baggage.get_all(propagation.extract(forwarded)))
    assert again == {k: v for k, v in read.items() if k != TENANT_BAGGAGE_KEY}
    assert all(isinstance(v, str) and v == v.strip() for v in read.values())


_HEX = st.text("0123456789abcdef", min_size=1, max_size=40)
_PARENT = st.one_of(
    st.builds(lambda t, s, f: f"00-{t:032x}-{s:016x}-{f:02x}", st.integers(1, 2**128 - 1),
              st.integers(1, 2**64 - 1), st.integers(0, 255)),
    st.builds("-".join, st.lists(_HEX, min_size=1, max_size=5)),
    st.text(max_size=60),
)
_NAMES = st.sampled_from(["traceparent", "Traceparent", "TRACEPARENT", "tracestate", "TraceState", "baggage",
                          "Baggage", "grpc-timeout", "x-other", "traceparent-bin"])


def _joins_alone(value: str) -> bool:
    """Whether ``value``, the one traceparent of a request, names a parent (OTel's reading of the
    format; a comma is two headers joined)."""
    read = TraceContextTextMapPropagator().extract({"traceparent": value})
    return "," not in value and trace.get_current_span(read).get_span_context().is_valid


@_FAST
@given(st.lists(st.tuples(_NAMES, _PARENT | _HEADER_TEXT, st.booleans()), max_size=6))
@example([("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", True),
          ("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", False)])
def test_header_lists_with_repeats_join_a_trace_only_for_one_well_formed_traceparent(
        headers: list[tuple[str, str, bool]]) -> None:
    """gRPC metadata and ASGI headers: ``(name, value)`` pairs, the value ``str`` or (``as_bytes``)
    latin-1 ``bytes``, in any case and order; several ``traceparent`` pairs have no valid one."""
    pairs = [(name, value.encode("latin-1", "replace") if as_bytes else value) for name, value, as_bytes in headers]
    got = propagation.extract(pairs)
    remote = trace.get_current_span(got).get_span_context()
    parents = [value for name, value, _ in headers if name.lower() == "traceparent"]
    joined = len(parents) == 1 and _joins_alone(parents[0].encode("latin-1", "replace").decode("latin-1"))
    assert remote.is_valid == joined
    if joined:
        assert f"{remote.trace_id:032x}" == parents[0].strip(" \t").split("-")[1]
    if len(parents) == 1 and re.fullmatch(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}", parents[0]):
        assert joined  # one well-formed header
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in baggage.get_all(got).items())


@_FAST
@given(st.lists(st.tuples(st.sampled_from(["baggage", "Baggage", "BAGGAGE"]),
                          st.dictionaries(st.sampled_from("abc"), st.sampled_from(["1", "x%20y", "a%2Bb"]),
                                          min_size=1, max_size=3)), min_size=1, max_size=4))
def test_repeated_baggage_headers_are_one_list_where_a_later_entry_wins(
        headers: list[tuple[str, dict[str, str]]]) -> None:
    pairs = [(name, ",".join(f"{k}={v}" for k, v in entries.items())) for name, entries in headers]
    expected: dict[str, str] = {}
    for _, entries in headers:
        expected.update({k: v.replace("%20", " ").replace("%2B", "+") for k, v in entries.items()})
    assert dict(baggage.get_all(propagation.extract(pairs))) == expected


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


@pytest.mark.parametrize("value", ["caf\ud800", _Unprintable()])
def test_an_entry_inject_cannot_write_is_left_out_not_the_whole_header(value: Any) -> None:
    """Before: ``inject`` raised (``UnicodeEncodeError`` for a lone surrogate), losing the traceparent
    and the tenant of every outgoing call made with that baggage."""
    context = baggage.set_baggage("bad", value, context=_context(5, 6, 1, {"user": "alice"}))
    with autotrace.tenant("acme"):
        carrier = propagation.inject({}, context, send_tenant=True)
    assert carrier == {"traceparent": f"00-{5:032x}-{6:016x}-01", "baggage": "user=alice,autotrace.tenant=acme"}
    assert autotrace.stats()["propagation_baggage_dropped"] == 1


@pytest.fixture
def recorder() -> Iterator[svc.MetadataRecorder]:
    server = svc.MetadataRecorder()
    yield server
    server.server.stop(0)


def test_a_grpc_call_with_an_unwritable_baggage_entry_still_carries_its_trace_and_tenant(
        tmp_path: Any, recorder: svc.MetadataRecorder) -> None:
    """Before: the interceptor's ``inject`` failed (counted as an internal failure) and the call went
    with no traceparent and no tenant: the next service dropped its spans as tenant-less."""
    traced = svc.install(tmp_path)
    from opentelemetry import context as otel_context

    token = otel_context.attach(baggage.set_baggage("note", "caf\ud800"))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{recorder.port}") as channel, autotrace.tenant("acme"):
            channel.unary_unary(svc.RECORDED_METHOD, **svc.CLIENT_KW)({})
    finally:
        otel_context.detach(token)
    (seen,) = [dict(pairs) for pairs in recorder.seen]
    (client,) = traced.records()
    assert seen["baggage"] == "autotrace.tenant=acme"
    assert seen["traceparent"] == f"00-{client['trace_id']}-{client['id']}-01"
