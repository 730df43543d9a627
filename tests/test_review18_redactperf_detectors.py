"""Review 18 of the detectors' speed on large values: a run of ``eyJab-`` (the JWT pass read it to its
end from each "eyJ") and of ``?a=`` in a text with a ``+`` between digits (a query string's value read
to its end from each "?") took time quadratic in their length; a value held past the size limit (ending
in ``bounds.HELD_MARK``, not ASCII) was searched with the slower Unicode classes; and the digit pass
tried its five kinds' lookbehinds at every character. Redaction's output stays the same: checked
against outputs of the earlier code, and on N copies of a line against N times the line's."""

from __future__ import annotations

import random
import re

import pytest

from autotrace.bounds import HELD_MARK, hold
from autotrace.export import detectors, detectors_decode
from autotrace.export.detectors import redact_text
from autotrace.export.redaction import Redactor

# outputs of the code before this review, for inputs near what changed (held values, the digit kinds'
# starts, JWTs in runs, query values)
_EARLIER_OUTPUTS = [
    ("-----BEGIN PRIVATE KEY-----\x1cMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\x1c-----END PRIVATE KEY-----" + HELD_MARK,
     ("<PRIVATE_KEY> …[truncated]", 1)),
    ("ab123-45-6789 x_4111111111111111 y;+1 415 555 0100 z,(415) 555-0133 " + HELD_MARK,
     ("ab<US_SSN> x_<CREDIT_CARD> y;<PHONE> z,<PHONE>  …[truncated]", 4)),
    ("deadbeef" * 4 + "-0292-4192-9481 id 10.0.0.1 fe80::1 GB82 WEST 1234 5698 7654 32 " + HELD_MARK,
     ("deadbeef" * 4 + "-<PHONE> id <IP_ADDRESS> <IP_ADDRESS> <IBAN>  …[truncated]", 4)),
    ('password: "hunter2222' + HELD_MARK, ('password: "<API_KEY>', 1)),
    ("token=" + "ab" * 10 + HELD_MARK, ("token=<API_KEY> …[truncated]", 1)),
    ("eyJab-eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_abcdef end", ("<JWT> end", 1)),
    ("x-eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0. eyJab.eyJhbGciOi.xyzab", ("x-<JWT> eyJab.eyJhbGciOi.xyzab", 1)),
    ("https://x.io/a?q=card&n=4111+1111+1111+1111?b=1&c=2+3", ("https://x.io/a?q=card&n=<CREDIT_CARD>?b=1&c=2 3", 1)),
    ("?k=a?b=4111+1111+1111+1111#x ?z=1+2", ("?k=a?b=<CREDIT_CARD>#x ?z=1 2", 1)),
]


@pytest.mark.parametrize(("text", "expected"), _EARLIER_OUTPUTS)
def test_redaction_output_is_the_earlier_codes(text: str, expected: tuple[str, int]) -> None:
    assert redact_text(text) == expected


_LINE = ("mail jane.doe@example.com, card 4111 1111 1111 1111, ssn 123-45-6789, ip 10.1.2.3, "
         "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_abcdef " + "deadbeef" * 6 + "\n")


@pytest.mark.parametrize("copies", [1, 40, 360])
def test_copies_of_a_line_held_past_the_limit_are_redacted_as_the_line_is(copies: int) -> None:
    line, found = redact_text(_LINE)
    assert found == 5
    assert redact_text(_LINE * copies + HELD_MARK) == (line * copies + HELD_MARK, found * copies)


class _Recorded:
    """A ``_ByText`` recording which of its patterns (ASCII classes or not) is asked for."""

    def __init__(self, patterns: detectors._ByText) -> None:
        self.patterns, self.asked = patterns, []

    def __getitem__(self, ascii_text: bool) -> re.Pattern[str]:
        self.asked.append(ascii_text)
        return self.patterns[ascii_text]


def test_a_held_ascii_value_is_searched_with_ascii_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    value = hold("".join(random.Random(18).choice("0123456789abcdef") for _ in range(80_000)), 64 * 1024)
    assert value.endswith(HELD_MARK) and not value.isascii()
    recorded = _Recorded(detectors._DIGIT_PASS)
    monkeypatch.setattr(detectors, "_DIGIT_PASS", recorded)
    assert redact_text(value) == (value, 0)
    assert recorded.asked == [True]


