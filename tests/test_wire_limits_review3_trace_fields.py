"""What reaches Langfuse's OTLP endpoint for trace-level fields it limits, and for integers beyond
64 bits, read from the bytes a loopback receiver gets.

Langfuse refuses the record of a trace whose name is longer than 1,000 characters (a JavaScript
string's length: UTF-16 code units), and with it the trace's user, session, tags and metadata; it
names a trace after its root span (that span's ``gen_ai.tool.name``, else its name) when no
``langfuse.trace.name`` is set. A trace name set as a number is refused as well."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace

import autotrace
from autotrace.bounds import TRUNCATION_MARK
from autotrace.testing.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.helpers import install_default_tenant

TRACE_NAME = "langfuse.trace.name"


@pytest.fixture
def sent(rx: OtlpReceiver) -> Iterator[OtlpReceiver]:
    install_default_tenant(rx, "wire")
    yield rx


def _spans(rx: OtlpReceiver, n: int) -> dict[str, ReceivedSpan]:
    assert autotrace.flush(10.0)
    return {span.name[:20]: span for span in rx.wait_for_spans(n)}


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_a_trace_name_longer_than_langfuse_takes_is_cut_on_every_span_of_the_trace(sent: OtlpReceiver) -> None:
    """Before: the 1,500-character name went out as it was, on every span: Langfuse refused the
    trace's record, its user and tags with it."""
    with autotrace.trace_attributes(name="n" * 1500, user_id="u-1", tags=["vip"]):
        with autotrace.start_span("root"):
            with autotrace.start_span("child"):
                pass
    spans = _spans(sent, 2)
    cut = "n" * (1000 - len(TRUNCATION_MARK)) + TRUNCATION_MARK
    assert [(name, s.attributes[TRACE_NAME], s.attributes["user.id"], s.attributes["langfuse.trace.tags"])
            for name, s in sorted(spans.items())] == [("child", cut, "u-1", ["vip"]), ("root", cut, "u-1", ["vip"])]
    assert autotrace.stats()["trace_names_truncated"] == 2 and "attributes_truncated" not in autotrace.stats()


def test_a_root_span_named_longer_than_a_trace_name_may_be_names_its_trace_cut(sent: OtlpReceiver) -> None:
    """Langfuse names the trace after the root span: a name of 600 emoji is 1,200 UTF-16 units. The
    span keeps its whole name (an observation's name has no such limit); a child's name is not the
    trace's, and a root span with a name that fits gets no trace name."""
    long_name = "😀" * 600
    with autotrace.start_span(long_name):
        with autotrace.start_span("x" * 1200):
            pass
    with autotrace.start_span("short"):
        pass
    spans = _spans(sent, 3)
    root, child, short = spans["😀" * 20], spans["x" * 20], spans["short"]
    assert root.name == long_name and root.attributes[TRACE_NAME] == "😀" * 494 + TRUNCATION_MARK
    assert _units(root.attributes[TRACE_NAME]) == 1000
    assert TRACE_NAME not in child.attributes and child.name == "x" * 1200
    assert TRACE_NAME not in short.attributes and autotrace.stats()["trace_names_truncated"] == 1


def test_a_root_tool_named_longer_than_a_trace_name_may_be_names_its_trace_cut(sent: OtlpReceiver) -> None:
    """Langfuse takes a span's ``gen_ai.tool.name`` for its name, and the root's for the trace's."""
    with autotrace.start_tool("lookup", tool_name="t" * 1200):
        pass
    span = _spans(sent, 1)["lookup"]
    assert span.attributes["gen_ai.tool.name"] == "t" * 1200
    assert span.attributes[TRACE_NAME] == "t" * 988 + TRUNCATION_MARK


def test_trace_fields_langfuse_takes_only_as_text_are_sent_as_text(sent: OtlpReceiver) -> None:
    """A trace name or release given as a number (through ``trace_attributes`` or the OTel API)
    went out as an OTLP number, which Langfuse's schema refuses (the trace's record with it)."""
    with autotrace.trace_attributes(name=42, release=1.5):  # type: ignore[arg-type]
        with autotrace.start_span("api"):
            pass
    with trace.get_tracer("third.party").start_as_current_span("otel") as span:
        span.set_attribute(TRACE_NAME, 7)
        span.set_attribute("langfuse.release", 2)
        span.set_attribute("langfuse.version", True)
    spans = _spans(sent, 2)
    assert {name: (s.attributes[TRACE_NAME], s.attributes["langfuse.release"], s.attributes.get("langfuse.version"))
            for name, s in spans.items()} == {"api": ("42", "1.5", None), "otel": ("7", "2", "True")}


