"""What reaches Langfuse over the wire: scores carry their trace's environment, and a span ended at a
time that is not an integer of nanoseconds neither loses itself nor the batch it is sent in."""

from __future__ import annotations

import datetime as dt
import json
import time

from opentelemetry import trace

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_default_tenant


def _score_environments(rx: OtlpReceiver, n: int) -> dict[str, str | None]:
    assert autotrace.flush(10)
    deadline = time.monotonic() + 5
    while len(rx.scores) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return {body["name"]: body.get("environment") for _, body in rx.scores}


def test_a_score_goes_to_the_environment_of_the_trace_it_scores(rx: OtlpReceiver) -> None:
    install_default_tenant(rx, "wire", environment="production")
    with autotrace.trace_attributes(environment="staging"):
        with autotrace.start_generation("answer", model="m") as gen:
            gen.score("by_handle", 1.0)
            autotrace.score("current", 0.5)
            autotrace.score("by_id", 0.2, trace_id=gen.trace_id, observation_id=gen.id)
    gen.score("handle_after_the_block", True)  # the trace and the scope have ended
    with autotrace.start_span("elsewhere") as other:
        other.score("other_trace", "fine")
        autotrace.score("id_of_a_trace_not_current", 0.1, trace_id=gen.trace_id)
    environments = _score_environments(rx, 6)
    assert environments == {
        "by_handle": "staging", "current": "staging", "by_id": "staging", "handle_after_the_block": "staging",
        "other_trace": "production", "id_of_a_trace_not_current": "production",
    }
    spans = {span.name: span.attributes["langfuse.environment"] for span in rx.wait_for_spans(2)}
    assert spans == {"answer": "staging", "elsewhere": "production"}


def test_an_evaluators_score_goes_to_the_environment_of_what_it_evaluated(rx: OtlpReceiver) -> None:
    install_default_tenant(rx, "wire", environment="production")

    @autotrace.observe(name="relevance", as_type="evaluator")
    def relevance(obs: autotrace.Observation) -> float:
        return 0.75

    with autotrace.trace_attributes(environment="staging"):
        with autotrace.start_generation("answer", model="m") as gen:
            pass
    relevance(gen)  # run later, outside the trace's block
    assert _score_environments(rx, 1) == {"relevance": "staging"}


def test_a_span_ended_at_a_float_time_is_sent_with_the_rest_of_its_batch(rx: OtlpReceiver) -> None:
    install_default_tenant(rx, "wire")
    with autotrace.start_span("before"):
        pass
    gen = autotrace.start_generation("ended_at_a_float", model="m")
    end = time.time_ns() + 0.5
    gen.end(end)
    sdk_span = trace.get_tracer("third.party").start_span("third_party")
    sdk_span.end(end_time=float(time.time_ns()))
    with autotrace.start_span("after"):
        pass
    assert autotrace.flush(10)
    spans = {span.name: span for span in rx.wait_for_spans(4)}
    assert sorted(spans) == ["after", "before", "ended_at_a_float", "third_party"]
    assert spans["ended_at_a_float"].end_time_unix_nano == int(end)
    for span in spans.values():
        assert 0 < span.start_time_unix_nano <= span.end_time_unix_nano
    assert autotrace.stats().get("export_failures", 0) == 0


def test_a_completion_start_time_in_seconds_milliseconds_or_iso_text_is_sent_as_that_instant(rx: OtlpReceiver) -> None:
    install_default_tenant(rx, "wire")
    instant = dt.datetime(2025, 3, 4, 5, 6, 7, 250000, tzinfo=dt.UTC)
    given = {
        "seconds": instant.timestamp(),  # time.time()
        "milliseconds": int(instant.timestamp() * 1000),
        "nanoseconds": int(instant.timestamp()) * 10**9 + 250_000_000,
        "iso_text": "2025-03-04T05:06:07.25Z",
        "iso_text_with_offset": "2025-03-04T07:06:07.250+02:00",
    }
    for name, value in given.items():
        with autotrace.start_generation(name, model="m") as gen:
            gen.update(completion_start_time=value)
    assert autotrace.flush(10)
    sent = {span.name: json.loads(span.attributes["langfuse.observation.completion_start_time"])
            for span in rx.wait_for_spans(len(given))}
    assert sent == dict.fromkeys(given, "2025-03-04T05:06:07.250000+00:00")
    assert "completion_start_time_invalid" not in autotrace.stats()


def test_a_score_carries_the_time_it_was_given_not_the_time_it_is_sent(rx: OtlpReceiver) -> None:
    rx.fail_scores_with(503, times=1)  # sent again, later, after a backoff
    install_default_tenant(rx, "wire")
    with autotrace.start_span("scored") as span:
        before = dt.datetime.now(dt.UTC)
        span.score("quality", 0.9)
        after = dt.datetime.now(dt.UTC)
    assert autotrace.flush(10)
    [(_, body)] = rx.scores
    given = dt.datetime.fromisoformat(body["timestamp"])
    assert given.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(microseconds=1) <= given <= after
