"""A placeholder that replaced a number in JSON text (``{"card": 4111111111111111}``) quoted, so the
text stays JSON (Langfuse shows JSON input and output as a tree, other text as it is written); so too
in JSON held in one of its strings (a tool call's arguments: ``"{\\"card\\": <CREDIT_CARD>}"``)."""

from __future__ import annotations

import json
import re
from typing import Any

#: A placeholder (searched for by its "<": a pattern starting with a class was tried at each character)
_PLACEHOLDER = re.compile(r"<[A-Z_]+>")
#: A quote after backslashes: escaped if they are odd in number (the match's length even)
_AFTER_BACKSLASHES = re.compile(r"\\++\"")
#: How many strings deep JSON held in strings is read (each level doubles a quote's backslashes)
_MAX_DEPTH = 4


def _bare(text: str) -> tuple[list[int], bool]:
    """The ordinals (among all placeholders in ``text``) of those where JSON's parser expects a value, and
    whether one is in a string where JSON held in it may expect one. A placeholder is in a string ("a:
    <EMAIL>") after an odd number of unescaped quotes: counted from one to the next (in C), so where none
    is outside a string (the usual case: an address in a message) nothing is parsed."""
    bare: list[int] = []
    done, inside, nested, backslashes = 0, False, False, "\\" in text
    for ordinal, match in enumerate(_PLACEHOLDER.finditer(text)):
        if _last_before(text, match.start()) not in ("[", ":", ","):
            continue  # (where JSON text has no value: after no opening bracket, colon or comma)
        quotes = text.count('"', done, match.start())
        if backslashes:
            quotes -= sum(len(run) % 2 == 0 for run in _AFTER_BACKSLASHES.findall(text, done, match.start()))
        inside, done = inside ^ (quotes % 2 == 1), match.end()
        if inside:  # (JSON in a string has its quotes escaped: prose there, "contact: <EMAIL>", costs no parse)
            nested = nested or (backslashes and '\\"' in text)
        else:
            bare.append(ordinal)
    return bare, nested


def _last_before(text: str, at: int) -> str:
    """The last character of the 256 before ``at`` that is no space, nor one escaped as in a JSON string
    (indented JSON held in one: ``[\\n  <EMAIL>``); stripped from the end (in C, a regular expression
    anchored at the end was tried at each of them)."""
    window = text[max(0, at - 256):at]
    while True:
        window = window.rstrip(" \t\r\n")
        if window[-1:] not in ("n", "r", "t") or window[-2:-1] != "\\":
            return window[-1:]
        window = window[:-1].rstrip("\\")


class _Object(list):  # type: ignore[type-arg]
    """A JSON object's items as its text has them (keys that one placeholder replaced kept apart)."""

    __slots__ = ()


def _parsed(text: str) -> Any:
    """``text`` parsed as JSON, each object an ``_Object``."""
    return json.loads(text, object_pairs_hook=_Object)


def _quoted(text: str, ordinals: list[int] | set[int], quote: str = '"') -> str:
    """``text`` with the placeholders numbered ``ordinals`` between ``quote``s."""
    pieces: list[str] = []
    copied = 0
    for ordinal, match in enumerate(_PLACEHOLDER.finditer(text)):
        if ordinal in ordinals:
            pieces += (text[copied:match.start()], quote, match.group(), quote)
            copied = match.end()
    return "".join(pieces) + text[copied:]


def quote_bare_placeholders(text: str, original: str) -> str:
    """``text`` (``original`` with values replaced) with each placeholder where JSON's parser expects a
    value quoted, if ``original`` is JSON and that makes ``text`` JSON; else ``text``. So too in a string of
    it that was JSON (``_quote_nested``)."""
    bare, nested = _bare(text)
    if not bare and not nested:
        return text
    quoted = _quoted(text, bare) if bare else text
    try:
        parsed, before = _parsed(quoted), _parsed(original)
        if nested:  # placeholders in a string: perhaps bare in JSON that string holds
            quoted = _quote_nested(quoted, parsed, before)
    except (ValueError, RecursionError):  # no JSON (a JSONDecodeError is a ValueError), or nested too deep
        return text
    return quoted


def _quote_nested(text: str, parsed: Any, original: Any) -> str:
    """``text`` (JSON, ``parsed``; ``original`` parsed from what it was before values were replaced) with
    each placeholder bare in JSON held in one of its strings, which was JSON, quoted as that string's depth
    escapes a quote (``\\"`` one string down); raises if that is no JSON."""
    depths: list[int] = []
    if not _mark(parsed, original, 0, depths) or not any(depths):
        return text
    matches = list(_PLACEHOLDER.finditer(text))
    if len(matches) != len(depths):  # (keys that one placeholder replaced, read as one)
        return text
    pieces: list[str] = []
    copied = 0
    for match, depth in zip(matches, depths, strict=True):
        if depth:
            quote = "\\" * (2 ** depth - 1) + '"'
            pieces += (text[copied:match.start()], quote, match.group(), quote)
            copied = match.end()
    quoted = "".join(pieces) + text[copied:]
    json.loads(quoted)
    return quoted


def _mark(value: Any, original: Any, depth: int, depths: list[int]) -> bool:
    """Append to ``depths``, for each placeholder in ``value`` (parsed JSON, ``depth`` strings down) in the
    order of its text, how many strings down it is bare in JSON one holds (0: it is not); False where
    ``value`` and ``original`` differ in shape."""
    if isinstance(value, _Object):
        if not isinstance(original, _Object) or len(original) != len(value):
            return False
        for (key, item), (_, old) in zip(value, original, strict=True):
            depths.extend(0 for _ in _PLACEHOLDER.finditer(key))
            if not _mark(item, old, depth, depths):
                return False
        return True
    if type(value) is list:
        return isinstance(original, list) and len(original) == len(value) and all(
            _mark(item, old, depth, depths) for item, old in zip(value, original, strict=True))
    if not isinstance(value, str) or "<" not in value:
        return True
    found = sum(1 for _ in _PLACEHOLDER.finditer(value))
    marks: list[int] = []
    if depth < _MAX_DEPTH and isinstance(original, str) and value.lstrip()[:1] in ("{", "[") and original != value:
        bare, nested = _bare(value)
        if bare or nested:
            try:
                inner = _quoted(value, bare) if bare else value
                if not _mark(_parsed(inner), _parsed(original), depth + 1, marks) or len(marks) != found:
                    marks = []
                else:
                    marks = [depth + 1 if ordinal in bare else mark for ordinal, mark in enumerate(marks)]
            except (ValueError, RecursionError):  # that string was no JSON, or is none with them quoted
                marks = []
    depths.extend(marks or [0] * found)
    return True
