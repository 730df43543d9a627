"""What a match of a digit-based kind can be part of, and is then none: a UUID or a traceparent
(a phone's or card's shape in its groups), a list of numbers (an SSN's shape in spaces, a card's in
fours); and what a phone's match after a year can follow (a month's name). Checked by ``detectors``
for a match only."""

from __future__ import annotations

import re

from ._cards import in_a_list
from ._digit_shape import IN_A_WORD
from .detectors_decode import HYPHENS as _HYPHENS
from .detectors_decode import WIDE_SPACES as _WIDE_SPACES

#: Ids whose groups can be all digits: a UUID (8-4-4-4-12 hex digits, hyphens as ``_HYPHENS`` reads
#: them) and a W3C ``traceparent`` (2-32-16-2). "…3b-0292-4192-9481-ba…" reads as a national phone
#: number, "…6f-9491-272732299146" or a parent id as a Luhn-valid card (after a word and a hyphen, as
#: "card-4111 …" is). Neither is one inside such an id.
_HEX_IDS = re.compile(
    rf"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{{8}}(?:[{_HYPHENS}][0-9A-Fa-f]{{4}}){{3}}[{_HYPHENS}][0-9A-Fa-f]{{12}}"
    r"|[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2})(?![0-9A-Fa-f])")
_LONGEST_HEX_ID = 55


def in_a_hex_id(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` lies within a UUID or a traceparent (checked only for a match; where
    no hyphen is near it, none is: a few substring tests, a tenth of the search)."""
    low, high = max(0, start - _LONGEST_HEX_ID), end + _LONGEST_HEX_ID + 1
    near = text[low:high]
    return any(hyphen in near for hyphen in _HYPHENS) and any(
        found.start() <= start and end <= found.end() for found in _HEX_IDS.finditer(text, low, high))


_IN_HEX_IDS = ("PHONE", "CREDIT_CARD")  # the kinds such an id's groups can take the shape of
KINDS = (*_IN_HEX_IDS, "US_SSN")  # the kinds ``part_of_more`` checks
#: A number or word right next to a match (not one of a script with no spaces between words: ``番号078 05 1120``),
#: or a number one separator away (a list of numbers)
_NUMBER_BEFORE = re.compile(rf"(?:\d[ .,:/{_WIDE_SPACES}{_HYPHENS}]|{IN_A_WORD}|[.,+{_HYPHENS}])\Z")
_NUMBER_AFTER = re.compile(rf"{IN_A_WORD}|[ .,:/{_WIDE_SPACES}{_HYPHENS}]\d")


def part_of_more(kind: str, value: str, text: str, start: int, end: int) -> bool:
    """Whether the match ``value`` of ``kind`` at ``text[start:end]`` is part of more: a UUID's or
    traceparent's groups (a phone, a card), a list of fours (a card: ``_cards.in_a_list``), or for an
    SSN in spaces (``123 45 6789``: only in hyphens is it one wherever it is) a list of numbers."""
    if kind == "US_SSN":
        return value[3] not in _HYPHENS and bool(
            _NUMBER_BEFORE.search(text, max(0, start - 2), start) or _NUMBER_AFTER.match(text, end))
    return kind in _IN_HEX_IDS and (
        in_a_hex_id(text, start, end) or (kind == "CREDIT_CARD" and in_a_list(value, text, start, end)))


#: A date with a month's name (English), its year and a space ending the text: "5 Dec 2026 ",
#: "December 5th, 2026 ", "Sept. 2026 "
_MONTH_DATE = re.compile(
    r"(?i:\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    rf"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?(?:[ {_WIDE_SPACES}]\d\d?(?:st|nd|rd|th)?)?,?[ {_WIDE_SPACES}]"
    rf"(?:19|20)\d\d)[ {_WIDE_SPACES}]\Z")
_LONGEST_MONTH_DATE = 24  # "September 30th, 2026 " and a character before it


def after_a_month(text: str, start: int) -> bool:
    """Whether ``text[:start]`` ends in a date with a month's name, its year and a space (a phone's
    groups after a year are part of a longer number otherwise: "ref 2026 020 7946 0958")."""
    return _MONTH_DATE.search(text[max(0, start - _LONGEST_MONTH_DATE):start]) is not None
