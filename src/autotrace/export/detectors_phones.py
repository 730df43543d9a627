"""Phone numbers in no phone shape, found where a word names them (``phone: 4155550132``): the
digit pass of ``detectors`` finds those written as phones are."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ._digit_context import in_a_hex_id as _in_a_hex_id
from ._digit_shape import IN_A_WORD
from .detectors_assigned import occurrences as _occurrences
from .detectors_decode import HYPHENS as _HYPHENS
from .detectors_decode import WIDE_SPACES as _WIDE_SPACES

_DASHES = f"\u2013{_HYPHENS}"  # as ``detectors`` reads a phone's groups
_NOT_DIGITS = re.compile(r"\D")

#: Phone words of scripts with no spaces between words (Chinese, Japanese, Korean, Thai: ``电话13800138000``),
#: found wherever they are (no word boundary before them); also escaped as ``json.dumps`` writes them (looked
#: for only in text holding an escape)
_GLUED_WORDS = ("\u7535\u8bdd", "\u96fb\u8a71", "\u624b\u673a", "\u624b\u6a5f", "\u643a\u5e2f", "\uc804\ud654",
                "\ud734\ub300\ud3f0", "\ud578\ub4dc\ud3f0", "\u0e42\u0e17\u0e23")  # 电话 電話 手机 手機 携帯 전화 휴대폰 핸드폰 โทร
_ESCAPED_GLUED_WORDS = tuple("".join(f"\\u{ord(char):04x}" for char in word) for word in _GLUED_WORDS)
#: A number in no phone shape (``4155550132``, ``555-0132``, ``0351 12345``: ids, counts and amounts
#: look the same) is one only where a word names it (``phone:``, ``call me at``, ``Tel.``, ``Handy``, ``portable``...),
#: within a few words before it. Where those words start (found in lower case: a regular expression
#: scanning the whole text would cost as much again as the digit pass), the expression is tried:
#: (Spanish, Portuguese, Italian and Dutch ones too: ``teléfono``, ``telefone``, ``celular``, ``móvil``...;
#: an accent also escaped as in JSON text)
_PHONE_WORDS = ("phone", "tel", "mobil", "cell", "celular", "movil", "m\\u00f3vil", "t\\u00e9l", "fax", "whatsapp",
                "sms", "handy", "portable", "call me", "call us", "text me", "text us", "t\u00e9l", "m\u00f3vil",
                *_GLUED_WORDS)
_ASCII_PHONE_WORDS = tuple(word for word in _PHONE_WORDS if word.isascii())  # an ASCII text holds no other
_E, _O = r"(?:[ée]|\\u00e9)", r"(?:[óo]|\\u00f3)"
_AFTER_PHONE_WORD = re.compile(
    rf"(?P<prefix>(?:\b(?:(?:tele|cell)[ -]?phone|phone|tel|t{_E}l{_E}phone|t{_E}l|telefon[eo]?|tel{_E}fono|telefoon"
    rf"|mobile?|celular|cellulare|m{_O}vil|fax|whatsapp|sms|handy|portable|(?:call|text) (?:me|us))\b"
    rf"|{'|'.join(map(re.escape, (*_GLUED_WORDS, *_ESCAPED_GLUED_WORDS)))})[^\d\n<>]{{0,16}}?)"
    rf"(?P<value>(?<![\d.,])\(?\d(?:[ .()/{_WIDE_SPACES}{_DASHES}]{{0,2}}\d){{6,14}})(?!{IN_A_WORD}|[.,]\d)",
    re.IGNORECASE,
)
#: What such a number never is: a date (and a time after it), a decimal, thousands in groups, more
#: digits after a 1 or a 20 than the numbers of country code 1 or 20 have (11, 12): a time in epoch
#: milliseconds, a timestamp (20240806123456)
_NOT_A_PHONE = re.compile(
    r"\d{4}([-./])\d\d?\1\d\d?(?!\d).*|\d\d?([-./])\d\d?\2(?:\d{4}|\d\d)(?:[ T]\d\d?)?|\d+[.,]\d+"
    r"|\d{1,3}(?:([ .,])\d{3})(?:\3\d{3})*|(?:1|20)\d{11,}", re.DOTALL)


def redact_named_phones(text: str) -> tuple[str, int]:
    """``text`` with the numbers a phone word names replaced (see ``_AFTER_PHONE_WORD``)."""
    pieces: list[str] = []
    done = 0
    for match in _named_numbers(text):
        value = match["value"]
        if (len(_NOT_DIGITS.sub("", value)) <= 15 and _NOT_A_PHONE.fullmatch(value) is None
                and not _in_a_hex_id(text, *match.span("value"))):
            pieces += (text[done:match.start("value")], "<PHONE>")
            done = match.end()
    return ("".join(pieces) + text[done:], len(pieces) // 2) if pieces else (text, 0)


def _named_numbers(text: str) -> Iterator[re.Match[str]]:
    """The matches of ``_AFTER_PHONE_WORD`` in ``text``, tried only where a phone word starts."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a letter whose lower case is longer (rare): positions differ
        if any(word in lowered for word in (*_PHONE_WORDS, *_ESCAPED_GLUED_WORDS)):
            yield from _AFTER_PHONE_WORD.finditer(text)
        return
    end = 0
    words = _PHONE_WORDS if not text.isascii() else _ASCII_PHONE_WORDS
    if "\\u" in text:  # (searched for only where they can be)
        words = (*words, *_ESCAPED_GLUED_WORDS)
    for start in sorted({at for word in words for at in _occurrences(lowered, word)}):
        if start >= end and (match := _AFTER_PHONE_WORD.match(text, start)) is not None:
            end = match.end()
            yield match
