"""Light observation spans: same ids, parents, sampling and export as SDK spans, and the SDK path
whenever the tracer provider has a processor besides autotrace's."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import autotrace
from autotrace import bounds, runtime, schema
from autotrace.observation import Observation, ObservationType, settled_attributes
from autotrace.spans import ObservationSpan, ObservationTracer
from tests.helpers import Traced, isolated_env, shape

REMOTE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REMOTE_SPAN = "00f067aa0ba902b7"


class Recorder(SpanProcessor):
    """A relay stand-in that keeps what it is handed."""

    def __init__(self) -> None:
        self.started: list[Any] = []
        self.ended: list[Any] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append(span)

    def on_end(self, span: Any) -> None:
        self.ended.append(span)


def _under_remote_parent(flags: str) -> object:
    carrier = {"traceparent": f"00-{REMOTE_TRACE}-{REMOTE_SPAN}-{flags}"}
    return otel_context.attach(TraceContextTextMapPropagator().extract(carrier))


def test_other_instrumentation_nests_under_a_light_span_and_the_tree_is_exported(traced: Traced) -> None:
    with autotrace.start_agent("agent") as agent:
        assert isinstance(agent.span, ObservationSpan)
        agent_context = agent.span.get_span_context()
        with trace.get_tracer("third.party").start_as_current_span("http GET") as foreign:
            assert isinstance(foreign, SdkSpan)
            assert foreign.get_span_context().trace_id == agent_context.trace_id
            assert foreign.parent.span_id == agent_context.span_id
            with autotrace.start_tool("lookup", arguments={"q": "x"}) as tool:
                assert tool.span.parent.span_id == foreign.get_span_context().span_id
                tool.set_output({"hits": 1})
    records = traced.records()
    assert shape(records) == [("agent", "agent", [("span", "http GET", [("tool", "lookup", [])])])]
    assert {r["trace_id"] for r in records} == {format(agent_context.trace_id, "032x")}
    lookup = next(r for r in records if r["name"] == "lookup")
    assert lookup["input"] == {"q": "x"} and lookup["output"] == {"hits": 1}


def test_an_error_on_a_light_span_is_exported_like_an_sdk_one(traced: Traced) -> None:
    with pytest.raises(ValueError, match="boom"), autotrace.start_tool("fails"):
        raise ValueError("boom")
    (record,) = traced.records()
    assert record["level"] == "ERROR" and record["error"] is True
    assert record["status_message"] == "ValueError: boom"
    (event,) = record["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "ValueError"
    assert event["attributes"]["exception.message"] == "boom"
    assert "raise ValueError" in event["attributes"]["exception.stacktrace"]


def test_a_sampled_remote_parent_is_joined(traced: Traced) -> None:
    token = _under_remote_parent("01")
    try:
        with autotrace.start_span("handler") as span:
            assert span.trace_id == REMOTE_TRACE
    finally:
        otel_context.detach(token)
    (record,) = traced.records()
    assert record["trace_id"] == REMOTE_TRACE and record["parent_id"] == REMOTE_SPAN


def test_an_unsampled_remote_parent_leaves_observations_unrecorded(traced: Traced) -> None:
    token = _under_remote_parent("00")
    try:
        with autotrace.start_span("not-sampled") as span:
            assert not span.span.is_recording()
            span.set_output("ignored")
    finally:
        otel_context.detach(token)
    with autotrace.start_span("sampled"):
        pass
    assert [r["name"] for r in traced.records()] == ["sampled"]


@autotrace.observe(as_type="evaluator", name="judged")
def _judge(answer: str, target: autotrace.Observation) -> float:
    return 1.0


def test_scores_on_an_unsampled_trace_are_dropped_with_it(traced: Traced) -> None:
    token = _under_remote_parent("00")
    try:
        with autotrace.start_generation("not-sampled") as gen:
            gen.score("quality", 0.5)  # on the handle
            autotrace.score("helpful", True)  # on the current observation
            _judge("answer", gen)  # an evaluator's result
    finally:
        otel_context.detach(token)
    with autotrace.start_generation("sampled") as gen:
        gen.score("quality", 0.9)
    assert autotrace.flush(5)
    (record,) = traced.records()
    scores = autotrace.local_store().scores(record["trace_id"])
    assert [(s["name"], s["value"], s["observation_id"]) for s in scores] == [("quality", 0.9, record["id"])]
    assert autotrace.local_store().scores(REMOTE_TRACE) == []
    assert autotrace.stats()["scores_dropped.unsampled"] == 3


_SAMPLED_APP = textwrap.dedent("""
    import json, sqlite3, sys
    import autotrace

    autotrace.install(local_store="on", local_store_path=sys.argv[1], export_interval=0.05)
    for turn in range(200):
        with autotrace.tenant("acme"), autotrace.start_chain("turn") as chain:
            with autotrace.start_tool("lookup", arguments={"turn": turn}) as tool:
                tool.set_output("found")
            chain.score("quality", 1.0)
    assert autotrace.flush(10)
    db = sqlite3.connect(sys.argv[1])
    shapes = db.execute("select trace_id, group_concat(type || ':' || name) from "
                        "(select * from observations order by type) group by trace_id").fetchall()
    scored = db.execute("select count(distinct trace_id) from scores").fetchone()[0]
    print(json.dumps({"shapes": sorted({s for _, s in shapes}), "traces": len(shapes), "scored": scored,
                      "unsampled_scores": autotrace.stats().get("scores_dropped.unsampled", 0)}))
