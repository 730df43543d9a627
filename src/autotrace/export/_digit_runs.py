"""How ``detectors``' digit pass replaces its matches: as ``re.sub`` does, except that a replacement may
end before its match (an IBAN's match that read on into what follows it: searched again) or after it
(a phone's that read on into a card's groups: the card's run read whole, ``card_in_reach``; one that
took an SSN's first groups ends before them, ``phone_end``)."""

from __future__ import annotations

import re
from collections.abc import Callable

from ._cards import cards_in
from .detectors_decode import HYPHENS, WIDE_SPACES

#: A card's groups after a phone's match (a card has five at most, one of them in the phone at least)
_READ_ON = re.compile(rf"(?:[ .{WIDE_SPACES}\u2013{HYPHENS}]\d++){{1,4}}")


def card_in_reach(text: str, start: int, end: int, in_an_id: Callable[[str, int, int], bool],
                  ) -> tuple[list[tuple[int, int]], int] | None:
    """Where the phone number matched at ``text[start:end]`` took a card's groups (its pattern takes
    up to four groups after a country code: ``+1 415 555 0100 4111 1111 1111 1111``), or is joined to by
    one (``+1 415 555 0100-4111111111111111``: the card's search never starts after a number and a
    hyphen): the cards in its groups and the four after them (``_cards.cards_in``), and where those end;
    None if no card starts within the match or right after its separator."""
    more = _READ_ON.match(text, end)
    if more is None:
        return None
    cards = cards_in(text, start, more.end(), in_an_id)
    return (cards, more.end()) if cards and cards[0][0] <= end + 1 else None


#: An SSN in hyphens (one in spaces beside other numbers is none: ``_digit_context.part_of_more``)
_SSN = re.compile(rf"\d{{3}}([{HYPHENS}])\d\d\1\d{{4}}(?!\d|[{HYPHENS}]\d)")
_SSN_HEAD = 6  # "123-45": what of an SSN a phone's last groups can be


def phone_end(text: str, start: int, end: int) -> int:
    """Where the phone number matched at ``text[start:end]`` ends: before the separator of an SSN in
    hyphens whose first groups it took (``+1 415 555 0100 123-45-6789``), else at ``end``."""
    for at in range(max(start + 2, end - _SSN_HEAD), end):
        if text[at - 1] in " ." and (found := _SSN.match(text, at)) is not None and found.end() > end:
            return at - 1
    return end


def replace_all(pattern: re.Pattern[str], text: str, replace: Callable[[re.Match[str]], tuple[str, int]]) -> str:
    """``pattern.sub(...)``, ``replace`` giving each match's replacement and where the text it replaces
    ends (never at or before the match's start): the search goes on from there."""
    pieces: list[str] = []
    done = 0
    while (match := pattern.search(text, done)) is not None:
        replacement, done_at = replace(match)
        pieces += (text[done:match.start()], replacement)
        done = done_at if done_at > match.start() else max(match.end(), match.start() + 1)  # never the same again
    return "".join(pieces) + text[done:] if pieces else text