def test_usage_counts_beyond_64_bits_are_left_out_and_counted(sent: OtlpReceiver) -> None:
    """Before: a usage dict of integers only was taken as it was: a count of 2**64 went out in
    ``usage_details`` (more than Langfuse's 64-bit usage columns hold) and as
    ``gen_ai.usage.input_tokens``, an attribute OTLP cannot carry (dropped at encoding)."""
    with autotrace.start_generation("llm", model="m") as generation:
        generation.update(usage={"input": 2**64, "output": 5, "total": 2**63 - 1})
    span = _spans(sent, 1)["llm"]
    assert {k: v for k, v in span.attributes.items() if "usage" in k} == {
        "langfuse.observation.usage_details": '{"output": 5, "total": 9223372036854775807}',
        "gen_ai.usage.output_tokens": 5}
    stats = autotrace.stats()
    assert stats["usage_values_invalid"] == 1 and "attributes_dropped.unencodable" not in stats


def test_integers_beyond_what_javascript_holds_exactly_go_out_as_json_numbers(sent: OtlpReceiver) -> None:
    """Kept as JSON numbers, digit for digit (Langfuse keeps input, output and metadata values as
    the text sent); only OTLP attributes beyond 64 bits cannot be carried: left out, counted."""
    with autotrace.start_span("ids", input={"id": 2**53 + 1}, metadata={"big": 2**70}):
        trace.get_current_span().set_attribute("third.big", 2**64)
    span = _spans(sent, 1)["ids"]
    assert span.attributes["langfuse.observation.input"] == '{"id": 9007199254740993}'
    assert span.attributes["langfuse.observation.metadata.big"] == "1180591620717411303424"
    assert "third.big" not in span.attributes and autotrace.stats()["attributes_dropped.unencodable"] == 1


def test_a_dict_keyed_by_nan_keeps_its_structure(sent: OtlpReceiver) -> None:
    """``value_counts(dropna=False).to_dict()`` keys a count by NaN. Before: JSON has no NaN, so
    the encoder refused the key and the whole value went out as its Python repr, one string
    (counted as a serialisation fallback); now that key is written as its text."""
    counts = {float("nan"): 3, "a": 5, float("inf"): 1}
    with autotrace.start_span("counts", input=counts, metadata={"counts": counts}) as span:
        span.set_output([counts, float("nan")])
    attributes = _spans(sent, 1)["counts"].attributes
    assert attributes["langfuse.observation.input"] == '{"nan": 3, "a": 5, "inf": 1}'
    assert attributes["langfuse.observation.metadata.counts"] == '{"nan":3,"a":5,"inf":1}'
    assert attributes["langfuse.observation.output"] == '[{"nan": 3, "a": 5, "inf": 1}, null]'
    assert "serialization_fallbacks" not in autotrace.stats()


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")

    __repr__ = __str__


def test_trace_fields_and_metadata_keys_whose_text_raises_never_raise_into_the_application(sent: OtlpReceiver) -> None:
    """Before: ``trace_attributes`` raised the key's own error into the ``with`` (and ``start_span``
    the metadata key's): the block failed where untraced it would have run."""
    odd = _Unprintable()
    with autotrace.trace_attributes(name=odd, user_id=odd, metadata={odd: 1, "ok": 2}):  # type: ignore[arg-type]
        with autotrace.start_span("odd", metadata={odd: 3}):
            pass
    attributes = _spans(sent, 1)["odd"].attributes
    text = object.__repr__(odd)
    assert (attributes[TRACE_NAME], attributes["user.id"]) == (text, text)
    assert {k: v for k, v in attributes.items() if "metadata" in k} == {
        f"langfuse.trace.metadata.{text}": "1", "langfuse.trace.metadata.ok": "2",
        f"langfuse.observation.metadata.{text}": "3"}
