"""A card beside another match (review 15, second pass): a phone's or an IBAN's match that read on into
the card's groups, card candidates that overlap, cards that fill a run of groups of four; no digit of
a valid card is left beside another match. A phone's match that took an SSN's first groups."""

from __future__ import annotations

import random
import re

import pytest
from opentelemetry import trace

import autotrace
from autotrace.export import _cards
from autotrace.export.detectors import redact_text
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant


@pytest.mark.parametrize(("text", "expected"), [
    ("+1 415 555 0100 4111 1111 1111 1111", "<PHONE> <CREDIT_CARD>"),
    ("+44 20 7946 0958 4111 1111 1111 1111", "<PHONE> <CREDIT_CARD>"),
    ("+91 98765 43210 4111 1111 1111 1111", "<PHONE> <CREDIT_CARD>"),
    ("+14155550100 4111 1111 1111 1111", "<PHONE> <CREDIT_CARD>"),
    ("+1 (415) 555 0100 4111 1111 1111 1111", "<PHONE> <CREDIT_CARD>"),
    ("+1-415-555-0100-4111-1111-1111-1111", "<PHONE>-<CREDIT_CARD>"),
    ("+1.415.555.0100.4111.1111.1111.1111", "<PHONE>.<CREDIT_CARD>"),
    ("+1 415 555 0100 5500 0000 0000 0004 ok", "<PHONE> <CREDIT_CARD> ok"),
    ("+1 415 555 0100 3782 822463 10005", "<PHONE> <CREDIT_CARD>"),  # Amex
    ("call +1 415 555 0100 4111 1111 1111 1111, thanks", "call <PHONE> <CREDIT_CARD>, thanks"),
    ("4111 1111 1111 1111 +1 415 555 0100 5500 0000 0000 0004", "<CREDIT_CARD> <PHONE> <CREDIT_CARD>"),
])
def test_a_card_after_a_phone_whose_match_read_on_into_it_is_redacted_whole(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, expected.count("<"))


@pytest.mark.parametrize(("text", "expected"), [
    ("+1 415 555 0100 123-45-6789", "<PHONE> <US_SSN>"),
    ("+44 20 7946 0958 123-45-6789 ok", "<PHONE> <US_SSN> ok"),
    ("+1.415.555.0100.123-45-6789", "<PHONE>.<US_SSN>"),
])
def test_an_ssn_after_a_phone_whose_match_took_its_first_groups_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 2)


@pytest.mark.parametrize(("text", "expected"), [
    ("BE68 5390 0754 7034 4111 1111 1111 1111", "<IBAN> <CREDIT_CARD>"),  # an IBAN in digits after its country
    ("BE68539007547034 4111 1111 1111 1111", "<IBAN> <CREDIT_CARD>"),
    ("iban BE68 5390 0754 7034 card 4111 1111 1111 1111", "iban <IBAN> card <CREDIT_CARD>"),
])
def test_a_card_after_an_iban_whose_match_read_on_into_it_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 2)


@pytest.mark.parametrize(("text", "expected"), [
    ("6789 4111 1111 1111 1111", "<CREDIT_CARD>"),  # "6789 4111 1111 1111" is Luhn-valid too
    ("123 45 6789 4111 1111 1111 1111", "123 45 <CREDIT_CARD>"),
    ("2238 2564 7702 7393 1529", "<CREDIT_CARD>"),
])
def test_card_candidates_that_overlap_are_redacted_as_one(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize(("text", "expected"), [
    ("4111 1111 1111 1111 5500 0000 0000 0004", "<CREDIT_CARD> <CREDIT_CARD>"),
    ("cards 4111 1111 1111 1111 5500 0000 0000 0004.", "cards <CREDIT_CARD> <CREDIT_CARD>."),
    ("4111 1111 1111 1111 5500 0000 0000 0004 4000 0566 5566 5556",
     "<CREDIT_CARD> <CREDIT_CARD> <CREDIT_CARD>"),
    ("4111 1111 1111 1111 5500 0000 0000 0004 3782 822463 10005", "<CREDIT_CARD> <CREDIT_CARD> <CREDIT_CARD>"),
    ("4111-1111-1111-1111 5500-0000-0000-0004 4000-0566-5566-5556", "<CREDIT_CARD> <CREDIT_CARD> <CREDIT_CARD>"),
])
def test_cards_that_fill_a_run_of_groups_of_four_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, expected.count("<"))


