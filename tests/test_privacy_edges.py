"""Privacy at the edges the detectors and the pipeline first missed: secrets right after an escape
of JSON text, addresses in other scripts, PEM keys and Basic credentials; a span's resource and
scope attributes; exception texts and other texts beside the attributes at the size limit; and
attributes OTLP cannot carry, counted. Against a loopback OTLP receiver."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

import autotrace
from autotrace.export.otlp_encode import encode_spans
from autotrace.export.redaction import redact_text
from autotrace.install import _RELAY
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant

EMAIL, KEY = "alice.private@example.com", "sk-proj-AbCdEfGhIjKlMnOpQrStUv123456"


@pytest.mark.parametrize(("message", "secret", "placeholder"), [
    ("Contact:\njane@example.com", "jane@example.com", "<EMAIL>"),
    ("key:\nsk-proj-AbCdEfGhIjKlMnOp1234", "sk-proj-AbCd", "<API_KEY>"),
    ("aws\tAKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "<API_KEY>"),
    ("t:\neyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcDEF_12345", "eyJhbGci", "<JWT>"),
    ("gh\nghp_abcdefghijklmnopqrstuvwxyz0123", "ghp_", "<API_KEY>"),
    ("iban\nDE89370400440532013000", "DE8937", "<IBAN>"),
    ("ip\n10.1.2.3", "10.1.2.3", "<IP_ADDRESS>"),
    ("phone\r\n+1 415 555 0132", "415 555", "<PHONE>"),
])
def test_a_secret_right_after_an_escape_of_json_text_is_redacted_and_the_json_stays_valid(
        message: str, secret: str, placeholder: str) -> None:
    """A message serialised as JSON (an observation's input) writes a line break as ``\\n``: its
    letter used to hide the word boundary the detectors start at."""
    redacted, replaced = redact_text(json.dumps({"content": message}))
    content = json.loads(redacted)["content"]
    assert replaced == 1 and secret not in content and placeholder in content


@pytest.mark.parametrize(("text", "expected"), [
    ("mail josé.garcía@example.com now", "mail <EMAIL> now"),
    ("mail müller@beispiel.de", "mail <EMAIL>"),
    ("mail user@bücher.de.", "mail <EMAIL>."),
    (json.dumps("jos\u00e9@example.com"), '"<EMAIL>"'),  # JSON written with ensure_ascii
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic <BASIC_AUTH>"),
    ("sts ASIAIOSFODNN7EXAMPLE", "sts <API_KEY>"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA12+/\n-----END RSA PRIVATE KEY-----\nafter", "<PRIVATE_KEY>\nafter"),
    (json.dumps({"k": "-----BEGIN PRIVATE KEY-----\nMIIEvQIB\nADAN\n-----END PRIVATE KEY-----\n", "x": 1}),
     '{"k": "<PRIVATE_KEY>\\n", "x": 1}'),
    ("cut short -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB", "cut short <PRIVATE_KEY>"),
])
def test_addresses_in_other_scripts_private_keys_basic_credentials_and_sts_keys(text: str, expected: str) -> None:
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize("text", ["a basic idea", "Basic understanding of it", "the basic abcd1234 plan",
                                  "basic QUJDREVGR0g=", "mail user@localhost", "line\\nnothing else"])
def test_near_misses_of_the_new_shapes_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_resource_and_scope_attributes_are_redacted_before_export(rx: OtlpReceiver) -> None:
    """An application's own provider may carry a command line or an owner in its resource."""
    install_one_tenant(rx)
    provider = TracerProvider(resource=Resource.create({
        "service.name": "billing", "process.command_args": ["app", f"--api-key={KEY}"], "deployment.owner": EMAIL}))
    provider.add_span_processor(_RELAY)
    tracer = provider.get_tracer("some.lib", attributes={"scope.owner": EMAIL})
    with autotrace.tenant("t"):
        for _ in range(2):
            with tracer.start_as_current_span("call"):
                pass
    assert autotrace.flush(5)
    spans = rx.wait_for_spans(2)
    payload = b"".join(r.body for r in rx.requests)
    assert EMAIL.encode() not in payload and b"sk-proj-AbCd" not in payload
    assert spans[0].resource["deployment.owner"] == "<EMAIL>"
    assert spans[0].resource["process.command_args"] == ["app", "--api-key=<API_KEY>"]
    assert spans[0].resource["service.name"] == "billing" and spans[1].resource == spans[0].resource


def test_exception_texts_span_names_and_status_messages_are_bounded_and_redacted_whole(rx: OtlpReceiver) -> None:
    install_one_tenant(rx, max_value_bytes=2000)
    tracer = trace.get_tracer("third.party")
    near_the_cut = "x " * 995 + EMAIL  # straddles the limit: redacted before it is cut
    with autotrace.tenant("t"):
        with tracer.start_as_current_span(near_the_cut + " " + "n" * 50_000) as span:
            try:
                raise ValueError(near_the_cut + " " + "y" * 100_000)
            except ValueError as exc:
                span.record_exception(exc)
            span.add_event(near_the_cut, {"log": near_the_cut + "z" * 100_000})
            span.set_status(Status(StatusCode.ERROR, near_the_cut + "w" * 100_000))
    assert autotrace.flush(5)
    (received,) = rx.wait_for_spans(1)
    payload = b"".join(r.body for r in rx.requests)
    assert b"alice.private" not in payload and len(payload) < 20_000
    texts = [received.name, received.status_message, *(e["name"] for e in received.events)]
    texts += [v for e in received.events for v in e["attributes"].values() if isinstance(v, str)]
    assert all(len(text.encode()) <= 2000 for text in texts)
    assert autotrace.stats()["attributes_truncated"] == 5  # name, status, message, stack, log


def test_an_attribute_otlp_cannot_carry_is_left_out_and_counted() -> None:
    span = ReadableSpan(name="n", context=SpanContext(1, 2, False, TraceFlags(1)), resource=Resource.create({}),
                        attributes={"big": 2**70, "nested": {"n": 2**64}, "ok": 1}, start_time=1, end_time=2)
    assert b"ok" in encode_spans([span]) and b"big" not in encode_spans([span])
    assert autotrace.stats()["attributes_dropped.unencodable"] == 4
