"""What ``detectors.redact_text`` reads through before it searches: digits and the separators of
their groups written as JSON escapes (``4111\\u00a01111``, full-width digits as ``json.dumps``
writes them), a no-break space between digits as an HTML reference (``4111&nbsp;1111``), and a
full-width plus (an IME's) before a digit. The text searched stays as written unless a value in it
is replaced."""

from __future__ import annotations

import re

#: Separators of digit groups copied from web pages and documents besides ASCII space and hyphen:
#: no-break, figure, thin and narrow no-break spaces (an en dash is the detectors' too).
WIDE_SPACES = "\u00a0\u2007\u2009\u202f"


#: Full-width (typed with an IME), Arabic-Indic and Devanagari digits as JSON escapes, as
#: ``json.dumps`` writes them (``ensure_ascii``: most instrumentations serialise so)
#: and the separators of their groups after a digit or bracket, escaped so too (``4111\u00a01111``)
#: (starting with its literal ``\u``, the expression is searched for as fast as a substring)
_ESCAPED_DIGIT = re.compile(r"\\u(?:(?:[fF]{2}1|06[6fF]|096)[0-9a-fA-F]"
                            r"|(?<=[\d)]\\u)(?:00[aA]0|200[79]|202[fF]|2013)(?=\d|\\u(?:[fF]{2}1|06[6fF]|096))"
                            r"|[fF]{2}0[bB](?=\d|\\u[fF]{2}1))")  # (and a full-width plus before a digit)
_UNESCAPED_SEPARATORS = frozenset(WIDE_SPACES + "\u2013")
#: A no-break space between digits as an HTML reference (``4111&nbsp;1111``), and a full-width plus (an IME's)
_NBSP_REFERENCE, _FULL_WIDTH_PLUS = re.compile(r"(?<=\d)&(?:nbsp|#160|#[xX]0*[aA]0);(?=\d)"), re.compile(r"\uff0b(?=\d)")


def _unescape(match: re.Match[str]) -> str:
    char = chr(int(match[0][2:], 16))
    return "+" if char == "\uff0b" else char if char.isdecimal() or char in _UNESCAPED_SEPARATORS else match[0]


def decoded(text: str) -> str | None:
    """``text`` with the digits and separators ``detectors.redact_text`` reads as such unescaped;
    None if it has none."""
    read = _ESCAPED_DIGIT.sub(_unescape, text) if _ESCAPED_DIGIT.search(text) is not None else text
    if "&" in text:
        read = _NBSP_REFERENCE.sub("\u00a0", read)
    if "\uff0b" in read:
        read = _FULL_WIDTH_PLUS.sub("+", read)
    return None if read == text else read