@pytest.mark.parametrize("text", [
    "[7081 8341 9434 4329 8170 8895 9675 9145]",  # token ids in fours that hold no card, or some
    "[7081 8341 9434 4329 8170 8895 9675 9145 8190 3524 2003 9839]",
    " ".join(["7081"] * 200), " ".join(["4111"] * 200),
    "4111 1111 1111 1111 1234 5678 9012 3456",  # a card's groups among ids (filled with no second card)
    "2024-08-06T12:34:56.789Z 1722947696123 v1.2.3 $1,299.99 tokens 1234 5678",
    "550e8400-e29b-41d4-a716-446655440000 4bf92f3577b34da6a3ce929d0e0e4736",
])
def test_lists_of_numbers_that_cards_do_not_fill_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_cards_fill_a_run_of_random_ids_seldom() -> None:
    """Runs of eight random four-digit ids that two Luhn-valid issuer numbers fill: about one in 300."""
    rng = random.Random(5)
    runs = [" ".join(str(rng.randint(1000, 9999)) for _ in range(8)) for _ in range(3000)]
    assert sum(redact_text(run)[1] > 0 for run in runs) < 30


def test_the_kinds_asked_for_are_redacted_beside_a_phone_or_iban_match_that_read_on() -> None:
    cards = frozenset({"CREDIT_CARD"})
    assert redact_text("+1 415 555 0100 4111 1111 1111 1111", cards) == ("+1 415 555 0100 <CREDIT_CARD>", 1)
    assert redact_text("BE68 5390 0754 7034 4111 1111 1111 1111", cards) == ("BE68 5390 0754 7034 <CREDIT_CARD>", 1)


@pytest.mark.parametrize("digits", ["4111111111111111", "5500000000000004", "378282246310005", "79927398713", "1",
                                    "4111111111111112", "0000000000000000", "9792000000000001"])
def test_the_luhn_check_is_the_textbook_one(digits: str) -> None:
    total = sum(int(d) if i % 2 == 0 else sum(divmod(2 * int(d), 10)) for i, d in enumerate(reversed(digits)))
    assert _cards._luhn(digits) is (total % 10 == 0)


def test_no_digit_of_a_card_beside_a_phone_reaches_the_exporter(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    with autotrace.tenant("t"), trace.get_tracer("third.party").start_as_current_span("call") as span:
        span.set_attribute("note", "reach me on +1 415 555 0100 4111 1111 1111 1111 exp 12/27")
        span.set_attribute("cards", "4111 1111 1111 1111 5500 0000 0000 0004")
    assert autotrace.flush(5)
    (received,) = rx.wait_for_spans(1)
    assert received.attributes["note"] == "reach me on <PHONE> <CREDIT_CARD> exp 12/27"
    assert received.attributes["cards"] == "<CREDIT_CARD> <CREDIT_CARD>"
    payload = b"".join(request.body for request in rx.requests)
    assert b"1111" not in payload and b"0004" not in payload


@pytest.mark.timeout(10)
def test_a_replacement_that_ends_at_its_match_start_never_searches_the_same_place_again() -> None:
    """``replace_all`` goes on past a match whatever its replacement says (a replacement ending at or
    before its match's start searched the same place forever, on the pipeline thread)."""
    from autotrace.export._digit_runs import replace_all

    digits = re.compile(r"\d+")
    assert replace_all(digits, "a 12 b 345", lambda m: ("<N>", m.start())) == "a <N> b <N>"
