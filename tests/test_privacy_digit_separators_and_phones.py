"""PII in the forms the detectors missed: digit groups separated as web pages and
documents separate them (no-break, thin and figure spaces, en dashes, dots), an "@" written as an
HTML reference, URL-encoded twice or full-width, and national phone numbers without a ``+``;
with corpora of what must stay as it is (dates, amounts, versions, ids...). End to end through a
loopback OTLP receiver too."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace

import autotrace
from autotrace.export.detectors import _encoded_at, _has_digit_shape, redact_text
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant

NBSP, NNBSP, THIN, FIGURE, EN_DASH = "\u00a0", "\u202f", "\u2009", "\u2007", "\u2013"
SPACES = (NBSP, NNBSP, THIN, FIGURE)


def _grouped(groups: str, sep: str) -> str:
    return groups.replace(" ", sep)


@pytest.mark.parametrize("sep", [*SPACES, EN_DASH, "."])
def test_a_card_in_groups_separated_otherwise_is_redacted(sep: str) -> None:
    text = f"card {_grouped('4111 1111 1111 1111', sep)} exp 12/27"
    assert redact_text(text) == ("card <CREDIT_CARD> exp 12/27", 1)


@pytest.mark.parametrize("sep", SPACES)
def test_an_iban_in_groups_separated_by_a_wide_space_is_redacted_and_the_words_after_it_kept(sep: str) -> None:
    text = f"iban {_grouped('DE89 3704 0044 0532 0130 00', sep)}{sep}merci"
    assert redact_text(text) == (f"iban <IBAN>{sep}merci", 1)


@pytest.mark.parametrize("sep", [*SPACES, EN_DASH])
@pytest.mark.parametrize("number", ["+44 20 7946 0958", "+1 415 555 0132", "020 7946 0958", "01 23 45 67 89"])
def test_a_phone_number_in_groups_separated_otherwise_is_redacted(number: str, sep: str) -> None:
    assert redact_text(f"at {_grouped(number, sep)} ok") == ("at <PHONE> ok", 1)


@pytest.mark.parametrize("text", [
    "price 12\u00a0345,67\u00a0€", "1\u202f234\u202f567 habitants", "pages 120\u2013145", "years 2019\u20132024",
    "v1.4111.1111.1111.1111", "0.4111.1111.1111.1111", "x 4111.1111.1111.1111.5",  # decimals, versions
    "card 4111\u00a01111\u00a01111\u00a01112",  # fails Luhn
])
def test_near_misses_with_those_separators_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_separators_written_as_json_escapes_are_read_between_digits_only() -> None:
    """``json.dumps`` (``ensure_ascii``) writes a no-break space as ``\\u00a0``: read as one
    between digits; French text's other no-break spaces stay escaped, the JSON unchanged."""
    card = json.dumps({"c": f"carte 4111{NBSP}1111{NBSP}1111{NBSP}1111 merci"})
    assert redact_text(card) == ('{"c": "carte <CREDIT_CARD> merci"}', 1)
    phone = json.dumps({"c": f"t\u00e9l 01{NNBSP}23{NNBSP}45{NNBSP}67{NNBSP}89"})
    assert redact_text(phone) == ('{"c": "t\\u00e9l <PHONE>"}', 1)
    prose = json.dumps({"c": f"Prix{NBSP}: 12{NBSP}\u20ac \u2014 merci"})
    assert redact_text(prose) == (prose, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("mail name&#64;example.com now", "mail <EMAIL> now"),
    ("mail name&#064;example.com", "mail <EMAIL>"),
    ('<a href="mailto:bob&#x40;example.org">bob&#X40;example.org</a>', '<a href="mailto:<EMAIL>"><EMAIL></a>'),
    ("GET /u?to=alice%2540example.com&x=1", "GET /u?to=<EMAIL>&x=1"),  # URL-encoded twice
    ("\u30e1\u30fc\u30eb\uff1ayamada\uff20example.jp", "\u30e1\u30fc\u30eb\uff1a<EMAIL>"),  # full-width, typed with an IME
    (json.dumps({"to": "yamada\uff20example.jp"}), '{"to": "<EMAIL>"}'),  # and escaped by json.dumps
])
def test_an_at_sign_written_otherwise_is_found(text: str, expected: str) -> None:
    replaced = expected.count("<EMAIL>")
    assert redact_text(text) == (expected, replaced)