""")


def test_the_standard_sampler_variables_keep_or_drop_whole_traces(tmp_path: Path) -> None:
    """autotrace's own provider reads OTEL_TRACES_SAMPLER: a trace is kept or dropped whole, and
    its scores with it."""
    env = isolated_env(tmp_path)
    env.update(AUTOTRACE_HOME=str(tmp_path), OTEL_TRACES_SAMPLER="parentbased_traceidratio",
               OTEL_TRACES_SAMPLER_ARG="0.5")
    child = subprocess.run([sys.executable, "-c", _SAMPLED_APP, str(tmp_path / "t.db")], capture_output=True,
                           text=True, env=env, timeout=120)
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    assert result["shapes"] == ["chain:turn,tool:lookup"]  # no trace is kept in part
    assert 50 <= result["traces"] <= 150  # half of 200, give or take seven standard deviations
    assert result["scored"] == result["traces"] and result["unsampled_scores"] == 200 - result["traces"]


def test_the_providers_sampler_decides() -> None:
    relay = Recorder()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(relay)
    span = ObservationTracer(provider, relay, "test").start_span("dropped")
    assert not span.is_recording() and not span.get_span_context().trace_flags.sampled
    span.end()
    assert relay.started == [] and relay.ended == []

    provider = TracerProvider(sampler=TraceIdRatioBased(1.0))
    provider.add_span_processor(relay)
    span = ObservationTracer(provider, relay, "test").start_span("kept", attributes={"k": "v"})
    assert isinstance(span, ObservationSpan) and span.get_span_context().trace_flags.sampled
    span.end()
    assert relay.started == [span] and relay.ended == [span]
    assert span.attributes == {"k": "v"} and not span.is_recording()


def test_a_light_span_is_read_like_a_finished_sdk_span() -> None:
    relay = Recorder()
    provider = TracerProvider()
    provider.add_span_processor(relay)
    span = ObservationTracer(provider, relay, "test").start_span("step", start_time=1_000)
    span.set_attribute("a", 1)
    span.set_attributes({"b": "two"})
    span.add_event("note", {"n": 1}, timestamp=1_500)
    span.update_name("renamed")
    span.set_status(trace.StatusCode.ERROR, "bad")
    span.end(2_000)
    span.end(3_000)  # ends once
    span.set_attribute("late", True)  # ignored once ended
    (ended,) = relay.ended
    assert ended is span and span.end_time == 2_000 and span.start_time == 1_000
    assert span.name == "renamed" and span.attributes == {"a": 1, "b": "two"}
    assert [(e.name, dict(e.attributes), e.timestamp) for e in span.events] == [("note", {"n": 1}, 1_500)]
    assert span.status.status_code is trace.StatusCode.ERROR and span.status.description == "bad"
    assert span.resource is provider.resource and span.instrumentation_scope.name == "autotrace"
    assert (span.dropped_attributes, span.dropped_events, span.dropped_links) == (0, 0, 0)


def test_another_processor_on_the_provider_switches_to_sdk_spans() -> None:
    relay = Recorder()
    provider = TracerProvider()
    provider.add_span_processor(relay)
    tracer = ObservationTracer(provider, relay, "test")
    assert isinstance(tracer.start_span("light"), ObservationSpan)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # the application's own exporter
    span = tracer.start_span("sdk")
    assert isinstance(span, SdkSpan)
    span.end()
    assert [s.name for s in exporter.get_finished_spans()] == ["sdk"]
    assert isinstance(relay.ended[-1], ReadableSpan) and relay.ended[-1].name == "sdk"


def test_a_failing_light_path_falls_back_to_the_sdk_span(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Any:
        raise AttributeError("a provider of another shape")

    monkeypatch.setattr("autotrace.spans._sample", broken)
    relay = Recorder()
    provider = TracerProvider()
    provider.add_span_processor(relay)
    span = ObservationTracer(provider, relay, "test").start_span("still-traced")
    assert isinstance(span, SdkSpan) and span.is_recording()
    span.end()
    assert [s.name for s in relay.ended] == ["still-traced"]
    assert autotrace.stats()["internal_errors.light_span"] == 1


def test_a_light_span_bounds_its_attributes_and_events_like_the_sdk() -> None:
    relay = Recorder()
    provider = TracerProvider()
    provider.add_span_processor(relay)
    span = ObservationTracer(provider, relay, "test").start_span("busy")
    for i in range(200):
        span.set_attribute(f"k{i}", i)
        span.add_event(f"e{i}")
    span.set_attributes({f"m{i}": i for i in range(10)})
    span.set_attribute("k0", "updated")  # an existing key still changes
    span.end()
    assert len(span.attributes) == 128 and span.attributes["k0"] == "updated" and "k128" not in span.attributes
    assert len(span.events) == 128 and span.events[-1].name == "e127"
    stats = autotrace.stats()
    assert stats["attributes_dropped"] == 72 + 10 and stats["events_dropped"] == 72


def _waiting(span: ObservationSpan) -> dict[str, Any]:
    """The fields an ended observation's span holds until the pipeline builds its attributes."""
    build, (_, fields, _) = span.settling
    assert build is settled_attributes
    return fields


