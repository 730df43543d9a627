"""Review 17 of the built-in detectors: a phone after a date in any common form and a space (a
four-digit year, dotted day and month, a month's name) is redacted; numbers joined to a date, decimals,
versions and ids in groups stay."""

from __future__ import annotations

import json

import pytest

from autotrace.export.detectors import redact_text


@pytest.mark.parametrize(("date", "phone"), [
    ("05/12/2026", "020 7946 0958"), ("05.12.2026", "020 7946 0958"), ("05-12-2026", "020 7946 0958"),
    ("05/12/2026", "07700 900123"), ("05/12/2026", "415 555 0132"), ("12/5/2026", "020 7946 0958"),
    ("2026/12/05", "020 7946 0958"), ("5.12.26", "020 7946 0958"), ("2026.12.05", "020 7946 0958"),
    ("12.5.2026", "0151 12345678"), ("05/12/2026", "01 23 45 67 89"), ("05/12/2026", "(020) 7946 0958"),
    ("5 Dec 2026", "020 7946 0958"), ("December 5, 2026", "415 555 0132"), ("Sept. 30th, 2026", "07700 900123"),
    ("May 2026", "020 7946 0958"),
])
def test_a_phone_after_a_date_and_a_space_is_redacted(date: str, phone: str) -> None:
    assert redact_text(f"on {date} {phone}") == (f"on {date} <PHONE>", 1)
    assert redact_text(f"{date}\u00a0{phone}.") == (f"{date}\u00a0<PHONE>.", 1)


def test_a_phone_after_a_date_in_json_text_and_beside_a_card_is_redacted() -> None:
    text = json.dumps({"content": "booked 05/12/2026 020 7946 0958, card 4111 1111 1111 1111"})
    assert redact_text(text) == ('{"content": "booked 05/12/2026 <PHONE>, card <CREDIT_CARD>"}', 2)
    assert redact_text("5 Dec 2026 020 7946 0958 4111 1111 1111 1111") == ("5 Dec 2026 <PHONE> <CREDIT_CARD>", 2)


@pytest.mark.parametrize("text", [
    "05/12/2026020 7946 0958",  # joined to the date
    "05/12/2026 020 7946 0958 33", "Dec 2026 020 7946 0958 33",  # a longer number
    "1.26 020 7946 0958", "v1.2026 020 7946 0958", "version 1.2.3 020 7946 0958",  # a decimal, versions
    "1,234 020 7946 0958", "1.234.567 020 7946 0958",  # thousands
    "2026 020 7946 0958", "ref 2026 020 7946 0958", "number 2026 020 7946 0958",  # an id in groups
    "Marmalade 2026 020 7946 0958", "a, 2026 020 7946 0958", "05/12/3026 020 7946 0958",
    "05/12/2026 123 456 7890123", "05/12/2026 0207946095811223344",
])
def test_digits_joined_to_a_date_decimals_versions_and_ids_still_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_the_same_holds_in_text_other_than_ascii() -> None:
    assert redact_text("café 05.12.2026 020 7946 0958") == ("café 05.12.2026 <PHONE>", 1)
    assert redact_text("café 5 Dec 2026 020 7946 0958") == ("café 5 Dec 2026 <PHONE>", 1)
    assert redact_text("café ref 2026 020 7946 0958") == ("café ref 2026 020 7946 0958", 0)
