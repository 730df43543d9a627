"""The validators of ``detectors``' matches, by kind: IBAN (mod-97, its country's length), SSN
(the numbers never issued), IP address (``ipaddress``), Basic credentials (decoded), phone (a national
number's lengths); a card's are ``_cards``'s. Each is called for a match only."""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable

from ._cards import card_ok
from ._digit_shape import has_digit_shape
from ._iban_registry import IBAN_LENGTHS, IBAN_LIKE
from .detectors_decode import HYPHENS, WIDE_SPACES, as_ascii

_DASHES = f"\u2013{HYPHENS}"


def _iban_ok(text: str) -> bool:
    return _ascii_iban_ok(as_ascii(text))


def _ascii_iban_ok(text: str) -> bool:
    """``_iban_ok`` of a text read ``as_ascii``."""
    compact = text.translate(_NO_SEPARATORS)
    if not 15 <= len(compact) <= 34:
        return False
    of_its_length = IBAN_LENGTHS.get(compact[:2].upper()) == len(compact)
    if not compact[:2].isupper() and not (of_its_length and has_digit_shape(text)):
        return False  # in lower case: found by its digits alone, and of its country's length
    if compact == text and not (of_its_length or compact[:2] in IBAN_LIKE):
        # in one word, a code in capitals (a ULID) passes mod-97 one time in 97; an IBAN typed with a
        # character too many or too few almost never does, so its country's length loses nothing
        return False
    if not of_its_length and any(map(text.__contains__, _DOTS_AND_DASHES)):
        return False  # in groups separated by dots, en dashes or hyphens (an id, a serial, a version): as its country's
    number = (compact[4:] + compact[:4]).translate(_BASE36)  # (in C: a character at a time in Python cost 5 µs)
    return number.isascii() and number.isdigit() and int(number) % 97 == 1


def iban_in(text: str) -> tuple[str, str]:
    """The longest start of ``text``, cut between its groups, that is a valid IBAN (else ``text``
    itself), and what follows it."""
    spaced, read = text.translate(_AS_SPACE), as_ascii(text)  # both as long: cut where it is cut (read once)
    end = len(text)
    while " " in spaced[:end] and not _ascii_iban_ok(read[:end]):
        end = spaced.rindex(" ", 0, end)
    return (text[:end], text[end:]) if _ascii_iban_ok(read[:end]) else (text, "")


def hidden_at(text: str, after: str) -> int:
    """Where an IBAN candidate ``text`` in which ``iban_in`` found none is searched again: at its first run of
    digit groups that holds a card's 13 digits at least, or ends it and goes on in ``after`` (what follows
    it), as a card's does ("x DE89 4111 1111 1111 1111"); 0 if there is none (a code of letters and short
    numbers, "AB12 3456 7890 ...", is skipped whole: searched again from each run, a 64 kB one took twice
    as long), or if it is of its country's length and they are no card of a usual length (15, 16 or 19
    digits: "AT61 4111 1111 1111 1111" is one): a mistyped IBAN, kept."""
    continued = _CONTINUED.match(after) is not None
    for run in _DIGIT_RUN.finditer(text, 4):
        if (continued and run.end() == len(text)) or len(run.group().translate(_NO_SEPARATORS)) >= 13:
            at = run.start()
            break
    else:
        return 0
    compact = as_ascii(text).translate(_NO_SEPARATORS)
    if IBAN_LENGTHS.get(compact[:2].upper()) == len(compact) and not (
            len(compact) - len(text[:at].translate(_NO_SEPARATORS)) in (15, 16, 19) and card_ok(text[at:])):
        return 0
    return at


#: Separators of digit groups taken out, or made ASCII spaces.
_NO_SEPARATORS = dict.fromkeys(map(ord, f" .{WIDE_SPACES}{_DASHES}"))
_AS_SPACE = dict.fromkeys(map(ord, f".{WIDE_SPACES}{_DASHES}"), " ")
#: A run of digit groups (a card's, after an IBAN-like prefix), and a group going on after a candidate
_DIGIT_RUN = re.compile(rf"(?<=[ .{WIDE_SPACES}{_DASHES}])\d++(?:[ .{WIDE_SPACES}{_DASHES}]\d++)*+")
_CONTINUED = re.compile(rf"[ .{WIDE_SPACES}{_DASHES}]\d")
_DOTS_AND_DASHES, HYPHEN_CHARS = tuple(f".{_DASHES}"), tuple(HYPHENS)
#: Each letter as its value in base 36 (mod-97 reads "A" as 10)
_BASE36 = {ord(letter): str(value) for value, letter in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10)} | {
    ord(letter): str(value) for value, letter in enumerate("abcdefghijklmnopqrstuvwxyz", 10)}


def _ssn_ok(text: str) -> bool:
    text = as_ascii(text)
    area, group, serial = text[:3], text[4:6], text[7:]
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _ip_ok(text: str) -> bool:
    """An IP address; a dotted quad's octets zero-padded to three digits too (``010.001.002.003``).
    Never one group of fewer than four hex digits, ``::`` and one group at most (``1::2``, ``a::b``,
    ``a::``: a Python slice, a C++ or Rust path): an address so short starts as ``fe80::``,
    ``ff02::`` or ``2001::`` do."""
    text = as_ascii(text)
    head, compressed, tail = text.partition("::")
    if compressed and len(head) < 4 and ":" not in head and ":" not in tail:
        return False
    if (text[0] == "0" or ".0" in text) and (octets := text.split(".")) and len(octets) == 4 and {
            len(octet) for octet in octets if octet[0] == "0" and len(octet) > 1} == {3}:
        text = ".".join(str(int(octet)) for octet in octets)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _basic_ok(text: str) -> bool:
    """Base64 of printable ``user:password`` text, as HTTP Basic credentials are."""
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError both are
        return False
    return ":" in decoded and decoded.isprintable()


def _phone_ok(text: str) -> bool:
    """An international number (its ``+``, also in brackets), else one of a national number's lengths."""
    return text[0] == "+" or text[:2] == "(+" or 10 <= len(_NOT_DIGITS.sub("", text)) <= 12


_NOT_DIGITS = re.compile(r"\D")
VALIDATORS: dict[str, Callable[[str], bool]] = {
    "IBAN": _iban_ok, "US_SSN": _ssn_ok, "IP_ADDRESS": _ip_ok, "CREDIT_CARD": card_ok, "BASIC_AUTH": _basic_ok,
    "PHONE": _phone_ok,
}
