"""Critique of review 17's times on the wire: a completion start time given as no time since 1970
(a bool, an unset 0, a negative number, NaN) is left out, counted, as ``otlp_encode`` leaves out such
a span time, instead of reaching Langfuse as a first token in 1970 (a time to first token of minus
fifty-odd years in its latency figures); a real time in the same batch is sent."""

from __future__ import annotations

import json
import math
import time

from opentelemetry import trace

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import Traced, install_default_tenant


def test_a_completion_start_time_that_is_no_time_since_1970_is_left_out(rx: OtlpReceiver) -> None:
    install_default_tenant(rx, "wire")
    given = {"true": True, "false": False, "zero": 0, "zero_float": 0.0, "negative": -5, "nan": math.nan,
             "seconds": 1_741_064_767.25}
    for name, value in given.items():
        with autotrace.start_generation(name, model="m") as gen:
            gen.update(completion_start_time=value)
    assert autotrace.flush(10)
    sent = {span.name: span.attributes.get("langfuse.observation.completion_start_time")
            for span in rx.wait_for_spans(len(given))}
    assert {name: value and json.loads(value) for name, value in sent.items()} == {
        **dict.fromkeys(given, None), "seconds": "2025-03-04T05:06:07.250000+00:00"}
    assert autotrace.stats()["completion_start_time_invalid"] == len(given) - 1


def test_a_span_ended_at_no_time_loses_nothing_of_its_local_store_batch(traced: Traced) -> None:
    """A span ended at NaN (``span.end(end_time=...)`` given one) was written as a NULL ``end_ns``: the
    NOT NULL constraint failed the store's whole batch, retried and lost; now it is stored, ended when
    it started, with the spans sent with it, and a float time as its integer."""
    with autotrace.start_span("before"):
        pass
    floats: dict[str, float] = {}
    for name, end in (("ended_at_nan", math.nan), ("ended_at_infinity", math.inf), ("ended_beyond_64_bits", 2**64),
                      ("ended_at_a_float", None)):
        span = trace.get_tracer("third.party").start_span(name)
        end = floats[name] = time.time_ns() + 1e6 if end is None else end
        span.end(end_time=end)  # type: ignore[arg-type]
    with autotrace.start_span("after"):
        pass
    store = autotrace.local_store()
    assert store is not None and autotrace.flush(10)
    rows = {name: (start, end) for name, start, end in store._rows("SELECT name, start_ns, end_ns FROM observations")}
    assert sorted(rows) == ["after", "before", "ended_at_a_float", "ended_at_infinity", "ended_at_nan",
                            "ended_beyond_64_bits"]
    assert all(type(start) is int and type(end) is int for start, end in rows.values())
    assert [rows[name][1] - rows[name][0] for name in ("ended_at_nan", "ended_at_infinity", "ended_beyond_64_bits")] \
        == [0, 0, 0]
    assert rows["ended_at_a_float"][1] == int(floats["ended_at_a_float"])
