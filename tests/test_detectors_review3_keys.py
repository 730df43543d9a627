"""Detector review: a value whose key names a secret (an attribute ``password``, a captured header
``http.request.header.authorization``, a metadata key ``api_key``, a mapping's ``clientSecret``) is
one whatever it holds: where the detectors find nothing in it (``Token 9944b0...``, ``hunter22``) it
is replaced whole; what they found stays as they wrote it (``Bearer <BEARER_TOKEN>``)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace

import autotrace
from autotrace.export.redaction import Redactor
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant

TOKEN = "Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"


def test_attributes_whose_key_names_a_secret_are_replaced_whole() -> None:
    attributes = {
        "password": "hunter22hunter", "db.password": "correct horse battery staple",
        "http.request.header.authorization": (TOKEN,), "http.request.header.x-api-key": ["k3y-abcdef"],
        "http.request.header.cookie": ("session=0123456789abcdef",), "langfuse.observation.metadata.api_key": "abcdef",
        "oauth.access_token": "ya29.a0AfH6SMB", "app.clientSecret": "s3cr3t-value",
        "http.request.header.proxy-authorization": "Bearer abcdef0123456789",  # the detectors' own kind stays
    }
    redacted, report = Redactor().redact_attributes(attributes, "span")
    assert redacted == {
        "password": "<API_KEY>", "db.password": "<API_KEY>", "http.request.header.authorization": ("<API_KEY>",),
        "http.request.header.x-api-key": ["<API_KEY>"], "http.request.header.cookie": ("<API_KEY>",),
        "langfuse.observation.metadata.api_key": "<API_KEY>", "oauth.access_token": "<API_KEY>",
        "app.clientSecret": "<API_KEY>", "http.request.header.proxy-authorization": "Bearer <BEARER_TOKEN>",
    }
    assert report.replacements == 9


@pytest.mark.parametrize(("key", "value"), [
    ("gen_ai.request.max_tokens", "256"), ("llm.token_count.total", "1234567"), ("tokens", "hello world"),
    ("tokenizer.eos_token", "</s>"), ("model.pad_token", "<pad>"),  # shorter than any secret
    ("secret_name", "prod-db-credentials"), ("password_hint", "your pet's name"), ("http.request.header.accept", "*/*"),
    ("password", ""), ("password", "<API_KEY>"), ("password", 12345678),
])
def test_other_keys_and_short_or_other_values_stay(key: str, value: Any) -> None:
    redacted, report = Redactor().redact_attributes({key: value}, "span")
    assert redacted == {key: value} and report.replacements == 0


def test_a_mappings_items_are_redacted_by_their_key_at_any_depth() -> None:
    value = {"password": "hunter22hunter", "user": "bob", "headers": {"Authorization": TOKEN, "Accept": "*/*"},
             "tokens": ["a", "b"], "config": [{"clientSecret": "s3cr3t-value", "max_tokens": 256}]}
    assert Redactor().redact_value("langfuse.observation.input", value, "span") == {
        "password": "<API_KEY>", "user": "bob", "headers": {"Authorization": "<API_KEY>", "Accept": "*/*"},
        "tokens": ["a", "b"], "config": [{"clientSecret": "<API_KEY>", "max_tokens": 256}]}


def test_only_the_api_key_detector_replaces_by_key_and_hooks_see_the_result() -> None:
    assert Redactor(detectors=["EMAIL"]).redact_attributes({"password": "hunter22hunter"}, "span")[0] == {
        "password": "hunter22hunter"}
    seen: list[tuple[str, Any]] = []

    def hook(key: str, value: Any, span_type: str) -> Any:
        seen.append((key, value))
        return value

    redacted, _ = Redactor(detectors=["API_KEY"], hooks=[hook]).redact_attributes({"password": "hunter22hunter"}, "span")
    assert redacted == {"password": "<API_KEY>"} and seen == [("password", "<API_KEY>")]


def test_secrets_under_their_keys_never_reach_the_exporter(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    with autotrace.tenant("t"), trace.get_tracer("third.party").start_as_current_span("GET") as span:
        span.set_attribute("http.request.header.authorization", [TOKEN])
        span.set_attribute("db.password", "hunter22hunter")
        span.set_attribute("http.request.header.accept", ["*/*"])
    assert autotrace.flush(5)
    (received,) = rx.wait_for_spans(1)
    payload = b"".join(r.body for r in rx.requests)
    assert b"9944b09199c62bcf" not in payload and b"hunter22" not in payload
    assert received.attributes["http.request.header.authorization"] == ["<API_KEY>"]
    assert received.attributes["db.password"] == "<API_KEY>"
    assert received.attributes["http.request.header.accept"] == ["*/*"]
