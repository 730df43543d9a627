"""Review 17 of the built-in detectors: a card joined by a hyphen to an SSN, phone or card, short
``::`` forms of code read as IPv6, addresses with a quoted local part, Azure API Management's key."""

from __future__ import annotations

import json

import pytest

from autotrace.export.detectors import redact_text
from autotrace.export.redaction import Redactor


@pytest.mark.parametrize(("text", "expected"), [
    ("4111111111111111-123-45-6789", "<CREDIT_CARD>-<US_SSN>"),
    ("card 4111111111111111-123-45-6789 end", "card <CREDIT_CARD>-<US_SSN> end"),
    ("4111 1111 1111 1111-123-45-6789", "<CREDIT_CARD>-<US_SSN>"),
    ("4111111111111111-555-123-4567", "<CREDIT_CARD>-<PHONE>"),
    ("cards 4111111111111111-5500000000000004", "cards <CREDIT_CARD>-<CREDIT_CARD>"),
    (json.dumps({"v": "4111111111111111-123-45-6789"}), '{"v": "<CREDIT_CARD>-<US_SSN>"}'),
])
def test_a_card_joined_by_a_hyphen_to_an_ssn_phone_or_card_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 2)


@pytest.mark.parametrize("text", ["4111111111111111-5", "4111111111111111-12", "4111 1111 1111 1111-5678",
                                  "1-4111111111111111"])
def test_a_card_joined_by_a_hyphen_to_a_shorter_number_still_stays(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize("text", [
    "x = a[1::2]", "y = arr[10::5] + t[0::3]", "evens = xs[::2]; odds = xs[1::2]", "x[1::]",
    "use a::{b, c};", "call a::b and ab::cd", json.dumps({"code": "print(s[1::2])"}),
])
def test_short_double_colon_forms_of_code_are_no_ip_addresses(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("from fe80::1 to ff02::1", "from <IP_ADDRESS> to <IP_ADDRESS>"),
    ("prefix fe80:: and 2001:db8::1", "prefix <IP_ADDRESS> and <IP_ADDRESS>"),
    ("host dead::beef, 1::2:3", "host <IP_ADDRESS>, <IP_ADDRESS>"),
])
def test_compressed_ipv6_addresses_are_still_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 2)


@pytest.mark.parametrize(("text", "expected"), [
    ('write to "john doe"@example.com now', "write to <EMAIL> now"),
    ('"john.doe"@example.com', "<EMAIL>"),
    ("\\u0022john doe\\u0022@example.com", "<EMAIL>"),  # quotes escaped as JSON text may write them
    ('"jane smith"\\u0040example.org', "<EMAIL>"),
])
def test_an_address_with_a_quoted_local_part_is_redacted_whole(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


def test_a_quoted_local_part_in_json_and_json_in_json_leaves_valid_json() -> None:
    inner = json.dumps({"to": '"john doe"@example.com'})
    outer = json.dumps({"content": inner})
    for text in (inner, outer):
        redacted, replaced = redact_text(text)
        assert replaced == 1
        assert "john" not in redacted
    assert json.loads(redact_text(inner)[0]) == {"to": "<EMAIL>"}
    assert json.loads(json.loads(redact_text(outer)[0])["content"]) == {"to": "<EMAIL>"}


@pytest.mark.parametrize("text", [
    json.dumps({"@context": "https://schema.org", "@type": "Person"}),
    json.dumps({"user": "bob", "handle": "@bob.smith.com"}), '["x","@bob.smith.com"]', '{"a":true,"b":"@x.com"}',
    'email = "user"+"@example.com"', 'print("handle", "@jane.doe")',
    json.dumps({"content": json.dumps({"k": "@x.io"})}),
])
def test_a_string_starting_with_an_at_after_another_string_stays(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_an_azure_api_management_key_is_redacted_in_text_and_under_its_header() -> None:
    key = "0123456789abcdef0123456789abcdef"
    text = json.dumps({"headers": {"Ocp-Apim-Subscription-Key": key}})
    assert redact_text(text) == ('{"headers": {"Ocp-Apim-Subscription-Key": "<API_KEY>"}}', 1)
    assert redact_text(f"Ocp-Apim-Subscription-Key: {key}") == ("Ocp-Apim-Subscription-Key: <API_KEY>", 1)
    attributes, report = Redactor().redact_attributes(
        {"http.request.header.ocp-apim-subscription-key": key}, "span")
    assert attributes == {"http.request.header.ocp-apim-subscription-key": "<API_KEY>"}
    assert report.replacements == 1


@pytest.mark.parametrize(("text", "expected"), [
    ("at 10:30 020 7946 0958", "at 10:30 <PHONE>"),
    ("at 10:30 415 555 2671", "at 10:30 <PHONE>"),
    ("at 10:30:15 0151 12345678", "at 10:30:15 <PHONE>"),
    ("at 10:30 01 23 45 67 89", "at 10:30 <PHONE>"),
    ("on 2024-05-01 020 7946 0958", "on 2024-05-01 <PHONE>"),
    (json.dumps({"content": "call at 10:30 020 7946 0958"}), '{"content": "call at 10:30 <PHONE>"}'),
])
def test_a_phone_after_a_time_or_date_and_a_space_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", ["at 12:09-8941-1533", "v1.020 7946 0958", "12 020 7946 0958 33"])
def test_digits_joined_to_a_time_or_decimal_or_in_a_list_still_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)
