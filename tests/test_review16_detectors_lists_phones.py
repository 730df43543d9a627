"""Cards in comma-separated values, a card joined to a phone by a hyphen, national numbers with a
two-digit area code, and phones in full-width or other scripts' digits (review 16)."""

from __future__ import annotations

import json

import pytest

from autotrace.export.detectors import redact_text

#: Full-width digits and colon, as an IME types them
_WIDE = str.maketrans("0123456789:", "".join(chr(0xFF10 + digit) for digit in range(10)) + "\uff1a")


def wide(text: str) -> str:
    return text.translate(_WIDE)


@pytest.mark.parametrize(("text", "expected"), [
    ("jane,4111111111111111,12/27", "jane,<CREDIT_CARD>,12/27"),
    ("name,card\n42,4111111111111111,123", "name,card\n42,<CREDIT_CARD>,123"),
    ("cards: 4111111111111111,4012888888881881", "cards: <CREDIT_CARD>,<CREDIT_CARD>"),
    (json.dumps({"cards": [4111111111111111, 4012888888881881]}, separators=(",", ":")),
     '{"cards":["<CREDIT_CARD>","<CREDIT_CARD>"]}'),
    ("4111 1111 1111 1111,12/27", "<CREDIT_CARD>,12/27"),
])
def test_a_card_in_comma_separated_values_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, expected.count("<"))


@pytest.mark.parametrize(("text", "expected"), [
    ("+1 415 555 0100-4111 1111 1111 1111", "<PHONE>-<CREDIT_CARD>"),
    ("+1 415 555 0100-4111111111111111", "<PHONE>-<CREDIT_CARD>"),
    ("415-555-0100-4111 1111 1111 1111", "<PHONE>-<CREDIT_CARD>"),
    ("ref 12345-4111 1111 1111 1111", "ref 12345-<CREDIT_CARD>"),
])
def test_a_card_joined_by_a_hyphen_to_a_phone_or_long_id_is_redacted_whole(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, expected.count("<"))


@pytest.mark.parametrize(("text", "expected"), [
    ("call 03-1234-5678", "call <PHONE>"),  # Tokyo
    ("\u96fb\u8a71\uff1a03-1234-5678", "\u96fb\u8a71\uff1a<PHONE>"),
    ("call (02) 9374 4000", "call <PHONE>"),  # Sydney
    ("bel 06 12345678", "bel <PHONE>"),  # a Dutch mobile
    ("\u643a\u5e2f " + wide("090-1234-5678"), "\u643a\u5e2f <PHONE>"),  # full-width digits
    (wide("020 7946 0958"), "<PHONE>"),
    (wide("415 555 0132"), "<PHONE>"),
    ("\u0660\u0662\u0660 \u0667\u0669\u0664\u0666 \u0660\u0669\u0665\u0668", "<PHONE>"),  # Arabic-Indic
    ("x " + wide("4111 1111 1111 1111 020 7946 0958"), "x <CREDIT_CARD> <PHONE>"),
])
def test_a_national_number_with_a_short_area_code_or_in_other_digits_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, expected.count("<"))


@pytest.mark.parametrize("text", [
    "1,234,567,890,123,456", "0,5 1234567890123,45", "1.5 4111 1111 1111 1111.25",  # thousands, decimals
    "12-4111 1111 1111 1111", "4111 1111 1111 1111-5678",  # a hyphen joins them
    "data/06/1234567890", "2024-01-06 12345678", "lot 05 123 456 7890", "id 09-876-5432",
    "at 12:09-8941-1533", "v1.020 7946 0958",  # a time's or decimal's digits before them
    wide("ts 2024-08-06 12:34:56"), wide("order 1234567890"), "v 01 2345 6789 1234",
])
def test_numbers_that_hold_no_value_still_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("SSN-123-45-6789", "SSN-<US_SSN>"),  # a key or file name
    ("id ssn-123-45-6789.json", "id ssn-<US_SSN>.json"),
    ("user_ssn=123-45-6789-", "user_ssn=<US_SSN>-"),
    ("123-45-6789-4111111111111111", "<US_SSN>-<CREDIT_CARD>"),
])
def test_an_ssn_after_a_word_and_a_hyphen_or_before_a_hyphen_and_no_number_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, expected.count("<"))


@pytest.mark.parametrize("text", ["978-0-123-45-6789", "123-45-6789-0", "2024-123-45-6789", "ssn-123 45 6789"])
def test_an_ssn_shape_joined_to_another_number_by_a_hyphen_stays(text: str) -> None:
    assert redact_text(text) == (text, 0)
