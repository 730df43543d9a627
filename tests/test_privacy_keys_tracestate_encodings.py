"""PII in attribute keys, in the W3C trace state, and written in encodings that
hid it from the detectors (URL-encoded or escaped "@", digits of other scripts, escaped digits in
JSON text), end to end through a loopback OTLP receiver and the local store; and each span's
tenant when contexts cross requests, tasks and threads."""

from __future__ import annotations

import asyncio
import contextvars
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import Link

import autotrace
from autotrace import propagation
from autotrace.export.credentials import Credentials
from autotrace.export.detectors import _TRIGGER_HINTS, _encoded_at, redact_text
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant

EMAIL, CARD = "alice.private@example.com", "4111111111111111"
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
WIDE, ARABIC = 0xFF10, 0x0660  # where full-width and Arabic-Indic digits start


def _digits(text: str, zero: int) -> str:
    """``text`` with its ASCII digits written in another script."""
    return "".join(chr(zero + int(char)) if char.isdigit() else char for char in text)


def _payload(rx: OtlpReceiver) -> bytes:
    return b"".join(r.body for r in rx.requests)


def _stored(path: Path) -> bytes:
    """Every row of every table of the local store, as text."""
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute("select name from sqlite_master where type='table'")]
        return repr([list(db.execute(f"select * from {table}")) for table in tables]).encode()


def test_attribute_keys_are_redacted_on_spans_events_links_and_in_the_local_store(
        rx: OtlpReceiver, tmp_path: Path) -> None:
    install_one_tenant(rx, local_store="on", local_store_path=tmp_path / "db.sqlite")
    with autotrace.tenant("t"), autotrace.trace_attributes(metadata={EMAIL: "vip"}):
        with autotrace.start_span("own", metadata={EMAIL: {"card": CARD}, "plain": 1}):
            pass
        with trace.get_tracer("third.party").start_as_current_span("tp") as span:
            span.set_attribute(f"order.{CARD}", "paid")
            span.add_event("lookup", {EMAIL: "found"})
        with trace.get_tracer("third.party").start_as_current_span("linked",
                                                                  links=[Link(span.get_span_context(), {EMAIL: 1})]):
            pass
    assert autotrace.flush(5)
    spans = {s.name: s for s in rx.wait_for_spans(3)}
    assert EMAIL.encode() not in _payload(rx) and CARD.encode() not in _payload(rx)
    assert EMAIL.encode() not in _stored(tmp_path / "db.sqlite") and CARD.encode() not in _stored(tmp_path / "db.sqlite")
    own = spans["own"].attributes
    assert own["langfuse.observation.metadata.<EMAIL>"] == '{"card":"<CREDIT_CARD>"}'
    assert own["langfuse.observation.metadata.plain"] == "1"
    assert own["langfuse.trace.metadata.<EMAIL>"] == '"vip"'
    assert spans["tp"].attributes["order.<CREDIT_CARD>"] == "paid"
    assert spans["tp"].events[0] == {"name": "lookup", "attributes": {"<EMAIL>": "found"}}
    assert spans["linked"].links[0]["attributes"] == {"<EMAIL>": 1}
    assert autotrace.stats()["redactions"] >= 6


