"""Export review 4, encoding: attribute values of a ``str`` subclass (a str-valued Enum member, as
instrumentations pass them) go out as their text, as OpenTelemetry's own exporter sends them, not as
what ``str()`` makes of them (``Kind.LLM``)."""

from __future__ import annotations

import enum

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_default_tenant
from tests.test_otlp_encode import _Collect, _same_as_reference


class Kind(str, enum.Enum):  # noqa: UP042  # as libraries older than StrEnum declare them: str() is "Kind.LLM"
    LLM = "LLM"


class Level(enum.IntEnum):
    HIGH = 3


def test_str_valued_enum_members_are_encoded_as_their_text_as_opentelemetry_does() -> None:
    collect = _Collect()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(collect))
    with provider.get_tracer("lib").start_as_current_span("step") as span:
        span.set_attributes({"kind": Kind.LLM, "kinds": [Kind.LLM, Kind.LLM], "level": Level.HIGH})
    request = _same_as_reference(collect.spans)  # old code: "Kind.LLM" where OpenTelemetry sends "LLM"
    values = {a.key: a.value for a in request.resource_spans[0].scope_spans[0].spans[0].attributes}
    assert values["kind"].string_value == "LLM"
    assert [item.string_value for item in values["kinds"].array_value.values] == ["LLM", "LLM"]
    assert values["level"].int_value == 3


def test_another_librarys_enum_valued_span_kind_reaches_langfuse_as_its_text() -> None:
    """``openinference.span.kind`` set to the Enum member itself: Langfuse reads the text ``LLM``."""
    with OtlpReceiver() as rx:
        install_default_tenant(rx, "enum")
        with trace.get_tracer("other.lib").start_as_current_span(
                "theirs", attributes={"openinference.span.kind": Kind.LLM, "tags": [Kind.LLM]}):
            pass
        assert autotrace.flush(10)
        [span] = rx.wait_for_spans(1)
    assert (span.attributes["openinference.span.kind"], span.attributes["tags"]) == ("LLM", ["LLM"])
