"""The cheap trigger of ``detectors``' digit-based kinds (IBAN, card, SSN, phone, IP address).

Every match of one of them contains one of these shapes: six digits at most two separators apart
(cards, SSNs, phones, an IBAN in lower case: checked), a dotted quad's middle, an IBAN's country (in
capitals) and check digits, or an IPv6 colon group (found from its colons). Plain numbers ("order
12", "0.2") have none of them, so the costly digit pass runs only on text that can hold such a value.
"""

from __future__ import annotations

import re

from .detectors_decode import HYPHENS, WIDE_SPACES

_DASHES = f"\u2013{HYPHENS}"
#: Scripts written with no space between words (Thai but its digits, kana, CJK ideographs, Hangul, half-width katakana):
#: a value glued to their letters ("卡号4111...", "密钥是sk-...") starts and ends a word all the same, so
#: the detectors' boundaries (``detectors._IN_A_WORD``, ``_cards``, ``_digit_context``) leave them out of ``\w``
GLUED_SCRIPTS = "\u0e00-\u0e4f\u0e5a-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
IN_A_WORD = rf"[^\W{GLUED_SCRIPTS}]"  # a letter, digit or "_" of a script that spaces its words
#: An IPv6 address's hex digit and colon, full-width too (typed with an IME)
HEX = "[0-9A-Fa-f\uff10-\uff19\uff21-\uff26\uff41-\uff46]"
COLON = "[:\uff1a]"
#: On other than ASCII text (digits of any script) the shapes are one pattern:
DIGIT_SHAPE = re.compile(r"\d(?:" + f"[ .()/+\uff0e{WIDE_SPACES}{_DASHES}]{{0,2}}\\d" * 5
                         + r"|[.\uff0e]\d{1,3}[.\uff0e]\d|(?<=[A-Z\uff21-\uff3a]{2}\d)\d)")


def _shape_classes() -> bytes:
    """A ``bytes.translate`` table giving each ASCII character its class in the digit shapes: a
    digit ``0``, a dot ``.``, another separator of digit groups ``,``, a capital ``A``, else ``x``."""
    table = bytearray(b"x" * 256)
    for char in b"0123456789":
        table[char] = ord("0")
    for char in b" ()/+-":
        table[char] = ord(",")
    table[ord(".")] = ord(".")
    for char in range(ord("A"), ord("Z") + 1):
        table[char] = ord("A")
    return bytes(table)


#: On ASCII text the same shapes are found in the text's classes with a few passes in C instead:
#: a regular-expression search costs hundreds of instructions at every character.
_SHAPE_CLASSES = _shape_classes()
_DOTTED_MIDDLE = re.compile(rb"0\.0{1,3}\.0")
COLON_GROUP = re.compile(r":[0-9A-Fa-f]{0,4}:")  # (a literal first: searched for as fast as a substring)
_WIDE_COLON_GROUP = re.compile(f"{COLON}{HEX}{{0,4}}{COLON}")  # full-width too


def has_digit_shape(text: str) -> bool:
    """Whether ``text`` holds one of the digit shapes (see the module's docstring)."""
    if text.isascii():
        classes = text.encode().translate(_SHAPE_CLASSES)
        digits = classes.count(b"0")  # every shape holds two digits at least
        found = digits > 1 and (
            b"AA00" in classes
            or (digits > 2 and b"0." in classes and _DOTTED_MIDDLE.search(classes) is not None)
            # three separators in a row end a group (one becomes a non-separator); once the
            # separators are gone, six digits at most two separators apart are six in a row
            or (digits > 5 and b"000000" in classes.replace(b".", b",").replace(b",,,", b"x").replace(b",", b"")))
    else:
        found = DIGIT_SHAPE.search(text) is not None
    return found or (":" in text and COLON_GROUP.search(text) is not None) or (
        "\uff1a" in text and _WIDE_COLON_GROUP.search(text) is not None)
