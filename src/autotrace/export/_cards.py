"""Payment card numbers as ``detectors`` checks a candidate: 13 to 19 digits, Luhn-valid, starting
as an issuer's do, and, written in groups, in a layout cards are printed in. A candidate is a whole
run of digits and separators, so it may hold cards after a number (``ref 12345 4111 1111 1111 1111``)
or before one (``4111 1111 1111 1111 12/27``): ``cards_in`` finds them there. A run of numbers (ids, token
ids, years, a matrix printed by numpy) seldom has a card's layout, and a layout of fours among more
fours (``7081 8341 9434 4329 8170 8895 9675``: token ids) is a list (``in_a_list``)."""

from __future__ import annotations

import re
from collections.abc import Callable

from .detectors_decode import HYPHENS, WIDE_SPACES, as_ascii

_GROUP = re.compile(r"\d++")
#: Layouts besides groups of four (the last of one to four): Amex's, Diners', 13-digit Visa's, 19-digit UnionPay's
_LAYOUTS = ((4, 6, 5), (4, 6, 4), (4, 3, 3, 3), (6, 13))


def _laid_out(sizes: tuple[int, ...]) -> bool:
    return sizes in _LAYOUTS or (len(sizes) > 3 and set(sizes[:-1]) == {4} and sizes[-1] <= 4)


#: A digit's Luhn value when doubled (its digits summed).
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn(digits: str) -> bool:
    """The Luhn check of ASCII ``digits``: every second digit from the right doubled."""
    return (sum(map(int, digits[-1::-2])) + sum(map(_DOUBLED.__getitem__, map(int, digits[-2::-2])))) % 10 == 0


def _issued(digits: str) -> bool:
    """Whether ``digits`` start as a payment card's do (ISO/IEC 7812 issuer ranges): never with 0; with
    1 only UATP's (15 digits: else a time in epoch milli-, micro- or nanoseconds); with 2 only Mir's
    (2200-2204) and Mastercard's (2221-2720: else a year); with 8 only RuPay's (81, 82); with 9 only
    Troy's (9792, 16 digits: else an ISBN-13 or another national number)."""
    first, length = digits[0], len(digits)
    if first in "34567":
        return True
    if first == "2":
        return "2200" <= digits[:4] <= "2204" or "2221" <= digits[:4] <= "2720"
    if first == "1":
        return length == 15
    if first == "8":
        return digits[1] in "12"
    return first == "9" and length == 16 and digits.startswith("9792")


#: The last candidate ``card_ok`` judged, and its answer: ``cards_in`` and ``card_ok`` callers may ask about
#: the same value one after the other (a tuple replaced whole: safe across threads).
_last: tuple[str, bool] = ("", False)


def card_ok(text: str) -> bool:
    """A payment card number: 13 to 19 digits (of any script), Luhn-valid, an issuer's, and in groups
    only in a card's layout."""
    global _last
    last = _last
    if last[0] == text:
        return last[1]
    groups = _GROUP.findall(as_ascii(text))
    digits = "".join(groups)
    found = (13 <= len(digits) <= 19 and (len(groups) == 1 or _laid_out(tuple(map(len, groups))))
             and _issued(digits) and _luhn(digits))
    _last = (text, found)
    return found


#: What may separate a card from a number beside it in one run of groups: a space, or the card's own
#: separator (a hyphen joins numbers otherwise: a range, ``1-4111111111111111``); a card in one group
#: after an id of four digits or more, any separator of groups (``order#98765-4111111111111111``)
_SPACES = frozenset(f" {WIDE_SPACES}")
_SEPARATORS = frozenset(f" {WIDE_SPACES}\u2013{HYPHENS}")
_AN_ID = 4
#: What a run's last group is part of when one of these follows it (a word, a hyphenated or decimal number)
_GLUED = re.compile(rf"[^\W_]|[{HYPHENS}]|[.,]\d")
_MOST_GROUPS = 5  # of a card's layouts (four fours and a three)


def cards_in(text: str, start: int, end: int, keep: Callable[[int, int], bool]) -> list[tuple[int, int]]:
    """Where the cards are in the run of digit groups ``text[start:end]``, left to right: from each
    group, the longest run of groups that is a card (``card_ok``), apart from the numbers beside it
    as ``_SPACES`` and ``_SEPARATORS`` say, never with a last group glued to what follows the run,
    and that ``keep`` (its context) accepts. Each group is tried a bounded number of times."""
    spans = [found.span() for found in _GROUP.finditer(text, start, end)]
    if _GLUED.match(text, end):
        spans.pop()
    sizes = [stop - at for at, stop in spans]
    found: list[tuple[int, int]] = []
    first = 0
    while first < len(spans):
        size = sizes[first]
        for count in range(min(_MOST_GROUPS, len(spans) - first), 0, -1) if size in (4, 6) or 13 <= size <= 19 else ():
            if not (13 <= sum(sizes[first:first + count]) <= 19
                    and (count == 1 or _laid_out(tuple(sizes[first:first + count])))):
                continue
            begin, stop = spans[first][0], spans[first + count - 1][1]
            apart = _SPACES if count == 1 else _SPACES | {text[spans[first][1]]}
            after_an_id = count == 1 and first > 0 and sizes[first - 1] >= _AN_ID
            if ((first == 0 or text[begin - 1] in (_SEPARATORS if after_an_id else apart))
                    and (first + count == len(spans) or text[stop] in apart)
                    and card_ok(text[begin:stop]) and keep(begin, stop)):
                found.append((begin, stop))
                first += count
                break
        else:
            first += 1
    return found


_FOUR = re.compile(r"(?<!\d)\d{4}(?!\d)")


def in_a_list(value: str, text: str, start: int, end: int) -> bool:
    """Whether the card ``value`` at ``text[start:end]``, in groups of four, has three more groups of four
    beside it, each after the separator its own groups have (a list of numbers: years, ids)."""
    if not (text[max(0, start - 2):max(0, start - 1)].isdigit() or text[end + 1:end + 2].isdigit()):
        return False  # no group right beside it (one separator away): the common case, decided at once
    spans = [found.span() for found in _GROUP.finditer(value)]
    if len(spans) < 4 or {b - a for a, b in spans} != {4}:
        return False
    separator, more = value[spans[0][1]], 0
    for at, step, gap in ((start - 5, -5, 4), (end + 1, 5, -1)):  # (where a group's separator is from it)
        while more < 3 and at >= 0 and text[at + gap:at + gap + 1] == separator and _FOUR.match(text, at):
            more += 1
            at += step
    return more == 3
