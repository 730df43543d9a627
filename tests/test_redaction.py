"""Built-in PII detectors: positives, near-misses that must stay, JSON safety, hooks, fuzzing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotrace.export._digit_shape import COLON_GROUP as _COLON_GROUP
from autotrace.export._digit_shape import DIGIT_SHAPE as _DIGIT_SHAPE
from autotrace.export.detectors import (
    _DIGIT_PASS,
    _TEXT_PASSES,
    _TRIGGER_HINTS,
    _VALIDATORS,
    _contains_any,
    _has_digit_shape,
    redact_text,
)
from autotrace.export.redaction import FAILED, Redactor


@pytest.mark.parametrize(("text", "expected"), [
    ("mail jane.doe+x@example.co.uk now", "mail <EMAIL> now"),
    ("card 4111 1111 1111 1111 ok", "card <CREDIT_CARD> ok"),
    ("card 4111-1111-1111-1111", "card <CREDIT_CARD>"),
    ("iban DE89 3704 0044 0532 0130 00.", "iban <IBAN>."),
    ("iban GB82WEST12345698765432", "iban <IBAN>"),
    ("ssn 078-05-1120", "ssn <US_SSN>"),
    ("from 192.168.1.20 and 8.8.8.8", "from <IP_ADDRESS> and <IP_ADDRESS>"),
    ("v6 2001:db8:85a3::8a2e:370:7334 end", "v6 <IP_ADDRESS> end"),
    ("Authorization: Bearer abc.DEF-123_456", "Authorization: Bearer <BEARER_TOKEN>"),
    ("key sk-proj-AbCdEfGhIjKlMnOp1234", "key <API_KEY>"),
    ("lf pk-lf-1234abcd-ef", "lf <API_KEY>"),
    ("aws AKIAIOSFODNN7EXAMPLE", "aws <API_KEY>"),
    ("gh ghp_abcdefghijklmnopqrstuvwxyz0123", "gh <API_KEY>"),
    ("slack xoxb-1234567890-abcdef", "slack <API_KEY>"),
    ("google AIzaSyA1234567890abcdefghijklmnopqrstuv", "google <API_KEY>"),
    ('{"api_key": "s3cr3t-value"}', '{"api_key": "<API_KEY>"}'),
    ("password=hunter22", "password=<API_KEY>"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcDEF_12345", "jwt <JWT>"),
    ("call (415) 555-0132 or 415-555-0132", "call <PHONE> or <PHONE>"),
    ("uk +44 20 7946 0958", "uk <PHONE>"),
])
def test_detectors_replace_with_the_kind(text: str, expected: str) -> None:
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112",  # fails Luhn
    "iban DE89 3704 0044 0532 0130 01",  # fails mod-97
    "ssn 000-12-3456 and 666-12-3456 and 900-12-3456 and 123-00-4567 and 123-45-0000",
    "ip 10.0.0.256",
    "released 2024-01-05, version 1.2.3, order 42, took 350 ms",
    "nothing to see here",
    '{"score": 0.15075567364692688, "p": 0.4111111111111111}',  # Luhn-valid digits inside decimals
])
def test_near_misses_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_kinds_can_be_restricted() -> None:
    assert redact_text("a@b.io 4111 1111 1111 1111", frozenset({"EMAIL"}))[0] == "<EMAIL> 4111 1111 1111 1111"
    with pytest.raises(ValueError, match="unknown redaction detector"):
        Redactor(detectors=["SOCIAL"])


def test_json_stays_valid() -> None:
    payload = json.dumps({"messages": [{"content": "mail a.b@c.io, card 4111 1111 1111 1111, ip 1.2.3.4"}],
                          "auth": "Bearer abcdefgh12345"})
    redacted, count = redact_text(payload)
    assert count == 4
    assert json.loads(redacted) == {"messages": [{"content": "mail <EMAIL>, card <CREDIT_CARD>, ip <IP_ADDRESS>"}],
                                    "auth": "Bearer <BEARER_TOKEN>"}


def test_redactor_skips_structural_keys_and_handles_lists_and_hooks() -> None:
    order: list[str] = []

    def first(key: str, value: object, span_type: str) -> object:
        order.append("first")
        return value.replace("ACME-7", "<ACCOUNT>") if isinstance(value, str) else value

    def second(key: str, value: object, span_type: str) -> object:
        order.append("second")
        return None if key == "drop.me" else value

    redactor = Redactor(hooks=[first, second])
    attrs, report = redactor.redact_attributes({
        "langfuse.observation.model.name": "model-4111 1111 1111 1111",
        "langfuse.observation.input": "account ACME-7 of x@y.io",
        "tags": ["x@y.io", "plain"],
        "drop.me": "bye",
    }, "generation")
    assert attrs == {
        "langfuse.observation.model.name": "model-4111 1111 1111 1111",
        "langfuse.observation.input": "account <ACCOUNT> of <EMAIL>",
        "tags": ["<EMAIL>", "plain"],
    }
    assert report.replacements == 2 and order[:2] == ["first", "second"]


def test_a_raising_hook_replaces_only_the_affected_value() -> None:
    def picky(key: str, value: object, span_type: str) -> object:
        if key == "b":
            raise RuntimeError("hook bug with " + str(value))
        return value

    attrs, report = Redactor(hooks=[picky]).redact_attributes({"a": "fine", "b": "secret raw value"}, "span")
    assert attrs == {"a": "fine", "b": FAILED}
    assert report.hook_failures == 1 and report.failed_keys == ["b"]


def test_disabled_redactor() -> None:
    redactor = Redactor.disabled()
    assert redactor.enabled is False


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=120))
def test_never_raises_and_is_idempotent(text: str) -> None:
    once, _ = redact_text(text)
    assert redact_text(once)[0] == once


_NUMBERISH = st.text(alphabet="0123456789 .-:()+/ABDEGIKLNRSfe", max_size=60)


@settings(max_examples=2000, deadline=None)
@given(_NUMBERISH, _NUMBERISH)
def test_the_cheap_digit_checks_never_hide_a_value_the_full_pass_would_replace(prefix: str, text: str) -> None:
    text = prefix + text
    full_pass = _DIGIT_PASS[text.isascii()]
    found = [m for m in full_pass.finditer(text) if _VALIDATORS.get(m.lastgroup or "", bool)(m.group())]
    if found:
        assert _has_digit_shape(text), (text, [m.group() for m in found])


@pytest.mark.parametrize("trigger", [trigger for _, triggers, _ in _TEXT_PASSES for trigger in triggers])
def test_every_text_pass_trigger_passes_the_cheap_hint_check(trigger: str) -> None:
    assert _contains_any(f"plain words {trigger} more words", _TRIGGER_HINTS)


def test_plain_prose_holds_no_hint_so_its_text_passes_are_skipped() -> None:
    assert not _contains_any("You are a support agent. Where is my order? It was due yesterday.", _TRIGGER_HINTS)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=80), _NUMBERISH)
def test_on_ascii_text_the_ascii_compiled_digit_pass_matches_exactly_what_the_unicode_one_does(
        prefix: str, text: str) -> None:
    text = prefix + text
    unicode_pattern, ascii_pattern = _DIGIT_PASS[False], _DIGIT_PASS[True]
    assert [(m.span(), m.lastgroup) for m in ascii_pattern.finditer(text)] == \
        [(m.span(), m.lastgroup) for m in unicode_pattern.finditer(text)]


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=40),
       st.text(alphabet="0123456789 .-()+/,:xAZ", max_size=60))
def test_on_ascii_text_the_digit_shapes_are_found_exactly_where_their_pattern_finds_them(
        prefix: str, text: str) -> None:
    """The ASCII path (character classes and substring tests) is the pattern, not an approximation."""
    text = prefix + text
    assert _has_digit_shape(text) == (_DIGIT_SHAPE.search(text) is not None or _COLON_GROUP.search(text) is not None)


@pytest.mark.parametrize(("text", "has_shape"), [
    ("12 34 56", True), ("1 2 3 4 5 6", True), ("12  34  56", True), ("12   34 56", False), ("123.45.6", True),
    ("1.234.5", True), ("1.2345", False), ("DE89", True), ("De89", False), ("tok0 tok1 tok2 tok3 tok4 tok5", False),
    ("order 7, 2 items at 4.5", False), ("(555) 123", True), ("12-34-5", False),
])
def test_digit_shapes_on_ascii_text(text: str, has_shape: bool) -> None:
    assert _has_digit_shape(text) is has_shape
    assert (_DIGIT_SHAPE.search(text) is not None) is has_shape


@pytest.mark.parametrize(("text", "expected"), [
    ("call +\u0661 \u0664\u0661\u0665 \u0665\u0665\u0665 \u0660\u0661\u0660\u0660 now", "call <PHONE> now"),
    ("ssn \u0660\u0667\u0668-\u0660\u0665-\u0661\u0661\u0662\u0660 \u00e9", "ssn <US_SSN> \u00e9"),
])
def test_digits_of_other_scripts_are_still_detected(text: str, expected: str) -> None:
    assert not text.isascii()
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", ["4111 1111 1111 1111", "+1 (555) 010-9999", "078-05-1120", "10.0.0.1",
                                  "fe80::1ff:fe23:4567:890a", "DE89 3704 0044 0532 0130 00", "(555) 123-4567",
                                  "a:b:c:d:e:f:a:b"])  # an IPv6 address without a digit is found by its colons
def test_every_digit_kind_passes_the_cheap_checks(text: str) -> None:
    assert _has_digit_shape(text)
    assert redact_text(f"see {text} here")[1] == 1


def test_assignments_in_json_held_inside_a_json_string_are_redacted_and_the_text_stays_json() -> None:
    """A chat message whose content is JSON (``{"password": ...}``) is serialised with its quotes
    escaped: the key's and the value's quotes are then ``\\"``."""
    content = json.dumps({"password": "hunter2xyz", "user": "bob", "token": "a\\b\\cdefg"})
    text, replaced = redact_text(json.dumps([{"role": "user", "content": content}]))
    assert replaced == 2
    assert json.loads(json.loads(text)[0]["content"]) == {"password": "<API_KEY>", "user": "bob",
                                                          "token": "<API_KEY>"}
    assert redact_text("password=abc\\def") == ("password=<API_KEY>", 1)  # a backslash inside the value
