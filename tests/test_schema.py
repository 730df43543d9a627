"""The schema: size limits, the attribute cap, metadata encoding, and working beside a user's provider."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import autotrace
from autotrace import bounds, schema
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import Traced


def test_values_over_the_limit_are_truncated_and_counted(tmp_path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05,
                      max_value_bytes=1024)
    with autotrace.start_generation("big", input="é" * 5000, model="m") as gen:
        gen.set_output({"text": "x" * 10})
    (record,) = Traced(tmp_path / "t.db").records()
    assert isinstance(record["input"], str) and record["input"].endswith("…[truncated]")
    assert len(record["input"].encode()) <= 1024
    assert record["output"] == {"text": "x" * 10}
    assert autotrace.stats()["attributes_truncated"] == 1


def test_a_third_party_span_attribute_over_the_limit_is_truncated_before_export() -> None:
    """Attributes set straight on a span (by another instrumentation or the user) skip the
    observation's own truncation; the pipeline caps them, and leaves short ones alone."""
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-a", secret_key="sk-lf-a",
                          unknown_tenant="default", integrations=(), export_interval=0.05, max_value_bytes=1024)
        with trace.get_tracer("third.party").start_as_current_span("raw") as span:
            span.set_attribute("big", "y" * 5000)
            span.set_attribute("small", "z" * 200)
            span.set_attribute("number", 7)
        assert autotrace.flush(5)
        (exported,) = rx.wait_for_spans(1)
    big = exported.attributes["big"]
    assert big.endswith("…[truncated]") and len(big.encode()) <= 1024
    assert exported.attributes["small"] == "z" * 200 and exported.attributes["number"] == 7
    assert autotrace.stats()["attributes_truncated"] == 1


def test_a_long_attribute_set_on_an_autotrace_span_is_truncated_before_export() -> None:
    """An observation's own values are cut when it ends, so the pipeline skips its size scan for
    them; a long value set on the observation's span through the OpenTelemetry API (one at a
    time or in bulk) still brings it back."""
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-a", secret_key="sk-lf-a",
                          unknown_tenant="default", integrations=(), export_interval=0.05, max_value_bytes=1024)
        with autotrace.start_span("one") as one:
            one.span.set_attribute("big", "y" * 5000)
        with autotrace.start_span("bulk") as bulk:
            bulk.span.set_attributes({"small": "z" * 200, "big": "y" * 5000})
        with autotrace.start_span("short") as short:
            short.span.set_attributes({"small": "z" * 200})
            short.set_output("o" * 5000)
        assert autotrace.flush(5)
        spans = {span.name: span for span in rx.wait_for_spans(3)}
    for name in ("one", "bulk"):
        big = spans[name].attributes["big"]
        assert big.endswith("…[truncated]") and len(big.encode()) <= 1024, name
    assert spans["bulk"].attributes["small"] == "z" * 200 and spans["short"].attributes["small"] == "z" * 200
    output = spans["short"].attributes["langfuse.observation.output"]
    assert output.endswith("…[truncated]") and len(output.encode()) <= 1024
    assert autotrace.stats()["attributes_truncated"] == 3


def test_never_more_than_128_attributes() -> None:
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-a", secret_key="sk-lf-a",
                          unknown_tenant="default", integrations=(), export_interval=0.05)
        with autotrace.start_span("wide", metadata={f"k{i}": i for i in range(300)}):
            pass
        assert autotrace.flush(5)
        (span,) = rx.wait_for_spans(1)
    assert len(span.attributes) <= 128
    assert span.attributes["langfuse.observation.metadata.k0"] == "0"
    assert autotrace.stats()["attributes_dropped"] > 0


def test_metadata_values_are_json_encoded_like_the_langfuse_sdk() -> None:
    attrs = schema.observation_attributes("span", {"metadata": {"s": "text", "n": 3, "d": {"a": [1]}}}, 65536)
    assert attrs["langfuse.observation.metadata.s"] == '"text"'
    assert attrs["langfuse.observation.metadata.n"] == "3"
    assert json.loads(attrs["langfuse.observation.metadata.d"]) == {"a": [1]}
    assert attrs["langfuse.observation.type"] == "span"


