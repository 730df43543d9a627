"""Review 18 of the detectors' cost on large values (a systematic search for super-linear cases found none
left): IBAN candidates in groups separated by no-break spaces or en dashes were read a character at a time
in Python by ``as_ascii``, some ten times a match (``iban_in`` cut each candidate at every group), 125 ms
for a 64 kB run of ``AB12\\u00a0``. ``as_ascii`` now reads a text holding no digit of another script in C,
and ``iban_in`` reads its candidate once. Outputs stay the same (checked against the earlier code)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from autotrace.export import _validators
from autotrace.export.detectors import redact_text
from autotrace.export.detectors_decode import as_ascii


def _python_calls(run: Callable[[], object]) -> int:
    """How many Python frames (a generator's resumptions too) ``run`` starts, itself excluded."""
    calls = -1
    previous = sys.gettrace()

    def trace(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.settrace(trace)
    try:
        run()
    finally:
        sys.settrace(previous)
    return calls


def test_a_text_with_no_digit_of_another_script_is_not_read_a_character_at_a_time() -> None:
    text = "AB12\u00a0CD34\u2013\uff25\uff26" * 300
    assert as_ascii(text) == text.replace("\uff25\uff26", "EF")
    assert _python_calls(lambda: as_ascii(text)) == 1  # as_ascii alone (a generator resumed per character before)


@pytest.mark.parametrize(("text", "expected"), [
    ("\u0664\u0661\u0661\u0661\u00a0\uff11\u0967x\u00e9", "4111\u00a011x\u00e9"),
    ("\u0661\u0662\u0663-\u0664\u0665", "123-45"),
    ("\u00a0\u2013", "\u00a0\u2013"),
    ("\uff27\uff22\uff18\uff12", "GB82"),
])
def test_digits_of_other_scripts_are_still_read_as_ascii(text: str, expected: str) -> None:
    assert as_ascii(text) == expected


def test_an_iban_candidate_is_read_as_ascii_once(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []
    monkeypatch.setattr(_validators, "as_ascii", lambda text: read.append(text) or as_ascii(text))
    candidate = "AB12\u00a0" * 8 + "AB12"
    assert _validators.iban_in(candidate) == (candidate, "")
    assert read == [candidate]  # (once per cut before: nine times)
    iban = "GB82\u00a0WEST\u00a01234\u00a05698\u00a07654\u00a032"
    read.clear()
    assert _validators.iban_in(iban + "\u00a0ok") == (iban, "\u00a0ok")
    assert read == [iban + "\u00a0ok"]


# outputs of the code before this review
_EARLIER_OUTPUTS = [
    ("AB12\u00a0" * 40, ("AB12\u00a0" * 40, 0)),
    ("iban GB82\u00a0WEST\u00a01234\u00a05698\u00a07654\u00a032 ok", ("iban <IBAN> ok", 1)),
    ("DE89\u20133704\u20130044\u20130532\u20130130\u201300 x", ("<IBAN> x", 1)),
    ("\uff27\uff22\uff18\uff12 \uff37\uff25\uff33\uff34 1234 5698 7654 32", ("<IBAN>", 1)),
    ("card \u0664\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661",
     ("card <CREDIT_CARD>", 1)),
    ("ssn \u0661\u0662\u0663-\u0664\u0665-\u0666\u0667\u0668\u0669", ("ssn <US_SSN>", 1)),
]


@pytest.mark.parametrize(("text", "expected"), _EARLIER_OUTPUTS)
def test_redaction_output_is_the_earlier_codes(text: str, expected: tuple[str, int]) -> None:
    assert redact_text(text) == expected