@pytest.mark.parametrize("text", [
    "AT&T 5&#37; off &amp; more", "100%2541 done", "\uff20channel see you", "see &#64;mention",
])
def test_near_misses_of_the_other_at_signs_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "found"), [
    ("x%2540y", True), ("a&#64;b", True), ("a\uff20b", True), ("a\\uff20b", True),
    ("R&D 50%", False), ("\\n\\u00e9", False), ("\uff0a", False),
])
def test_the_other_at_signs_pass_the_cheap_check(text: str, found: bool) -> None:
    assert _encoded_at(text) is found


#: National numbers without a ``+``, each redacted in "reach me on ... today" whatever the words.
NATIONAL = [
    "(415) 555-0132", "415-555-0132", "415.555.0132", "415 555 0132", "+1 415 555 0132", "+1-415-555-0132",
    "020 7946 0958", "07700 900123", "0161 496 0000", "01632 960123", "(020) 7946 0958", "020-7946-0958",
    "030 12345678", "030/12345678", "(030) 12345678", "0176 12345678", "089 1234 5678", "0211 1234567",
    "01 23 45 67 89", "06.12.34.56.78", "01-23-45-67-89", "+33 1 23 45 67 89", "+44 20 7946 0958",
    "020\u00a07946\u00a00958", "01\u202f23\u202f45\u202f67\u202f89", "415\u2013555\u20130132",
]
#: Numbers in no phone shape, redacted only after a word naming a phone.
NAMED = [
    ("phone: 4155550132", "phone: <PHONE>"), ("Tel.: 0351 12345", "Tel.: <PHONE>"),
    ("call me at 555-0132", "call me at <PHONE>"), ("Mobile (UK): 07700900123", "Mobile (UK): <PHONE>"),
    ("Handy 01761234567", "Handy <PHONE>"), ("téléphone : 0123456789", "téléphone : <PHONE>"),
    ("fax 030 1234567", "fax <PHONE>"), ("phone number is 02079460958", "phone number is <PHONE>"),
    ("Telefon: 089 123456", "Telefon: <PHONE>"), ("text me on 555 0132!", "text me on <PHONE>!"),
    (json.dumps({"content": "my cellphone:\n4155550132"}), json.dumps({"content": "my cellphone:\n<PHONE>"})),
]
#: Realistic values of LLM applications that hold digits and must stay as they are.
NOT_PHONES = [
    "Total: $1,299.00 (incl. 20% VAT)", "Price 1 234 567,89 EUR", "Umsatz 1.234.567 Euro im Jahr 2023",
    "Meeting on 2024-05-17 at 14:30 UTC", "Due 30/06/2024, reminder 01.07.2024", "Logged at 2024-05-17 14:30:12.123",
    "timestamp 1715956212123", "epoch 1715956212", "version 1.24.3 (build 20240517)", "semver 10.2.0-rc.1+build.5",
    "Python 3.11.7 on linux", "ZIP 02134-1234, Boston MA", "PLZ 01067 Dresden", "postcode SW1A 1AA",
    "Invoice INV-2024-000184", "order #100234567 shipped", "Order 0012 3456 confirmed",
    "tokens: prompt=1532 completion=284 total=1816", "usage 12345678 tokens this month",
    "latency 2350 ms, p99 12034 ms", "took 0.123456789 s", "duration 01:23:45", "Coordinates 48.8566, 2.3522",
    "lat -33.8688 lon 151.2093", "uuid 550e8400-e29b-41d4-a716-446655440000", "trace 4bf92f3577b34da6a3ce929d0e0e4736",
    "HTTP/1.1 200 OK", "GET /api/v1/users/12345 200 OK 532 bytes",
    "2024-05-17T14:30:12Z INFO worker-3 batch 48213 done in 812ms", "ISBN 978-3-16-148410-0",
    "see RFC 7231 section 6.5.1", "matrix [[0.12, 0.55], [0.98, 0.01]]", "score 0.8734 ± 0.0123", "chmod 0755 file",
    "file mode 0644 size 123456", "sha 3f786850e387550fdab836ed7e6dc881de23f806", "id 0123456789",
    "build 0 1234 5678 9", "approx 415 555 013 items", "1 415 555 0132 0000", "scores 01 23 45 67 89 12",
    "room 020 7946", "amount 030,12345678", "v0.12.345678", "ref 07700-900", "lotto 05 12 23 34 45 46",
    # next to a phone word, still no phone
    "The phone model 15 Pro launched in 2023", "phone: 2024-05-17 14:30", "tel 12.03.2024", "mobile app 3.14.159",
    "Mobile users grew 1,234,567 last year", "SMS sent 2024-05-17", "fax 3.141592653", "call me at 9 tomorrow",
    "Telephone support hours 09:00-17:30", "Hotel rooms 1234567 booked", "telemetry 12345678 events",
    "cell A1 = 0.123456789", "tool call 12345678 finished", "ph 7.4 measured 2024-05-17",
    "Contact: support team [at] noon",
]