def test_works_alongside_the_users_own_tracer_provider(tmp_path) -> None:
    exporter = InMemorySpanExporter()
    user_provider = TracerProvider()
    user_provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = trace._TRACER_PROVIDER  # this test owns the global slot for a moment
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE._done = False
    trace.set_tracer_provider(user_provider)
    try:
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05)
        with autotrace.start_tool("lookup", arguments={"q": 1}):
            with trace.get_tracer("user.code").start_as_current_span("user-span"):
                pass
        records = Traced(tmp_path / "t.db").records()
        assert sorted(r["name"] for r in records) == ["lookup", "user-span"]
        assert sorted(s.name for s in exporter.get_finished_spans()) == ["lookup", "user-span"]
        lookup = next(s for s in exporter.get_finished_spans() if s.name == "lookup")  # an SDK span, typed
        assert lookup.attributes["langfuse.observation.type"] == "tool"
        assert json.loads(lookup.attributes["langfuse.observation.input"]) == {"q": 1}
    finally:
        autotrace.uninstall()
        trace._TRACER_PROVIDER = previous


def test_prompt_from_a_langfuse_prompt_object(traced: Traced) -> None:
    from langfuse.api import Prompt_Text
    from langfuse.model import TextPromptClient

    def client(fallback: bool) -> TextPromptClient:
        return TextPromptClient(Prompt_Text(prompt="Answer {{q}}", name="support-answer", version=7, config={},
                                            labels=["production"], tags=[]), is_fallback=fallback)

    with autotrace.start_generation("managed", prompt=client(False)):
        pass
    with autotrace.start_generation("fallback", prompt=client(True)):  # a local fallback is no version
        pass
    by_name = {r["name"]: r for r in traced.records()}
    assert by_name["managed"]["prompt"] == {"name": "support-answer", "version": 7}
    assert by_name["fallback"]["prompt"] is None


def test_a_prompt_version_that_is_no_integer_leaves_the_rest_of_the_generation_recorded(traced: Traced) -> None:
    for name, version in (("label", "latest"), ("text", "3"), ("huge", 2**70), ("flag", True)):
        with autotrace.start_generation(name, model="m", prompt={"name": "support", "version": version}) as gen:
            gen.set_output("ok")
    by_name = {r["name"]: (r["type"], r["output"], r["prompt"]) for r in traced.records()}
    assert by_name == {"label": ("generation", "ok", {"name": "support", "version": None}),
                       "text": ("generation", "ok", {"name": "support", "version": 3}),
                       "huge": ("generation", "ok", {"name": "support", "version": None}),
                       "flag": ("generation", "ok", {"name": "support", "version": None})}
    assert autotrace.stats()["prompt_versions_invalid"] == 3  # left out, counted


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for this object")


def test_values_whose_str_raises_are_serialised_by_their_default_repr(traced: Traced) -> None:
    with autotrace.start_span("odd", input={"item": _Unprintable(), "n": 1}) as span:
        span.set_output(_Unprintable())
    (record,) = traced.records()
    assert record["input"]["n"] == 1 and record["input"]["item"].startswith("<tests.test_schema._Unprintable object at")
    assert record["output"].startswith("<tests.test_schema._Unprintable object at")


def test_usage_drops_none_counts_and_leaves_the_recorded_dict_alone() -> None:
    attrs = schema.observation_attributes("generation", {"usage": {"input": 3, "output": None, "total": 3}}, 1 << 20)
    assert json.loads(attrs[schema.OBS_USAGE]) == {"input": 3, "total": 3}
    assert attrs[schema.GEN_AI_INPUT_TOKENS] == 3 and schema.GEN_AI_OUTPUT_TOKENS not in attrs
    clean = {"input": 3, "output": 1, "total": 4}
    attrs = schema.observation_attributes("generation", {"usage": clean}, 1 << 20)
    assert json.loads(attrs[schema.OBS_USAGE]) == clean == {"input": 3, "output": 1, "total": 4}
    assert (attrs[schema.GEN_AI_INPUT_TOKENS], attrs[schema.GEN_AI_OUTPUT_TOKENS]) == (3, 1)


