"""A placeholder that replaced a number in JSON text (``{"card": 4111111111111111}``) quoted, so the
text stays JSON (Langfuse shows JSON input and output as a tree, other text as it is written)."""

from __future__ import annotations

import json
import re

#: A placeholder (searched for by its "<": a pattern starting with a class was tried at each character)
_PLACEHOLDER = re.compile(r"<[A-Z_]+>")
#: A quote after backslashes: escaped if they are odd in number (the match's length even)
_AFTER_BACKSLASHES = re.compile(r"\\++\"")


def quote_bare_placeholders(text: str, original: str) -> str:
    """``text`` (``original`` with values replaced) with each placeholder where JSON's parser expects a
    value quoted, if ``original`` is JSON and that makes ``text`` JSON; else ``text``. A placeholder is
    in a string ("a: <EMAIL>") after an odd number of unescaped quotes: counted from one to the next (in
    C), so where none is outside a string (the usual case: an address in a message) nothing is parsed."""
    pieces: list[str] = []
    done = copied = 0
    inside, backslashes = False, "\\" in text
    for match in _PLACEHOLDER.finditer(text):
        if text[max(0, match.start() - 256):match.start()].rstrip(" \t\r\n")[-1:] not in ("[", ":", ","):
            continue  # (where JSON text has no value: after no opening bracket, colon or comma)
        quotes = text.count('"', done, match.start())
        if backslashes:
            quotes -= sum(len(run) % 2 == 0 for run in _AFTER_BACKSLASHES.findall(text, done, match.start()))
        inside, done = inside ^ (quotes % 2 == 1), match.end()
        if not inside:
            pieces += (text[copied:match.start()], f'"{match.group()}"')
            copied = done
    if not pieces:
        return text
    quoted = "".join(pieces) + text[copied:]
    try:
        json.loads(original)
        json.loads(quoted)
    except (ValueError, RecursionError):  # no JSON (a JSONDecodeError is a ValueError), or nested too deep
        return text
    return quoted
