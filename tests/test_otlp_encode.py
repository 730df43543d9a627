"""autotrace's OTLP protobuf writer against OpenTelemetry's own encoder: for the same spans, the
two requests must decode to equal messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as reference
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

import autotrace
from autotrace.export.otlp_encode import encode_spans
from autotrace.export.pipeline import SpanPipeline


def _same_as_reference(spans: Sequence[Any]) -> ExportTraceServiceRequest:
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    assert ours == reference(spans)
    return ours


class _Collect(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def _provider(service: str, collect: _Collect) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service, "replicas": 3}))
    provider.add_span_processor(SimpleSpanProcessor(collect))
    return provider


def test_sdk_spans_of_two_resources_and_scopes_with_every_field() -> None:
    collect = _Collect()
    tracer = _provider("agent", collect).get_tracer("agent.lib", "1.2.3", schema_url="https://schema/1",
                                                    attributes={"scope.flag": True})
    other = _provider("rag", collect).get_tracer("rag.lib")
    remote = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True,
                         trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "v1"), ("other", "x")]))
    token = context.attach(trace.set_span_in_context(trace.NonRecordingSpan(remote)))
    try:
        with tracer.start_as_current_span("root", kind=SpanKind.SERVER,
                                          links=[Link(remote, {"link.reason": "retry"})]) as root:
            root.set_attributes({"s": "text ünïcode", "b": False, "i": -42, "zero": 0, "big": 2**62, "f": 0.25,
                                 "strings": ["a", "b"], "ints": [1, -2], "bools": [True, False], "empty": [],
                                 "floats": (1.5, -0.0)})
            root.add_event("checkpoint", {"step": 2, "ok": True}, timestamp=1_700_000_000_000_000_000)
            with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
                child.set_status(Status(StatusCode.ERROR, "upstream failed"))
                child.record_exception(ValueError("bad"))
            with other.start_as_current_span("elsewhere", kind=SpanKind.PRODUCER):
                pass
    finally:
        context.detach(token)
    request = _same_as_reference(collect.spans)
    assert len(request.resource_spans) == 2 and len(collect.spans) == 3


def test_autotrace_light_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: list[Any] = []
    monkeypatch.setattr(SpanPipeline, "_finalize", lambda self, span: captured.append(span))
    autotrace.install(local_store="off", integrations=())
    with autotrace.start_chain("turn", input={"q": "where is my order"}) as chain:
        with autotrace.start_generation("llm", model="gpt-4o-mini") as generation:
            generation.update(usage={"input": 3, "output": 2}, cost=0.000012, output="ships today")
        with pytest.raises(RuntimeError), autotrace.start_tool("lookup", arguments={"id": 7}):
            raise RuntimeError("tool broke")
        chain.set_output("done")
    assert autotrace.flush(5)
    request = _same_as_reference(captured)
    assert [s.name for s in request.resource_spans[0].scope_spans[0].spans] == ["llm", "lookup", "turn"]


_SCALARS = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20), st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),  # beyond int64: left out by both
    st.floats(allow_nan=False), st.binary(max_size=8), st.none(),
)
_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=4), st.tuples(st.integers(-5, 5), st.text(max_size=3)),
                    st.dictionaries(st.text(max_size=5), _SCALARS, max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12), _VALUES,
                       max_size=8),
       st.text(max_size=10), st.sampled_from(list(SpanKind)), st.sampled_from(list(StatusCode)))
def test_any_attributes_name_kind_and_status(attributes: dict[str, Any], name: str, kind: SpanKind,
                                             code: StatusCode) -> None:
    span = ReadableSpan(
        name=name, kind=kind, attributes=attributes, status=Status(code, "why" if code is StatusCode.ERROR else None),
        context=SpanContext(1, 2, is_remote=False), parent=SpanContext(1, 3, is_remote=True),
        resource=Resource({"service.name": "svc"}), instrumentation_scope=InstrumentationScope("lib"),
        start_time=1, end_time=2,
    )
    _same_as_reference([span])


def test_text_that_is_not_unicode_is_sent_replaced() -> None:
    span = ReadableSpan(name="bad \ud800 name", attributes={"k": "v \udfff"}, context=SpanContext(1, 2, False),
                        resource=Resource({}), start_time=1, end_time=2)
    request = ExportTraceServiceRequest.FromString(encode_spans([span]))
    sent = request.resource_spans[0].scope_spans[0].spans[0]
    assert sent.name == "bad ? name" and sent.attributes[0].value.string_value == "v ?"
