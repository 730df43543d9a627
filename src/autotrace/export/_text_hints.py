"""The cheap tests ``detectors.redact_text`` makes of every text before its passes: which hints of a
secret or an address it holds (substring tests, a character first), and whether the patterns
compiled with ASCII classes read it as the Unicode ones do."""

from __future__ import annotations

import re

from ..bounds import HELD_MARK
from . import _secret_patterns as _secrets


def ascii_classes(text: str) -> bool:
    """Whether the patterns compiled with ASCII classes (``detectors._ByText``) find in ``text`` what the Unicode
    ones do: on ASCII text, and on a value held past the size limit (``bounds.hold``): ASCII but for
    its ``HELD_MARK``, whose ellipsis no class of either kind takes (no letter, digit nor space), unless
    it holds one of the separators ``\\s`` takes in Unicode only (a held value of 64 kB searched with
    the Unicode classes took twice as long)."""
    if text.isascii():
        return True
    return (text.endswith(HELD_MARK) and text[:-len(HELD_MARK)].isascii()
            and not contains_any(text, _UNICODE_SPACES))


_UNICODE_SPACES = ("\x1c", "\x1d", "\x1e", "\x1f")


def contains_any(text: str, needles: tuple[str, ...]) -> bool:
    """Whether ``text`` contains one of ``needles``: a plain loop, as ``any()`` over a generator
    costs half as much again, and this runs on every content value."""
    for needle in needles:  # noqa: SIM110
        if needle in text:
            return True
    return False


def plain_hint(text: str) -> bool:
    """``contains_any(text, detectors._PLAIN_HINTS)``, each longer hint after a one-character test of a letter
    it holds that prose seldom does: a substring test of several characters costs ten times as much."""
    return ("@" in text or "_" in text or ("-" in text and ("k-" in text or _secrets.dash_hint(text)))
            or ("earer" in text and ("earer " in text or "earer\u3000" in text or "earer%20" in text or glued_bearer(text)))
            or ("R" in text and "EARER " in text)
            or "asic " in text or ("/" in text and "hooks" in text and contains_any(text, _secrets.WEBHOOK_HINTS))
            or ("J" in text and "eyJ" in text) or ("x" in text and "xox" in text)
            or ("A" in text and ("AKIA" in text or "ASIA" in text or "AIza" in text))
            or ("Y" in text and "PRIVATE KEY" in text) or ("9" in text and "ya29." in text)
            or ("G" in text and "SG." in text))


#: "Bearer" and a letter of another script glued to it ("Bearer令牌abc123...": ``detectors``' BEARER_TOKEN)
_GLUED_BEARER = re.compile("[Bb]earer[^\x00-\x7f\\s]")


def glued_bearer(text: str) -> bool:
    """Whether ``text`` holds "Bearer" with a character of another script glued to it (never in ASCII text)."""
    return not text.isascii() and _GLUED_BEARER.search(text) is not None


def encoded_at(text: str) -> bool:
    """Whether ``text`` holds an "@" written otherwise (URL-encoded, escaped, an HTML reference,
    full-width): one character first, ten times faster than a longer one (and the full-width one
    costs nothing on ASCII text)."""
    return (("%" in text and ("%40" in text or "%2540" in text))
            or ("\\" in text and ("\\u0040" in text or "\\uff20" in text))
            or ("&" in text and ("&#" in text or "&commat;" in text)) or "\uff20" in text)

