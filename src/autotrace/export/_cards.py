"""Payment card numbers as ``detectors`` checks a candidate: 13 to 19 digits, Luhn-valid, starting
as an issuer's do, and, written in groups, in a layout cards are printed in. A candidate is any run
of digits and separators, so it may hold a card after a number (``qty 12 4111 1111 1111 1111``) or
before one (``4111 1111 1111 1111 12/27``): ``card_in`` finds it there. A run of numbers (ids, token
ids, years, a matrix printed by numpy) seldom has a card's layout, and a layout of fours among more
fours (``7081 8341 9434 4329 8170 8895 9675``: token ids) is a list (``in_a_list``)."""

from __future__ import annotations

import re

from .detectors_decode import WIDE_SPACES, as_ascii

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


#: The last candidate ``card_ok`` judged, and its answer: ``card_in`` and the validator ask about
#: the same match one after the other (a tuple replaced whole: safe across threads).
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


#: What separates a card from a number beside it: a hyphen or a dot joins them (a range, a version)
_SPACES = frozenset(f" {WIDE_SPACES}")


def card_in(value: str) -> tuple[str, str, str]:
    """``value`` (digits in groups) cut into what is before the longest run of its groups that is a
    card (the first such, apart from the rest by spaces or by its own separator), that card, and
    what is after it; ``("", value, "")`` if none is (or all of it is)."""
    spans = [found.span() for found in _GROUP.finditer(value)]
    sizes = tuple(end - start for start, end in spans)
    starts = [first for first, size in enumerate(sizes) if size in (4, 6) or 13 <= size <= 19]  # (layouts' first)
    if len(spans) < 2 or not starts or (_laid_out(sizes) and card_ok(value)):
        return "", value, ""
    for count in range(len(spans) - 1, 0, -1):
        for first in starts:
            if first + count > len(spans) or not (
                    _laid_out(sizes[first:first + count]) if count > 1 else 13 <= sizes[first] <= 19):
                continue
            start, end = spans[first][0], spans[first + count - 1][1]
            own = value[spans[first][1]] if count > 1 else ""
            if {value[start - 1:start], value[end:end + 1]} - {"", own} <= _SPACES and card_ok(value[start:end]):
                return value[:start], value[start:end], value[end:]
    return "", value, ""


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
