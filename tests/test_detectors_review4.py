"""Detector review 4, precision: what ordinary LLM-pipeline text holds and the detectors took for PII
(space-separated lists of numbers and years read as cards, ids outside any issuer's range, retina
asset names and git remotes read as addresses, "bearer" in prose, epoch milliseconds and compact
timestamps after a phone word), each beside a near-identical real value still redacted; cards
beside another number, which the old candidate swallowed; megabyte inputs; the export path."""

from __future__ import annotations

import json
from re import _parser as sre_parse

import pytest
from opentelemetry import trace

import autotrace
from autotrace.export import _cards
from autotrace.export.detectors import _PATTERNS, redact_text
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant
from tests.test_detectors_review3 import _unbounded_repeats

#: Ordinary trace text the old detectors redacted (each checked to be so)
KEPT = [
    # token ids / a numpy matrix / random ints printed with spaces: 15 to 19 digits, Luhn-valid
    "584 287 678 323 142 509 630 260 492 467 226 253 352 842 935 297 142 675 962 875",
    "[[274 178 580 807 664 170]\n [802 622 689 826 695 138]\n [570 817 798 585 966 494]]",
    "35250 37099 14193 46818 5956 37653 18816 11165 28577 85 34311",
    "[7081 8341 9434 4329 8170 8895 9675 9145 8190 3524 2003 9839]",  # token ids in fours
    "2006 1998 1995 2029 1995 1998 1996 1990",  # years
    "isbn 9315275611815", "id 8751914757383258", "id 9702805714086910432",  # no issuer's
    "icon@2x.png", "assets/logo@3x.webp", "node@20.json",  # file names
    "git clone git@github.com:org/repo.git", "git@gitlab.com:~user/x",  # a git remote's user
    "The bearer receives interest", "a bearer document",  # prose
    "SMS sent 20240806123456", "mobile: 1722947696123",  # a timestamp, epoch milliseconds
]
#: Their near-identical real values, still redacted
REDACTED = [
    ("584 4111 1111 1111 1111 260", "584 <CREDIT_CARD> 260"),
    ("card 3782 822463 10005 ok", "card <CREDIT_CARD> ok"),  # Amex's layout
    ("[4111 1111 1111 1111 3524 9434]", "[<CREDIT_CARD> 3524 9434]"),  # (three fours beside: a list)
    ("card 4111 1111 1111 1111 1234 5678", "card <CREDIT_CARD> 1234 5678"),
    ("mc 2221 0000 0000 0009", "mc <CREDIT_CARD>"), ("mir 2200000000000004", "mir <CREDIT_CARD>"),
    ("rupay 8171000000000006", "rupay <CREDIT_CARD>"), ("troy 9792000000000003", "troy <CREDIT_CARD>"),
    ("unionpay 6250000000000000005", "unionpay <CREDIT_CARD>"),
    ("mail jane@example.com.png", "mail <EMAIL>.png"), ("jane@2x.io", "<EMAIL>"),
    ("git@example.com: hi", "<EMAIL>: hi"), ("gitlab@example.com:x", "<EMAIL>:x"),
    ("authorization: bearer secrettoken", "authorization: bearer <BEARER_TOKEN>"),
    ("Authorization: Bearer abcdefgh", "Authorization: Bearer <BEARER_TOKEN>"),
    ("the bearer abc123def456", "the bearer <BEARER_TOKEN>"),
    ("tel 14155550132", "tel <PHONE>"), ("tel 2348012345678", "tel <PHONE>"), ("phone 201012345678", "phone <PHONE>"),
]


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_pipeline_text_is_kept(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), REDACTED)
def test_near_identical_real_values_are_still_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, expected.count("<"))


@pytest.mark.parametrize(("text", "expected"), [
    ("qty 12 4111 1111 1111 1111", "qty 12 <CREDIT_CARD>"),
    ("4111 1111 1111 1111 12/27 123", "<CREDIT_CARD> 12/27 123"),  # an expiry after it
    ("card 4111111111111111 12/27", "card <CREDIT_CARD> 12/27"),
    ("3782 822463 10005 12/27", "<CREDIT_CARD> 12/27"),
    ("4111-1111-1111-1111-12", "<CREDIT_CARD>-12"),
    (json.dumps({"c": "4111 1111 1111 1111 12/27"}), '{"c": "<CREDIT_CARD> 12/27"}'),
])
def test_a_card_beside_another_number_is_found_in_the_candidate(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", [
    "1-4111111111111111", "4111111111111111-5", "12-4111 1111 1111 1111",  # a hyphen joins them
    "x 411 111 111 111 111 1", "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # no card's layout
])
def test_a_number_joined_to_a_card_or_groups_in_no_cards_layout_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_the_kinds_filter_still_applies_to_cards_found_in_a_candidate() -> None:
    text = "qty 12 4111 1111 1111 1111, mail jane@example.com"
    assert redact_text(text, frozenset({"CREDIT_CARD"})) == ("qty 12 <CREDIT_CARD>, mail jane@example.com", 1)
    assert redact_text(text, frozenset({"EMAIL"})) == ("qty 12 4111 1111 1111 1111, mail <EMAIL>", 1)


@pytest.mark.parametrize("pattern", [_cards._GROUP.pattern, _cards._FOUR.pattern])
def test_the_new_expressions_never_give_back_an_unbounded_repeat(pattern: str) -> None:
    assert _unbounded_repeats(sre_parse.parse(pattern)) == []


def test_the_new_lookaheads_are_bounded() -> None:
    """The lookaheads added to old expressions read a bounded number of characters."""
    for pattern, part in ((_PATTERNS["EMAIL"], r"(?!git@[\w.-]{1,253}:[\w~/])"),
                          (_PATTERNS["BEARER_TOKEN"], r"(?!(?<=[A-Za-z] bearer )[a-z]{1,19}(?![\w.~+/=-]))")):
        assert part in pattern
        assert _unbounded_repeats(sre_parse.parse(part)) == []


MB = 1 << 20


@pytest.mark.parametrize(("unit", "expected"), [
    ("1 ", lambda text: text), ("4111 ", lambda text: text), ("12-4111 ", lambda text: text),
    ("4111 1111 1111 1111 12 ", lambda text: text.replace("4111 1111 1111 1111", "<CREDIT_CARD>")),
    ("icon@2x.png ", lambda text: text), ("git@a.b:", lambda text: text), ("the bearer ", lambda text: text),
    ("mobile 1722947696123 ", lambda text: text),
])
def test_a_megabyte_of_each_new_forms_parts_is_redacted_as_expected(unit: str, expected: object) -> None:
    """Read once (each candidate's groups a bounded number of times): seconds at most under coverage."""
    text = unit * (MB // len(unit))
    assert redact_text(text)[0] == expected(text)


def test_ordinary_pipeline_values_reach_the_exporter_unchanged(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    kept = {f"v{index}": text for index, text in enumerate(KEPT)}
    with autotrace.tenant("t"), trace.get_tracer("third.party").start_as_current_span("call") as span:
        for key, value in kept.items():
            span.set_attribute(key, value)
        span.set_attribute("pii", "card 4111 1111 1111 1111 12/27, icon@2x.png")
    assert autotrace.flush(5)
    (received,) = rx.wait_for_spans(1)
    assert {key: received.attributes[key] for key in kept} == kept
    assert received.attributes["pii"] == "card <CREDIT_CARD> 12/27, icon@2x.png"