def test_an_observation_hands_its_fields_over_with_its_content_already_serialised() -> None:
    """A light span's attributes are built on the pipeline thread (``settle``), but its content is
    serialised when the observation ends: the caller's data changing afterwards changes nothing."""
    relay = Recorder()
    provider = TracerProvider()
    provider.add_span_processor(relay)
    span = ObservationTracer(provider, relay, "test").start_span("answer")
    obs = Observation(span, ObservationType.GENERATION, "answer")
    messages = [{"role": "user", "content": "first"}]
    obs.update(model="m", input=messages, metadata={"k": "v"})
    obs.set_output({"role": "assistant", "content": "ok"})
    computed: list[str] = []
    obs.defer(lambda: computed.append("at the end") or {"response_model": "m-1", "usage": {"input": 3, "output": 4}})
    obs.end()
    messages[0]["content"] = "changed"
    assert computed == ["at the end"]  # the library's objects are read on the caller's thread
    assert relay.ended == [span] and span.attributes == {}  # the attributes are not built there
    plain = _waiting(span).values()  # what waits in the queue: no containers the collector visits
    assert all(type(value) in (str, int) or (type(value) is dict and not gc.is_tracked(value)) for value in plain)
    span.settle()
    attrs = dict(span.attributes)
    assert json.loads(attrs.pop(schema.OBS_INPUT)) == [{"role": "user", "content": "first"}]
    assert json.loads(attrs.pop(schema.OBS_OUTPUT)) == {"role": "assistant", "content": "ok"}
    assert json.loads(attrs.pop(schema.OBS_USAGE)) == {"input": 3, "output": 4}
    assert attrs == {schema.OBS_TYPE: "generation", schema.GEN_AI_REQUEST_MODEL: "m", schema.OBS_MODEL: "m-1",
                     schema.GEN_AI_RESPONSE_MODEL: "m-1",
                     schema.GEN_AI_INPUT_TOKENS: 3, schema.GEN_AI_OUTPUT_TOKENS: 4,
                     schema.GEN_AI_OPERATION: "chat", f"{schema.OBS_METADATA}.k": '"v"'}
    assert obs.fields["input"] == [{"role": "user", "content": "changed"}]  # the user's view is left alone
    span.settle()  # once
    assert len(span.attributes) == len(attrs) + 3 and computed == ["at the end"]