def test_a_held_value_with_a_unicode_only_space_keeps_the_unicode_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = _Recorded(detectors._DIGIT_PASS)
    monkeypatch.setattr(detectors, "_DIGIT_PASS", recorded)
    assert redact_text("id 4111 1111 1111 1111\x1c" + HELD_MARK) == ("id <CREDIT_CARD>\x1c" + HELD_MARK, 1)
    assert recorded.asked == [False]


def test_the_jwt_pass_reads_a_run_of_header_characters_once() -> None:
    """Its match at the run's first "eyJ" spans the run, so no later "eyJ" in it is tried again (each
    one read the run to its end: 1.2 s for 64 kB); its tokens are still found."""
    kind, _, patterns = detectors._TEXT_PASSES[1]
    assert kind == "JWT"
    run = "eyJab-" * 2000
    assert [match.span() for match in patterns[True].finditer(run)] == [(0, len(run))]
    assert redact_text(run) == (run, 0)
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_abcdef"
    assert redact_text(f"{run}. {run}{token} x") == (f"{run}. <JWT> x", 1)


def test_a_query_value_is_read_once_for_the_keys_after_its_question_marks() -> None:
    """The query pass's match at the first key spans its value, so the ``?a=`` keys in it are not tried
    again (each read the value to its end: 22 s for 64 kB); a value with a ``+`` between digits is read."""
    text = "1+1 " + "?a=" * 2000
    assert [match.span() for match in detectors_decode._QUERY_VALUE.finditer(text)] == [(5, len(text))]
    assert detectors_decode.decoded(text) is None
    assert redact_text(text) == (text, 0)
    assert redact_text("?a=?b=4111+1111+1111+1111?a=?a=") == ("?a=?b=<CREDIT_CARD>?a=?a=", 1)


def _digit_corpus() -> list[str]:
    """Texts of digit groups, separators and what may come before them (seeded)."""
    rng = random.Random(1818)
    pieces = ["4111", "1111", "123", "45", "6789", "415", "555", "0100", "(415)", "+1", "+44", "020", "7946", "0958",
              "10.0.0.1", "fe80::1", "ab:cd::1", "GB82", "WEST", "1234", "5698", "7654", "32", "2024-05-01", "12:30",
              " ", " ", " ", "-", ".", "_", "a", "x", ":", ";", "#", "(", "\u00a0", "\u2011", "\u0664\u0661\u0661\u0661",
              "\uff27\uff22\uff18\uff12", "\uff14\uff11\uff11\uff11"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(2, 12))) for _ in range(4000)] + [
        "a123-45-6789", "x123 45 6789", "id_123\u201145\u20116789", "x_4111111111111111", "#+1 415 555 0100"]


@pytest.mark.parametrize("ascii_classes", [True, False])
def test_every_digit_kinds_match_starts_where_the_digit_pass_tries_them(ascii_classes: bool) -> None:
    """``_DIGIT_START``, tested before the kinds' alternatives, holds where each kind's own pattern
    matches: the digit pass finds what they do."""
    flags = re.ASCII if ascii_classes else 0
    start = re.compile(detectors._DIGIT_START, flags)
    kinds = [re.compile(detectors._PATTERNS[kind], flags) for kind in detectors._DIGIT_KINDS]
    starts = 0
    for text in _digit_corpus():
        if ascii_classes and not text.isascii():
            continue
        for pattern in kinds:
            for match in pattern.finditer(text):
                starts += 1
                assert start.match(text, match.start()) is not None, (pattern.pattern[:20], text)
    assert starts > 200


def test_a_span_of_held_hex_values_is_redacted_unchanged() -> None:
    rng = random.Random(5)
    attributes = {f"langfuse.observation.metadata.k{i}": hold("".join(rng.choice("0123456789abcdef") for _ in range(
        80_000)), 64 * 1024) for i in range(3)}
    redacted, report = Redactor().redact_attributes(attributes, "span")
    assert report.replacements == 0
    assert redacted == attributes