@pytest.mark.parametrize("number", NATIONAL)
def test_national_phone_numbers_are_redacted(number: str) -> None:
    assert redact_text(f"reach me on {number} today") == ("reach me on <PHONE> today", 1)


@pytest.mark.parametrize(("text", "expected"), NAMED)
def test_a_number_a_phone_word_names_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", NOT_PHONES)
def test_values_with_digits_that_are_no_phone_numbers_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_the_corpora_are_large_enough() -> None:
    assert len(NATIONAL) + len(NAMED) >= 30 and len(NOT_PHONES) >= 40


def test_only_the_chosen_kinds_apply_to_named_numbers() -> None:
    assert redact_text("phone: 4155550132", frozenset({"EMAIL"})) == ("phone: 4155550132", 0)
    assert redact_text("phone: 4155550132", frozenset({"PHONE"})) == ("phone: <PHONE>", 1)


@pytest.mark.parametrize("text", [f"4111{NBSP}1111{NBSP}1111{NBSP}1111", f"01{THIN}23{THIN}45{THIN}67{THIN}89",
                                  f"415{EN_DASH}555{EN_DASH}0132"])
def test_digits_in_groups_separated_otherwise_pass_the_cheap_digit_check(text: str) -> None:
    assert _has_digit_shape(text)


def test_those_forms_are_redacted_end_to_end(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    messages = [{"role": "user", "content": f"Karte 4111{NBSP}1111{NBSP}1111{NBSP}1111, Tel. 030 12345678"}]
    with autotrace.tenant("t"), trace.get_tracer("third.party").start_as_current_span("chat") as span:
        span.set_attribute("llm.prompts", json.dumps(messages))
        span.set_attribute("contact", "bob&#64;example.org / (020) 7946 0958")
        span.set_attribute("tokens", "prompt 1532, total 20240517")
    assert autotrace.flush(5)
    (received,) = rx.wait_for_spans(1)
    payload = b"".join(r.body for r in rx.requests)
    assert b"12345678" not in payload and b"bob&#64;" not in payload and b"7946" not in payload
    assert json.loads(received.attributes["llm.prompts"]) == [{"role": "user", "content": "Karte <CREDIT_CARD>, Tel. <PHONE>"}]
    assert received.attributes["contact"] == "<EMAIL> / <PHONE>"
    assert received.attributes["tokens"] == "prompt 1532, total 20240517"
    assert autotrace.stats()["redactions"] == 4
