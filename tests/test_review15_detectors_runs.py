"""Cards after another number in one run of digit groups, and SSNs and phones in a run that holds
no card (review 15)."""

from __future__ import annotations

import pytest

from autotrace.export.detectors import redact_text


@pytest.mark.parametrize(("text", "expected"), [
    ("ref 12345 4111 1111 1111 1111", "ref 12345 <CREDIT_CARD>"),
    ("ref 12345 4111 1111 1111 1111 ok", "ref 12345 <CREDIT_CARD> ok"),
    ("order#98765-4111111111111111", "order#98765-<CREDIT_CARD>"),
    ("acct 12345678 4111 1111 1111 1111", "acct 12345678 <CREDIT_CARD>"),
    ("acct 12345678-4111-1111-1111-1111", "acct 12345678-<CREDIT_CARD>"),
    ("id 1234 4111 1111 1111 1111", "id 1234 <CREDIT_CARD>"),
    ("ref 12345\u00a04111\u00a01111\u00a01111\u00a01111", "ref 12345\u00a0<CREDIT_CARD>"),
])
def test_a_card_after_four_digits_or_more_of_another_number_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize(("text", "expected"), [
    ("call 123-45-6789 1234 5678 9012", "call <US_SSN> 1234 5678 9012"),
    ("99 123-45-6789 5555", "99 <US_SSN> 5555"),
    ("ref 9999 9999 415-555-0100", "ref 9999 9999 <PHONE>"),
    ("ref 12345 4111 1111 1111 1112 415.555.0100", "ref 12345 4111 1111 1111 1112 <PHONE>"),
])
def test_an_ssn_or_phone_in_a_run_that_holds_no_card_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize(("text", "expected"), [
    ("4111 1111 1111 1111 020 7946 0958", "<CREDIT_CARD> <PHONE>"),
    ("4111 1111 1111 1111 123 45 6789", "<CREDIT_CARD> <US_SSN>"),
])
def test_a_phone_or_ssn_after_a_card_in_its_run_is_redacted_as_a_second_pass_would(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 2)
    assert redact_text(expected) == (expected, 0)


def test_the_kinds_asked_for_are_found_in_a_run_and_no_others() -> None:
    text = "ref 12345 4111 1111 1111 1111 123-45-6789"
    assert redact_text(text, frozenset({"US_SSN"})) == ("ref 12345 4111 1111 1111 1111 <US_SSN>", 1)
    assert redact_text(text, frozenset({"CREDIT_CARD"})) == ("ref 12345 <CREDIT_CARD> 123-45-6789", 1)


@pytest.mark.parametrize("text", [
    "2024-08-06T12:34:56.789Z 1722947696123 1722947696123456",  # a timestamp, epoch milli- and microseconds
    "2024-01-15 12345 67890 12345 2024-01-16",
    "550e8400-e29b-41d4-a716-446655440000 12345678-1234-4111-1111-111111111111",  # UUIDs
    "00-12345678901234567890123456789012-4111111111111111-01",  # a traceparent, all digits
    "4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7",  # trace and span ids
    "v1.2.3 build 20240806 $1,299.99 tokens 1234 5678 9012 3456 7890 1234 5678",
    "[[1000 1037 1074 1111 1148 1185 1222 1259 1296 1333 1370 1407]]",  # token ids
    "1-4111111111111111", "4111111111111111-5", "12-4111 1111 1111 1111",  # a hyphen joins them
    "1.5 4111 1111 1111 1111.25", "4111 1111 1111 1111-5678",
])
def test_numbers_that_hold_no_value_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)
