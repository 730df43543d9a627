"""The pipeline's privacy guarantees at their edges: values of any type, texts that are not
attributes, spans at the attribute cap, values at the size limit, the tenant of each span, and no
old pipeline kept alive by a re-install. Against a loopback OTLP receiver."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import autotrace
from autotrace import bounds, schema
from autotrace.export.credentials import Credentials
from autotrace.export.pipeline import SpanPipeline
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant

EMAIL, CARD = "alice.private@example.com", "4111 1111 1111 1111"


def _payload(rx: OtlpReceiver) -> bytes:
    return b"".join(r.body for r in rx.requests)


def test_values_of_any_type_are_redacted_in_attributes_events_and_links(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    third_party = trace.get_tracer("third.party")
    with autotrace.tenant("t"):
        with third_party.start_as_current_span("rag.query") as span:
            span.set_attribute("request.body", {"user": {"email": EMAIL, "card": CARD}, EMAIL: 1})
            span.set_attribute("messages", [["user", f"my mail is {EMAIL}"]])
            span.set_attribute("raw", f"card={CARD} mail={EMAIL}".encode())
            span.set_attribute("binary", b"\xff\xfe" + EMAIL.encode())
            span.add_event("tool.call", {"args": {"email": EMAIL}})
        with third_party.start_as_current_span("linked", links=[Link(span.get_span_context(), {"for": EMAIL})]):
            pass
        with autotrace.start_span("own") as own:
            own.span.set_attribute("payload", {"email": EMAIL, "deep": [[[{"card": CARD}]]]})
            own.span.set_attribute("object", object())  # a value no detector can read: never exported
    assert autotrace.flush(5)
    spans = {s.name: s for s in rx.wait_for_spans(3)}
    payload = _payload(rx)
    assert EMAIL.encode() not in payload and CARD.encode() not in payload
    attrs = spans["rag.query"].attributes
    assert attrs["request.body"] == {"user": {"email": "<EMAIL>", "card": "<CREDIT_CARD>"}, "<EMAIL>": 1}
    assert attrs["messages"] == [["user", "my mail is <EMAIL>"]]
    assert attrs["raw"] == b"card=<CREDIT_CARD> mail=<EMAIL>" and attrs["binary"] == b"\xff\xfe<EMAIL>"
    assert spans["rag.query"].events[0]["attributes"] == {"args": {"email": "<EMAIL>"}}
    assert b"for <EMAIL>" not in payload and b"<EMAIL>" in payload
    assert spans["own"].attributes["payload"] == {"email": "<EMAIL>", "deep": [[[{"card": "<CREDIT_CARD>"}]]]}
    assert spans["own"].attributes["object"] == "<REDACTION_FAILED>"
    assert autotrace.stats()["redaction_unsupported_values"] == 1


def test_a_value_nested_past_the_bounds_is_replaced() -> None:
    from autotrace.export.redaction import FAILED, Redactor

    deep: Any = EMAIL
    for _ in range(20):
        deep = [deep]
    attrs, _ = Redactor().redact_attributes({"deep": deep, "wide": [EMAIL] * 20_000, "ok": [[EMAIL]]}, "span")
    assert attrs == {"deep": FAILED, "wide": FAILED, "ok": [["<EMAIL>"]]}


def test_hooks_see_span_and_event_names_status_messages_and_score_comments(rx: OtlpReceiver) -> None:
    secret = "Patient Jane Roe"
    seen: set[str] = set()

    def mask_names(key: str, value: object, span_type: str) -> object:
        seen.add(key)
        return value.replace(secret, "[NAME]") if isinstance(value, str) else value

    install_one_tenant(rx, redact=mask_names)
    with autotrace.tenant("t"):
        with trace.get_tracer("third.party").start_as_current_span(f"lookup {secret}") as span:
            span.add_event(f"cache miss for {secret}")
            span.set_status(Status(StatusCode.ERROR, f"no record for {secret}"))
        with autotrace.start_generation("g") as gen:
            gen.score("quality", 0.1, comment=f"wrong answer about {secret}")
    assert autotrace.flush(5)
    spans = {s.name: s for s in rx.wait_for_spans(2)}
    assert secret.encode() not in _payload(rx)
    assert spans["lookup [NAME]"].status_message == "no record for [NAME]"
    assert spans["lookup [NAME]"].events[0]["name"] == "cache miss for [NAME]"
    assert rx.scores[0][1]["comment"] == "wrong answer about [NAME]"
    assert {"span.name", "event.name", "status.message", "score.comment"} <= seen


def test_a_hook_that_raises_on_names_and_comments_fails_closed(rx: OtlpReceiver) -> None:
    def broken(key: str, value: object, span_type: str) -> object:
        if key in ("span.name", "event.name", "status.message", "score.comment"):
            raise RuntimeError("hook bug")
        return value

    install_one_tenant(rx, redact=broken)
    with autotrace.tenant("t"):
        with trace.get_tracer("third.party").start_as_current_span("lookup Jane") as span:
            span.add_event("miss for Jane")
            span.set_status(Status(StatusCode.ERROR, "no record for Jane"))
        autotrace.score("quality", 0.1, trace_id=format(span.get_span_context().trace_id, "032x"),
                        comment="about Jane")
    assert autotrace.flush(5)
    (exported,) = rx.wait_for_spans(1)
    assert b"Jane" not in _payload(rx)
    assert exported.name == exported.status_message == exported.events[0]["name"] == "<REDACTION_FAILED>"
    assert rx.scores[0][1]["comment"] == "<REDACTION_FAILED>"
    assert autotrace.stats()["redaction_hook_failures"] == 4


@pytest.mark.parametrize("count", [127, 128, 200])
def test_a_span_at_the_attribute_cap_is_exported_with_its_type_and_tenant(rx: OtlpReceiver, count: int) -> None:
    install_one_tenant(rx, environment="prod", release="r1")
    with autotrace.tenant("t"), trace.get_tracer("third.party").start_as_current_span("wide") as span:
        for i in range(count):
            span.set_attribute(f"llm.input_messages.{i}.message.content", f"message {i}")
    assert autotrace.flush(5)
    (exported,) = rx.wait_for_spans(1)
    attrs = exported.attributes
    assert len(attrs) == schema.MAX_ATTRIBUTES
    assert attrs[schema.OBS_TYPE] == "span" and attrs[schema.TENANT] == "t"
    assert attrs[schema.ENVIRONMENT] == "prod" and attrs[schema.RELEASE] == "r1"
    stats = autotrace.stats()
    assert not [k for k in stats if k.startswith("spans_dropped")]
    assert stats["attributes_dropped"] == min(count, 128) + 4 - schema.MAX_ATTRIBUTES


def test_the_tenant_decided_at_start_is_kept_whatever_the_span_sets() -> None:
    """Neither the SDK evicting the oldest attributes of a full span nor code overwriting
    ``autotrace.tenant`` moves a span to another project."""
    with OtlpReceiver() as acme, OtlpReceiver() as default, OtlpReceiver() as other:
        autotrace.install(langfuse_host=default.endpoint, public_key="pk-default", secret_key="sk-default",
                          unknown_tenant="default", integrations=(), export_interval=0.05, credentials={
                              "acme": Credentials("pk-acme", "sk-acme", host=acme.endpoint),
                              "other": Credentials("pk-other", "sk-other", host=other.endpoint)})
        third_party = trace.get_tracer("some.instrumentation")
        with autotrace.tenant("acme"):
            with third_party.start_as_current_span("full") as span:
                for i in range(140):
                    span.set_attribute(f"llm.input_messages.{i}.message.content", f"acme message {i}")
                span.set_attribute(schema.OBS_TYPE, "generation")
            with third_party.start_as_current_span("overwritten") as span:
                span.set_attribute(schema.TENANT, "other")
            with autotrace.start_span("own") as own:
                own.span.set_attribute(schema.TENANT, "other")
        with third_party.start_as_current_span("tenantless") as span:  # claims a tenant it has not
            span.set_attribute(schema.TENANT, "other")
        assert autotrace.flush(5)
        assert sorted(s.name for s in acme.wait_for_spans(3)) == ["full", "overwritten", "own"]
        assert {s.attributes[schema.TENANT] for s in acme.spans} == {"acme"}
        (tenantless,) = default.wait_for_spans(1)
        assert tenantless.name == "tenantless" and schema.TENANT not in tenantless.attributes
        assert other.spans == []


@pytest.mark.parametrize("secret", [CARD, "jane.roe.private@example.com", "sk-proj-" + "A1b2C3d4E5f6G7h8J9k0" * 2,
                                    "DE89 3704 0044 0532 0130 00"])
@pytest.mark.parametrize("own", [False, True], ids=["third-party-span", "observation"])
def test_a_secret_straddling_the_size_limit_is_never_exported_even_partly(rx: OtlpReceiver, secret: str,
                                                                          own: bool) -> None:
    limit = 1024
    install_one_tenant(rx, max_value_bytes=limit)
    mark = "…[truncated]"
    values = {}
    for keep in range(1, len(secret), 3):  # the cut at the limit falls ``keep`` characters into it
        pad = limit - len(mark.encode()) - keep - 1
        values[f"v{keep}"] = "x" * pad + " " + secret + " and more text after it" * 4
    with autotrace.tenant("t"):
        if own:
            for key, value in values.items():
                with autotrace.start_tool(key, arguments=value):
                    pass
        else:
            with trace.get_tracer("third.party").start_as_current_span("s") as span:
                span.set_attributes(values)
    assert autotrace.flush(5)
    spans = rx.wait_for_spans(len(values) if own else 1)
    exported = ([s.attributes[schema.OBS_INPUT] for s in spans] if own
                else [spans[0].attributes[key] for key in values])
    for value in exported:
        assert len(value.encode()) <= limit and value.endswith(mark)
        assert secret[:6] not in value and secret[-6:] not in value, value[-60:]


def test_a_value_that_redaction_shortens_still_loses_the_part_it_held_past_the_limit(rx: OtlpReceiver) -> None:
    """Redaction can make a value cut past the limit shorter than the limit: the end it held, which
    may end in a partial secret, is still never exported."""
    limit = 1024
    install_one_tenant(rx, max_value_bytes=limit)
    emails = f"{EMAIL} " * 50
    filler = "x" * (limit + bounds.REDACTION_MARGIN - len(emails) - len(" 4111 1111"))
    text = emails + filler + " 4111 1111 1111 1111 and more"
    cut = text.encode()[:limit + bounds.REDACTION_MARGIN].decode()
    assert cut.endswith("4111 1111")  # held cut in the middle of the card number
    with autotrace.tenant("t"), trace.get_tracer("third.party").start_as_current_span("s") as span:
        span.set_attribute("value", text)
    assert autotrace.flush(5)
    (exported,) = rx.wait_for_spans(1)
    value = exported.attributes["value"]
    assert value.startswith("<EMAIL> <EMAIL>") and value.endswith("…[truncated]") and len(value.encode()) <= limit
    assert "4111" not in value


def _under_remote_parent(traceparent: str) -> object:
    return otel_context.attach(TraceContextTextMapPropagator().extract({"traceparent": traceparent}))


def test_requests_sharing_an_incoming_trace_id_keep_their_own_tenants() -> None:
    """Two requests carrying the same ``traceparent``, for tenant A (still running) then B: each
    local root takes its own request's tenant, and its children keep it."""
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with OtlpReceiver() as rx_a, OtlpReceiver() as rx_b:
        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05, credentials={
            "tenant-a": Credentials("pk-a", "sk-a", host=rx_a.endpoint),
            "tenant-b": Credentials("pk-b", "sk-b", host=rx_b.endpoint)})
        a_started, b_done = threading.Event(), threading.Event()

        def request(tenant: str) -> None:
            token = _under_remote_parent(incoming)
            try:
                with autotrace.tenant(tenant), autotrace.start_chain(f"request of {tenant}") as chain:
                    chain.set_input(f"private prompt of {tenant}")
                    with trace.get_tracer("third.party").start_as_current_span(f"db of {tenant}"):
                        pass
                    if tenant == "tenant-a":
                        a_started.set()
                        b_done.wait(5)
            finally:
                otel_context.detach(token)  # type: ignore[arg-type]

        thread = threading.Thread(target=request, args=("tenant-a",))
        thread.start()
        assert a_started.wait(5)
        request("tenant-b")
        b_done.set()
        thread.join()
        assert autotrace.flush(5)
        got_a, got_b = rx_a.wait_for_spans(2), rx_b.wait_for_spans(2)
    assert sorted(s.name for s in got_a) == ["db of tenant-a", "request of tenant-a"]
    assert sorted(s.name for s in got_b) == ["db of tenant-b", "request of tenant-b"]
    assert {s.trace_id for s in got_a + got_b} == {incoming.split("-")[1]}
    assert "tenant_mismatch" not in autotrace.stats()


def test_reinstalling_keeps_no_old_pipeline_alive(tmp_path) -> None:
    for i in range(5):
        autotrace.install(local_store="on", local_store_path=tmp_path / f"{i}.db", integrations=())
        with autotrace.start_span("s"):
            pass
        autotrace.uninstall(timeout=1)
    gc.collect()
    assert sum(isinstance(o, SpanPipeline) for o in gc.get_objects()) == 0
