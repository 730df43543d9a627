"""What ``detectors.redact_text`` reads through before it searches: digits, full-width letters and
the separators of digit groups written as JSON escapes (``4111\\u00a01111``, full-width digits as
``json.dumps`` writes them), a no-break space between digits as an HTML reference
(``4111&nbsp;1111``), ``%20`` beside a digit (``4111%201111``) and ``%2B`` before one, a ``+``
between digits in a query string's value, a full-width plus (an IME's) before a digit, an ``&``
escaped before an HTML reference (``\\u0026lt;``, as Go's JSON encoder writes it) and the brackets
of a spelled-out "at" or "dot" as numeric references (``&#60;at&#62;``). The text searched stays as
written unless a value in it is replaced. ``as_ascii`` reads full-width characters and digits of
any script as ASCII, for the validators."""

from __future__ import annotations

import re

#: Separators of digit groups copied from web pages and documents besides ASCII space and hyphen:
#: no-break, figure, thin, narrow no-break and zero-width spaces (an en dash is the detectors' too).
WIDE_SPACES = "\u00a0\u2007\u2009\u202f\u200b"
#: Read as a hyphen between digit groups: non-breaking hyphen, figure dash, minus sign and hyphen
#: (last, so that it can end a character class).
HYPHENS = "\u2011\u2012\u2212-"

#: Full-width (typed with an IME), Arabic-Indic and Devanagari digits as JSON escapes, as
#: ``json.dumps`` writes them (``ensure_ascii``: most instrumentations serialise so), full-width
#: letters, dot and colon (an IBAN's, an IP address's), the separators of digit groups after a digit
#: or bracket, escaped so too (``4111\u00a01111``), a full-width plus before a digit, and an ``&``
#: before an HTML reference (starting with its literal ``\u``, the expression is searched for as
#: fast as a substring)
_ESCAPED = re.compile(r"\\u(?:(?:[fF]{2}1|06[6fF]|096)[0-9a-fA-F]|[fF]{2}(?:0[eE]|[2-5][0-9a-fA-F])"
                      r"|(?<=[\d)]\\u)(?:00[aA]0|200[79bB]|201[123]|202[fF]|2212)(?=\d|\\u(?:[fF]{2}1|06[6fF]|096))"
                      r"|[fF]{2}0[bB](?=\d|\\u[fF]{2}1)"  # (and a full-width plus before a digit)
                      r"|0026(?=#\d{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z]{2,8};))")
_FULL_WIDTH_LETTERS = "".join(map(chr, (*range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B))))
_UNESCAPED = frozenset(f"{WIDE_SPACES}{HYPHENS}\u2013&\uff0e\uff1a{_FULL_WIDTH_LETTERS}")
#: A no-break space between digits as an HTML reference (``4111&nbsp;1111``), and a full-width plus (an IME's)
_NBSP_REFERENCE = re.compile(r"&(?<=\d&)(?:nbsp|#160|#[xX]0*[aA]0);(?=\d)")
_FULL_WIDTH_PLUS = re.compile(r"\uff0b(?=\d)")
#: The brackets of a spelled-out "at" or "dot" as numeric references, read as named ones
_BRACKET_REFERENCES = re.compile(r"(?:&#0*60;|&#[xX]0*3[cC];)((?i:at|dot))(?:&#0*62;|&#[xX]0*3[eE];)")
#: ``%20`` beside a digit (a URL's space: ``4111%201111``, ``GB82%20WEST``), ``%2B`` before one (a
#: plus); like ``_NBSP_REFERENCE`` and ``_PLUS``, it starts with a literal: searched for as fast as a substring
_URL_ENCODED = re.compile(r"%2(?:0(?:(?<=\d%20)(?=[A-Za-z0-9])|(?<=[A-Za-z]%20)(?=\d))|[bB](?=\d))")
#: A query string's value (or a form's) holding a ``+`` between digits: a space there (``_plus_read``).
#: Each key's value is read whole, holding one or not: a key after a ``?`` in a value holding none has what
#: is left of it, holding none either (a 32 kB run of ``?a=``, each read to its end as a value, took 4 s)
_QUERY_VALUE = re.compile(r"(?:^|(?<=[?&]))[^\s=&#?]+=(?P<plus>[^\s&#]*?\d\+\d)?[^\s&#]*+")
_PLUS = re.compile(r"\+(?<=\d\+)(?=\d)")
#: Full-width forms of ASCII characters (U+FF01 to U+FF5E), as ASCII
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
#: A decimal digit of a script other than ASCII (``\d`` takes what ``str.isdecimal`` does): looked for in
#: C first, so that a text holding none is not read a character at a time in Python (an IBAN candidate's
#: no-break spaces or en dashes, read so some ten times a match: 125 ms for a 64 kB run of ``AB12\u00a0``)
_OTHER_DIGIT = re.compile(r"[^\D0-9]")


def _unescape(match: re.Match[str]) -> str:
    char = chr(int(match[0][2:], 16))
    if char == "\uff0b":
        return "+"
    return char if char.isdecimal() or char in _UNESCAPED else match[0]


def _plus_read(match: re.Match[str]) -> str:
    """A ``_QUERY_VALUE`` match with its ``+`` between digits read as spaces, if its value holds one."""
    return match[0] if match["plus"] is None else _PLUS.sub(" ", match[0])


def decoded(text: str) -> str | None:
    """``text`` with the digits, letters and separators ``detectors.redact_text`` reads as such
    unescaped; None if it has none."""
    read = _ESCAPED.sub(_unescape, text) if "\\u" in text and _ESCAPED.search(text) is not None else text
    if "&" in read and ";" in read:
        if "&nbsp;" in read or "&#" in read:
            read = _NBSP_REFERENCE.sub("\u00a0", read)
        if "&#" in read:
            read = _BRACKET_REFERENCES.sub(r"&lt;\1&gt;", read)
    if "\uff0b" in read:
        read = _FULL_WIDTH_PLUS.sub("+", read)
    if "%2" in read:
        read = _URL_ENCODED.sub(lambda match: " " if match[0] == "%20" else "+", read)
    if "+" in read and "=" in read and _PLUS.search(read) is not None:
        read = _QUERY_VALUE.sub(_plus_read, read)
    return None if read == text else read


def as_ascii(text: str) -> str:
    """``text`` with full-width characters and decimal digits of any script as ASCII (as long)."""
    if text.isascii():
        return text
    text = text.translate(_FULL_WIDTH)
    if text.isascii() or _OTHER_DIGIT.search(text) is None:
        return text
    return "".join(str(int(char)) if char.isdecimal() else char for char in text)