def _usage_from(text: bytes, calls: list[bytes]) -> dict[str, Any]:
    calls.append(text)
    return {"usage": json.loads(text), "model": "never-used"}


@pytest.mark.parametrize("light", [True, False], ids=["light-span", "sdk-span"])
def test_late_fields_are_computed_on_the_pipeline_thread_from_plain_values(light: bool) -> None:
    """``defer(..., late=True)`` computes its fields when the attributes are built: on the pipeline
    thread for a light span (the span waits with the function and its bytes only), at once for
    an SDK span; they never replace a field already set."""
    relay = Recorder()
    provider = TracerProvider()
    provider.add_span_processor(relay)
    if not light:
        provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    span = ObservationTracer(provider, relay, "test").start_span("answer")
    obs = Observation(span, ObservationType.GENERATION, "answer")
    calls: list[bytes] = []
    obs.update(model="m")
    obs.defer(_usage_from, b'{"input": 3, "output": 4}', calls, late=True)
    obs.end()
    if light:
        assert calls == [] and span.attributes == {}
        span.settle()
    assert calls == [b'{"input": 3, "output": 4}']
    assert json.loads(span.attributes[schema.OBS_USAGE]) == {"input": 3, "output": 4}
    assert span.attributes[schema.GEN_AI_INPUT_TOKENS] == 3 and span.attributes[schema.OBS_MODEL] == "m"


def test_a_span_whose_attributes_cannot_be_built_is_still_exported(traced: Traced,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Any:
        raise ValueError("an unexpected field")

    monkeypatch.setattr("autotrace.schema.observation_attributes", broken)
    with autotrace.start_tool("lookup", arguments={"q": 1}), trace.get_tracer("t").start_as_current_span("child"):
        pass
    records = traced.records()
    assert shape(records) == [("span", "lookup", [("span", "child", [])])]  # typed from what it has
    assert autotrace.stats()["internal_errors.finish"] == 1


def test_content_over_the_limit_is_cut_before_it_waits_in_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """An observation's content is bounded when it ends, not only when its attributes are built: a
    span waiting in the queue holds no more than the limit plus the redaction margin, and is cut
    at the limit once redacted."""
    monkeypatch.setattr(runtime.state, "max_value_bytes", 1024)
    relay = Recorder()
    provider = TracerProvider()
    provider.add_span_processor(relay)
    span = ObservationTracer(provider, relay, "test").start_span("fetch")
    obs = Observation(span, ObservationType.TOOL, "fetch")
    obs.update(arguments={"url": "x" * 4000})
    obs.set_output("y" * 100_000)
    obs.end()
    waiting = _waiting(span)
    held = 1024 + bounds.REDACTION_MARGIN + len(bounds.HELD_MARK.encode())
    for key in ("arguments", "output"):
        assert len(waiting[key].encode()) <= held and waiting[key].endswith(bounds.HELD_MARK)
    span.settle()
    attrs = dict(span.attributes)
    assert attrs[schema.OBS_INPUT] == waiting["arguments"] and attrs[schema.OBS_OUTPUT] == waiting["output"]
    schema.cut_values(attrs, 1024)  # as the pipeline does once it has redacted them
    for key in (schema.OBS_INPUT, schema.OBS_OUTPUT):
        assert len(attrs[key].encode()) <= 1024 and attrs[key].endswith("…[truncated]")
        assert not attrs[key].endswith(bounds.HELD_MARK)
    assert autotrace.stats()["attributes_truncated"] == 2  # counted once, when cut at the limit
