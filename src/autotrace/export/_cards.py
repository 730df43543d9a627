"""Payment card numbers as ``detectors`` checks a candidate: 13 to 19 digits, Luhn-valid, starting
as an issuer's do, and, written in groups, in a layout cards are printed in. A candidate is a whole
run of digits and separators, so it may hold cards after a number (``ref 12345 4111 1111 1111 1111``)
or before one (``4111 1111 1111 1111 12/27``): ``cards_in`` finds them there. A run of numbers (ids, token
ids, years, a matrix printed by numpy) seldom has a card's layout, and a layout of fours among more
fours (``7081 8341 9434 4329 8170 8895 9675``: token ids) is a list (``in_a_list``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from itertools import accumulate, repeat

from ._digit_shape import GLUED_SCRIPTS
from .detectors_decode import HYPHENS, WIDE_SPACES, as_ascii

_GROUP = re.compile(r"\d++")
#: The sizes of a card's groups, as printed (13 to 19 digits): fours (the last of one to four), Amex's,
#: Diners', 13-digit Visa's, 19-digit UnionPay's, or one group; as bytes (a size over 20 read as 20)
_LAYOUTS = frozenset(bytes(sizes) for sizes in (
    *((4, 4, 4, last) for last in range(1, 5)), *((4, 4, 4, 4, last) for last in range(1, 4)),
    (4, 6, 5), (4, 6, 4), (4, 3, 3, 3), (6, 13), *((size,) for size in range(13, 20))))
_MOST_GROUPS = 5
#: Where a run of groups (its ``_shape``) has a layout's first group: one empty match each, read in C
_LAYOUT_STARTS = re.compile(b"(?=" + b"|".join(map(re.escape, sorted(_LAYOUTS, key=len, reverse=True))) + b")")


@lru_cache(maxsize=1024)
def _counts(shape: bytes) -> tuple[int, ...]:
    """How many of the groups ``shape`` starts with are in a layout, most first (of a few shapes: cached)."""
    return tuple(count for count in range(len(shape), 0, -1) if shape[:count] in _LAYOUTS)


def _shape(sizes: list[int]) -> bytes:
    return bytes(map(min, sizes, repeat(20)))


#: A digit's Luhn value when doubled (its digits summed).
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
#: An ASCII digit's Luhn value, as is and doubled (``bytes.translate`` tables)
_VALUE, _DOUBLED_VALUE = bytes.maketrans(b"0123456789", bytes(range(10))), bytes.maketrans(b"0123456789", bytes(_DOUBLED))


def _luhn(digits: str) -> bool:
    """The Luhn check of ASCII ``digits``: every second digit from the right doubled (summed in C)."""
    encoded = digits.encode()
    return (sum(encoded[-1::-2].translate(_VALUE)) + sum(encoded[-2::-2].translate(_DOUBLED_VALUE))) % 10 == 0


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
    found = (_shape(list(map(len, groups))) in _LAYOUTS
             and _issued(digits) and _luhn(digits))
    _last = (text, found)
    return found


#: What may separate a card from a number beside it in one run of groups: a space, or the card's own
#: separator (a hyphen joins numbers otherwise: a range, ``1-4111111111111111``); a card after an id
#: (or a phone's last group) of four digits or more, any separator of groups (``order#98765-4111111111111111``,
#: ``+1 415 555 0100-4111 1111 1111 1111``)
_SPACES = frozenset(f" {WIDE_SPACES}")
_SEPARATORS = frozenset(f" {WIDE_SPACES}\u2013{HYPHENS}")
_AN_ID = 4
_A_LIST = 7  # groups of four, each after the same separator: each card among them has three more beside it
#: The groups a list's cards may leave at its start and end: two cards among random ids of four digits fill
#: a run of nine so one time in 200, of ten one in 400 (a list of a hundred never)
_LIST_EDGES = ((0, 0), (1, 0), (0, 1), (1, 1))
#: What a run's last group is part of when one of these follows it (a word, a hyphenated or decimal
#: number; a comma and a digit are a list's next value: ``4111111111111111,12/27`` in CSV), never a letter
#: of a script with no spaces between words (``卡号4111111111111111号``)
_GLUED = re.compile(rf"[^\W_{GLUED_SCRIPTS}]|[{HYPHENS}]|\.\d")
#: What a hyphen may join to a card's end all the same, to the run's end: an SSN's or a North American
#: phone number's groups in hyphens (``4111111111111111-123-45-6789``), or a card's digits, each a value
#: of its own (a hyphen and a shorter number, ``4111111111111111-5``, join one value)
_JOINED = re.compile(rf"([{HYPHENS}])(?:\d{{3}}\1\d{{2,3}}\1\d{{4}}|\d{{13,19}})")


def cards_in(text: str, start: int, end: int, in_an_id: Callable[[str, int, int], bool]) -> list[tuple[int, int]]:
    """Where the cards are in the run of digit groups ``text[start:end]``, left to right: runs of groups
    that are cards (``card_ok``), apart from the numbers beside them as ``_SPACES`` and ``_SEPARATORS``
    say, never with a last group glued to what follows the run, nor in a hex id (``in_an_id``), nor in a
    list of fours (``in_a_list``) unless cards fill the whole run (``4111 1111 1111 1111 5500 0000 0000
    0004``: two of them, not ids; random ids of four digits fill a run of eight one time in 300, of
    twelve one in 6,000), or all of it but one number of four on either side (``_LIST_EDGES``). Cards that overlap are one (``6789 4111 1111 1111 1111``: no digit of either
    left). Each group starts five candidates at most, each checked in constant time (Luhn summed in C)."""
    spans = [found.span() for found in _GROUP.finditer(text, start, end)]
    if spans and _GLUED.match(text, end):
        spans.pop()
    sizes = [stop - at for at, stop in spans]
    if len(spans) >= _A_LIST and sizes.count(4) == len(sizes) and len({text[stop] for _, stop in spans[:-1]}) == 1:
        # a list of fours (``in_a_list`` of each card in it): cards only if they fill it, one from every fourth group,
        # but for one number on either side (an order's: ``1234 4111 1111 1111 1111 5555 5555 5555 4444``)
        for lead, trail in _LIST_EDGES:
            cards = [(spans[first][0], spans[first + 3][1]) for first in range(lead, len(spans) - trail - 3, 4)]
            if (len(spans) - lead - trail) % 4 == 0 and len(cards) >= 2 - (lead + trail == 0) and all(
                    card_ok(text[begin:stop]) and not in_an_id(text, begin, stop) for begin, stop in cards):
                return cards
        return []
    shape = _shape(sizes)
    if shape in _LAYOUTS and card_ok(text[spans[0][0]:spans[-1][1]]):  # the whole run (the common case)
        begin, stop = spans[0][0], spans[-1][1]
        return [] if in_an_id(text, begin, stop) or _listed(text, start, end, begin, stop) else [(begin, stop)]
    starts = [layout.start() for layout in _LAYOUT_STARTS.finditer(shape)]
    if not starts:
        return []
    digits = as_ascii("".join(text[at:stop] for at, stop in spans))
    offsets = list(accumulate(sizes, initial=0))
    found: list[tuple[int, int]] = []
    valid: dict[int, int] = {}  # each card's first group, to its count of groups (in a list or not)
    for first in starts:
        for count in _counts(shape[first:first + _MOST_GROUPS]):
            at, to, last = offsets[first], offsets[first + count], first + count
            if not (_issued(digits[at:to]) and _luhn(digits[at:to])):
                continue
            begin, stop = spans[first][0], spans[last - 1][1]
            apart = _SPACES if count == 1 else _SPACES | {text[spans[first][1]]}
            after_an_id = first > 0 and sizes[first - 1] >= _AN_ID
            if ((first == 0 or text[begin - 1] in apart or (after_an_id and text[begin - 1] in _SEPARATORS))
                    and (last == len(spans) or text[stop] in apart or _JOINED.fullmatch(text, stop, end))
                    and not in_an_id(text, begin, stop)):
                valid.setdefault(first, count)
                if not _listed(text, start, end, begin, stop):
                    found.append((begin, stop))
    return _merged(found + _filling(valid, spans)) if valid else []


def _listed(text: str, start: int, end: int, begin: int, stop: int) -> bool:
    """``in_a_list`` of the card at ``text[begin:stop]`` among the groups of its run ``text[start:end]``
    only (an IBAN's before it are none), read from the 16 characters on each side it reads at most."""
    left = max(start, begin - 16)
    return in_a_list(text[begin:stop], text[left:min(end, stop + 16)], begin - left, stop - left)


def _filling(valid: dict[int, int], spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The cards of ``valid`` (first group to count of groups) one after another from the run's first
    group to its last, if some are (none else)."""
    cards, first = [], 0
    while first in valid:
        cards.append((spans[first][0], spans[first + valid[first] - 1][1]))
        first += valid[first]
    return cards if first == len(spans) and len(cards) > 1 else []


def _merged(cards: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``cards`` in order, those that overlap made one."""
    merged: list[tuple[int, int]] = []
    for begin, stop in sorted(cards):
        if merged and begin < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(stop, merged[-1][1]))
        else:
            merged.append((begin, stop))
    return merged


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