def test_trace_state_values_from_an_incoming_request_are_redacted(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    incoming = propagation.extract({"traceparent": PARENT, "tracestate": f"app={EMAIL},pay={CARD},vendor=ok"})
    token = otel_context.attach(incoming)
    try:
        with autotrace.tenant("t"), autotrace.start_span("own"):
            with trace.get_tracer("third.party").start_as_current_span("tp"):
                pass
    finally:
        otel_context.detach(token)
    assert autotrace.flush(5)
    assert len(rx.wait_for_spans(2)) == 2
    assert EMAIL.encode() not in _payload(rx) and CARD.encode() not in _payload(rx)
    states = set()
    for request in rx.requests:
        message = ExportTraceServiceRequest.FromString(request.body)
        states |= {span.trace_state for rs in message.resource_spans for ss in rs.scope_spans for span in ss.spans}
    assert states == {"app=<EMAIL>,pay=<CREDIT_CARD>,vendor=ok"}


@pytest.mark.parametrize(("text", "expected"), [
    ("GET https://crm.test/users?email=alice.private%40example.com&page=2", "GET https://crm.test/users?email=<EMAIL>&page=2"),
    ('{"to": "alice\\u0040example.com"}', '{"to": "<EMAIL>"}'),
    ("ref s-4111111111111111", "ref s-<CREDIT_CARD>"),
    ("card-4111 1111 1111 1111 ok", "card-<CREDIT_CARD> ok"),
    ("order.4111111111111111", "order.<CREDIT_CARD>"),
    (_digits("card 4111111111111111", ARABIC), "card <CREDIT_CARD>"),  # Luhn on the digits' values
    (_digits("card 5555555555554444", WIDE), "card <CREDIT_CARD>"),
    (json.dumps({"c": _digits("カード 4111 1111 1111 1111", WIDE)}), '{"c": "\\u30ab\\u30fc\\u30c9 <CREDIT_CARD>"}'),
    (json.dumps({"c": _digits("4111111111111111", ARABIC)}), '{"c": "<CREDIT_CARD>"}'),
])
def test_values_in_encodings_that_hid_them_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", [
    "balance -4111111111111111", "100%40 done", "1-4111111111111111",
    "0.4111111111111111", " .4111111111111111", "v1.4111111111111111",  # decimals
    json.dumps({"c": _digits("価格 420 円", WIDE)}), json.dumps({"c": _digits("1234567890123", ARABIC)}),
])
def test_near_misses_in_those_encodings_stay_as_they_were(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize("text", ["a%40b", "x \\u0040 y", "%", "\\", "%4", "\\u004", "plain"])
def test_the_encoded_at_check_is_the_substring_test_of_its_hints(text: str) -> None:
    assert _encoded_at(text) == any(hint in text for hint in _TRIGGER_HINTS[-2:])
    assert _TRIGGER_HINTS[-2:] == ("%40", "\\u0040")


def test_an_instrumentations_ascii_json_and_url_are_redacted_end_to_end(rx: OtlpReceiver) -> None:
    """Most instrumentations serialise with ``json.dumps`` (``ensure_ascii``) and record URLs."""
    install_one_tenant(rx)
    messages = [{"role": "user", "content": _digits("カード番号は 4111 1111 1111 1111 です", WIDE)}]
    with autotrace.tenant("t"), trace.get_tracer("third.party").start_as_current_span("chat") as span:
        span.set_attribute("llm.prompts", json.dumps(messages))
        span.set_attribute("http.url", "https://crm.test/u?email=alice.private%40example.com")
    assert autotrace.flush(5)
    (received,) = rx.wait_for_spans(1)
    assert b"\\uff14\\uff11" not in _payload(rx) and b"alice.private" not in _payload(rx)
    assert json.loads(received.attributes["llm.prompts"]) == [
        {"role": "user", "content": "カード番号は <CREDIT_CARD> です"}]
    assert received.attributes["http.url"] == "https://crm.test/u?email=<EMAIL>"


def test_each_span_keeps_the_tenant_of_its_own_context(tmp_path: Path) -> None:
    """A remote parent's baggage never chooses the tenant (untrusted by default); a task keeps the
    tenant it was started under after its request ended; work in a pool thread without the
    context is dropped; a child takes its own tenant under a tenantless parent (which is dropped)."""
    with OtlpReceiver() as rx_a, OtlpReceiver() as rx_b:
        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                          credentials={"A": Credentials("pk-a", "sk-a", host=rx_a.endpoint),
                                       "B": Credentials("pk-b", "sk-b", host=rx_b.endpoint)})
        token = otel_context.attach(propagation.extract({"traceparent": PARENT, "baggage": "autotrace.tenant=B"}))
        try:
            with autotrace.tenant("A"), autotrace.start_span("under-remote-B"):
                pass
        finally:
            otel_context.detach(token)

        async def requests() -> None:
            go = asyncio.Event()

            async def later() -> None:
                await go.wait()
                with autotrace.start_span("task-after-request"):
                    pass

            with autotrace.tenant("A"), autotrace.start_span("request-A"):
                task = asyncio.create_task(later())
            with autotrace.tenant("B"):
                go.set()
                await task

        asyncio.run(requests())
        with ThreadPoolExecutor(1) as pool, autotrace.tenant("A"), autotrace.start_span("request-A2"):
            pool.submit(lambda: autotrace.start_span("pool-without-context").end()).result()
            pool.submit(contextvars.copy_context().run, lambda: autotrace.start_span("pool-with-context").end()).result()
        with autotrace.start_span("tenantless-parent"), autotrace.tenant("B"), autotrace.start_span("child-B"):
            pass
        assert autotrace.flush(5)
        assert sorted(s.name for s in rx_a.wait_for_spans(5)) == [
            "pool-with-context", "request-A", "request-A2", "task-after-request", "under-remote-B"]
        assert [s.name for s in rx_b.wait_for_spans(1)] == ["child-B"]
        assert autotrace.stats()["spans_dropped.no_tenant"] == 2
