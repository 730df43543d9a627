"""Review 19 of two edges of secrets found by their names: an assignment in a query string
(``?access_token=...&page=2``) took every parameter after it (a URL's page, limit, state...) with the
token; and bytes under a key that names a secret (``secret``, ``db.password``) were exported as they
were, though a text there is replaced whole."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace

import autotrace
from autotrace.export.detectors import redact_text
from autotrace.export.redaction import Redactor
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant


@pytest.mark.parametrize(("text", "expected"), [
    ("https://app/cb?access_token=abcdef123456&page=2&limit=50", "https://app/cb?access_token=<API_KEY>&page=2&limit=50"),
    ("GET /v1?api_key=abcdef123456&email=jane%40example.com", "GET /v1?api_key=<API_KEY>&email=<EMAIL>"),
    ("?token=abcdef123456&secret=xyz987654&x=1", "?token=<API_KEY>&secret=<API_KEY>&x=1"),
    ("secret=abcdef123456&amp;page=2", "secret=<API_KEY>&amp;page=2"),  # as HTML writes a query string
    (json.dumps({"url": "https://x/?token=abcdef123456&next=3"}), '{"url": "https://x/?token=<API_KEY>&next=3"}'),
])
def test_a_query_strings_secret_ends_before_the_next_parameter(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, expected.count("<"))


@pytest.mark.parametrize(("text", "expected"), [
    ("password=Hunter&22 next", "password=<API_KEY> next"),  # an "&" in a password: no parameter after it
    ("token=abc&x=1 next", "token=<API_KEY> next"),  # fewer than 6 characters before it: as before, whole
])
def test_an_ampersand_in_a_value_that_starts_no_parameter_stays_in_it(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


def test_bytes_under_a_key_naming_a_secret_are_replaced_whole() -> None:
    attributes = {"secret": b"hunter22horse", "db.password": bytearray(b"S3cr3t!x"), "api_key": [b"abcdef123456", b"x"],
                  "payload": b"hunter22horse", "token": b"short"}
    redacted, report = Redactor().redact_attributes(attributes, "span")
    assert redacted == {"secret": b"<API_KEY>", "db.password": b"<API_KEY>", "api_key": [b"<API_KEY>", b"x"],
                        "payload": b"hunter22horse", "token": b"short"}
    assert report.replacements == 3


def test_a_secret_as_bytes_is_not_exported(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    with autotrace.tenant("t"), trace.get_tracer("some.db.lib").start_as_current_span("connect") as span:
        span.set_attribute("db.password", b"S3cr3t-passw0rd")
        span.set_attribute("url.full", "https://api.example.com/v1/items?api_key=abcdef123456&page=2")
    assert autotrace.flush(5)
    (exported,) = rx.wait_for_spans(1)
    assert exported.attributes["db.password"] == b"<API_KEY>"
    assert exported.attributes["url.full"] == "https://api.example.com/v1/items?api_key=<API_KEY>&page=2"
    assert b"S3cr3t-passw0rd" not in b"".join(r.body for r in rx.requests)