def test_every_field_of_an_observation_is_cut_to_the_limit(tmp_path) -> None:
    """Not only input and output: a model name, usage or provider over the limit is cut too (an
    observation's own span is not scanned again in the pipeline)."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05,
                      max_value_bytes=1024)
    many_counts = {f"tokens_of_kind_{i}": i for i in range(200)}  # usage details beyond the limit
    with autotrace.start_generation("long", model="m" * 5000, usage={"input": 1, **many_counts},
                                    provider="p" * 5000):
        pass
    (record,) = Traced(tmp_path / "t.db").records()
    assert record["model"].startswith("m" * 100) and len(record["model"].encode()) <= 1024
    assert record["metadata"]["provider"].startswith('"' + "p" * 100)  # cut JSON text
    assert len(record["metadata"]["provider"].encode()) <= 1024
    assert isinstance(record["usage"], str) and len(record["usage"].encode()) <= 1024  # cut JSON stays text
    assert autotrace.stats()["attributes_truncated"] == 5  # model (2 keys), usage, provider (2 keys)


@pytest.mark.parametrize("piece", ["ab ", "é", "😀", 'q"\\\n'])
def test_a_growing_text_held_in_bounded_pieces_is_cut_and_marked_as_the_whole_text(piece: str) -> None:
    """After every piece, what ``keep_piece`` holds exports (plain, or inside JSON) exactly as the
    whole text would: cut at the same byte and marked, or whole while it fits."""
    held: list[str] = []
    whole = ""
    for _ in range(600):
        bounds.keep_piece(held, piece, 256)
        whole += piece
        assert len(held) < bounds.JOIN_PIECES_AT and len(held[0]) <= 256 + bounds.REDACTION_MARGIN + 1
        text = "".join(held)
        assert bounds.truncate(text, 256) == bounds.truncate(whole, 256)
        assert (bounds.truncate(schema.serialize_io({"content": text}), 256)
                == bounds.truncate(schema.serialize_io({"content": whole}), 256))


def test_odd_usage_values_and_start_times_leave_the_rest_of_the_generation_recorded(traced: Traced) -> None:
    with autotrace.start_generation("strings", model="m", usage={"input": "3", "output": 4.0, "total": "x"}) as gen:
        gen.set_output("ok")
    with autotrace.start_generation("bad-start", model="m", usage={"input": 1, "output": 2}) as gen:
        gen.update(completion_start_time="not a time")
        gen.set_output("ok")
    by_name = {r["name"]: r for r in traced.records()}
    assert by_name["strings"]["usage"] == {"input": 3, "output": 4, "total": 7}  # the bad total is left out
    assert (by_name["strings"]["type"], by_name["strings"]["output"]) == ("generation", "ok")
    assert by_name["bad-start"]["usage"] == {"input": 1, "output": 2, "total": 3}
    assert by_name["bad-start"]["completion_start_time"] is None and by_name["bad-start"]["output"] == "ok"
    stats = autotrace.stats()
    assert (stats["usage_values_invalid"], stats["completion_start_time_invalid"]) == (1, 1)
    assert not any(k.startswith(("export_failures", "internal_errors")) for k in stats)


def test_token_counts_of_another_library_given_as_text_are_read(traced: Traced) -> None:
    from opentelemetry import trace

    with autotrace.start_chain("turn"):
        with trace.get_tracer("other.library").start_as_current_span("chat gpt-4o") as span:
            span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": "3",
                                 "gen_ai.usage.output_tokens": 4})
    by_name = {r["name"]: r for r in traced.records()}
    assert by_name["chat gpt-4o"]["usage"] == {"input": 3, "output": 4, "total": 7}
