"""Review 20: a card right after two letters and two digits ("DE89", a reference's or an account's
prefix) was read as one IBAN candidate with them; the candidate failed mod-97 and was kept whole, so
the card was exported raw. An IBAN candidate that is none is now searched again after its first group,
unless it has its country's length and no card of a usual length (a mistyped IBAN, kept as it is)."""

from __future__ import annotations

import json

import pytest

from autotrace.export.detectors import redact_text


def _full_width(text: str) -> str:
    """``text`` with its letters and digits full-width (typed with an IME)."""
    return "".join(chr(ord(ch) + 0xFEE0) if ch.isalnum() else ch for ch in text)


@pytest.mark.parametrize(("text", "expected"), [
    ("x DE89 4111 1111 1111 1111", "x DE89 <CREDIT_CARD>"),
    ("card: DE89 4111 1111 1111 1111 exp 12/27", "card: DE89 <CREDIT_CARD> exp 12/27"),
    ("ref AB12 5555 5555 5555 4444", "ref AB12 <CREDIT_CARD>"),
    ("AT61 4111 1111 1111 1111 x", "AT61 <CREDIT_CARD> x"),  # of Austria's IBAN length, a 16-digit card
    (_full_width("De89 4111 1111 1111 1111"), _full_width("De89") + " <CREDIT_CARD>"),
    (json.dumps({"note": "acct GB12 3782 822463 10005"}), '{"note": "acct GB12 <CREDIT_CARD>"}'),
    ("DE89 3704 0044 0532 0130 00 4111 1111 1111 1111", "<IBAN> <CREDIT_CARD>"),
])
def test_a_card_after_an_iban_like_prefix_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, expected.count("<"))


@pytest.mark.parametrize("text", [
    "x DE89 3704 0044 0532 0130 01 y",  # a mistyped IBAN of its country's length: kept whole
    "ref AB12 3456 7890 ZZ99",
])
def test_a_mistyped_iban_or_a_code_stays(text: str) -> None:
    assert redact_text(text) == (text, 0)
