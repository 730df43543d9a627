"""Structured values nested past ``bounds.MAX_VALUE_DEPTH`` were left as they were for the redactor
to replace whole; with redaction off (``redact=False``, ``AUTOTRACE_REDACT=none``) nothing did: a
text that deep was exported whole past the value size limit, and a value nested some thirty
levels made an OTLP request deeper than protobuf decoders take (100), so the receiver refused the
whole batch, every other span in it lost. Now ``cut_value`` (after redaction) cuts them there. And a
mapping that cannot be read (a closed ``shelve``), set on autotrace's own span through the
OpenTelemetry API, raised into the application's ``set_attribute``. Real pipeline, loopback OTLP
receiver (real protobuf decoding)."""

from __future__ import annotations

import shelve
from pathlib import Path
from typing import Any

from opentelemetry import trace

import autotrace
from autotrace.bounds import TRUNCATION_MARK
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant


def _nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = {"k": leaf}
    return leaf


def test_values_nested_past_the_depth_bound_are_cut_there_when_redaction_is_off(rx: OtlpReceiver) -> None:
    install_one_tenant(rx, max_value_bytes=1024, redact=False)
    with autotrace.tenant("t"):
        with trace.get_tracer("third.party").start_as_current_span("long-leaf") as span:
            span.set_attribute("v", _nested(12, "x" * 200_000))
        with autotrace.start_span("deep") as observation:
            observation.span.set_attribute("v", _nested(40, "leaf"))
        with autotrace.start_span("plain") as observation:
            observation.span.set_attribute("v", _nested(3, "kept"))
    assert autotrace.flush(10)
    exported = {span.name: span.attributes["v"] for span in rx.wait_for_spans(3)}
    cut = _nested(9, TRUNCATION_MARK)  # nine levels kept, the tenth replaced
    assert exported == {"long-leaf": cut, "deep": cut, "plain": _nested(3, "kept")}
    stats = autotrace.stats()
    assert stats["attribute_items_dropped"] == 2
    assert not any(key.startswith("spans_dropped") for key in stats)


def test_a_mapping_that_cannot_be_read_never_raises_into_set_attribute(rx: OtlpReceiver, tmp_path: Path) -> None:
    with shelve.open(str(tmp_path / "shelf")) as shelf:
        shelf["a"] = 1
    # closed: reading it now raises ValueError
    install_one_tenant(rx)
    with autotrace.tenant("t"), autotrace.start_span("s") as observation:
        observation.span.set_attribute("v", shelf)
        observation.span.set_attribute("after", "set")
    assert autotrace.flush(10)
    (span,) = rx.wait_for_spans(1)
    assert (span.attributes["v"], span.attributes["after"]) == (TRUNCATION_MARK, "set")
    assert autotrace.stats()["attribute_items_dropped"] == 1
