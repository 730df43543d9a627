"""E-mail addresses spelled out to dodge scrapers: ``jane [at] example [dot] com``, ``jane{at}example.com``,
``jane <at> example <dot> com`` (its brackets also escaped as some JSON encoders write them:
``\\u003cat\\u003e``, or as HTML encoders and chat UIs do: ``jane&lt;at&gt;example&lt;dot&gt;com``),
``jane(AT)example.com``, ``jane AT example DOT com``, ``jane.doe at example dot com`` (brackets as
numeric references, ``&#60;at&#62;``, or their ``&`` escaped as Go's JSON encoder writes it,
``\\u0026lt;at\\u0026gt;``, are read as ``&lt;at&gt;`` by ``detectors_decode`` first).
``detectors.redact_text`` runs ``redact_spelled_emails`` when ``spelled_out`` finds one can be there.

"at" and "dot" in brackets (in lower case, capitals or capitalised), or in capitals among words
that are not all capitals, are meant so. As words otherwise (``look at the dot``, ``find us at acme
dot com``, ``VISIT US AT ACME DOT COM``, ``Meet Us At Acme Dot Com``) they are prose unless the name
before them is an address's (``jane.doe``, ``JANE99``) or a word such as "mail" or "contact" comes
just before it; and they always need a domain that is no such word and a common top-level domain.
"""

from __future__ import annotations

import re
from functools import cache

#: A character of JSON text written as an escape (``jos\\u00e9``), other than an escaped ``<`` or
#: ``>``: those are brackets here, and a name or label taking them too could be cut at each in
#: many ways (a failing match would try them all).
_ESCAPED_LETTER = r"\\u(?!003[cCeE])[0-9A-Fa-f]{4}"
#: (each read through the "\x01" ``detectors`` marks an escaped letter of Chinese, Japanese... with)
_LABEL = rf"(?:[^\W_]|{_ESCAPED_LETTER}\x01?)(?:[\w-]|{_ESCAPED_LETTER}\x01?)*"  # of a domain name, any script
_NAME_CHAR = r"(?:[\w.+\x01-]|\\(?!u003[cCeE]))"  # of a local part; a backslash: a JSON escape, as in "EMAIL"


def _bracketed(word: str) -> str:
    """``word`` (lower case, capitals or capitalised) in a pair of brackets, with a space either side
    or none."""
    words = f"{word}|{word.upper()}|{word.capitalize()}"
    return (rf" ?(?:\[(?:{words})\]|\((?:{words})\)|\{{(?:{words})\}}|<(?:{words})>|\\u003[cC](?:{words})\\u003[eE]"
            rf"|&lt;(?:{words})&gt;) ?")


_SPELLED_DOT = rf"(?:{_bracketed('dot')}| (?:dot|DOT|Dot) )"
#: It starts only where a run of a local part's characters starts, and not after a spelled dot:
#: tried from within a long run, each start would read to its end.
_NOT_AFTER_A_DOT = (r"(?<!(?i:dot)[\])}>])(?<!(?i:dot)[\])}>] )(?<!(?i:dot)\\u003[eE])(?<!(?i:dot)\\u003[eE] )"
                    r"(?<!(?i:dot)&gt;)(?<!(?i:dot)&gt; )(?<! (?i:dot) )")
_PATTERN = (
    rf"(?<![\w.+\\\x01-]){_NOT_AFTER_A_DOT}"
    rf"(?P<local>{_NAME_CHAR}+(?:{_SPELLED_DOT}{_NAME_CHAR}+)*)"
    rf"(?:(?P<bracketed>{_bracketed('at')}){_LABEL}(?:(?:\.|{_SPELLED_DOT}){_LABEL})*"
    rf"(?:\.|{_SPELLED_DOT})[^\W\d_]{{2,}}"
    r"|(?P<word> at | AT | At )(?!(?i:the|an?|my|your|our|their|his|her|its|this|that|these|those|some|any|each"
    rf"|every|all|one|least|most|first|last|home|work|noon|night)\b){_LABEL}"
    rf"(?:{_SPELLED_DOT}{_LABEL})*{_SPELLED_DOT}(?i:com|org|net|edu|gov|info|biz|io|ai|co|dev|app|eu|uk|de|fr"
    r"|nl|ch|es|ru|jp|cn|au|ca|br|se|dk|fi|pl|pt|cz|ie|nz|za|mx))\b"
)
_MAIL_WORDS = ("mail", "contact", "address", "reach", "write")
_ADDRESS_CHARACTERS = re.compile(r"[\d._+ -]")  # in a local part, and no word's (a space: spelled dots)
_JSON_ESCAPE = re.compile(r"\\u[0-9A-Fa-f]{4}")
_BRACKETS = ("[", "(", "{", "<", "\\u003", "&lt;")


@cache
def _spelled_email(ascii_text: bool) -> re.Pattern[str]:
    """The pattern, compiled when first used (ASCII classes on ASCII text: the same matches, cheaper)."""
    return re.compile(_PATTERN, re.ASCII if ascii_text else 0)


def redact_spelled_emails(text: str) -> tuple[str, int]:
    """``text`` with the addresses spelled out in it replaced by ``<EMAIL>``, and how many."""
    replaced = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal replaced
        value = match.group()
        if match["word"] and not any(bracket in value for bracket in _BRACKETS) and (
                value.isupper() or (" AT " not in value and " DOT " not in value)) and (  # words as in prose:
                _ADDRESS_CHARACTERS.search(_JSON_ESCAPE.sub("", match["local"])) is None
                and not any(word in text[max(0, match.start() - 40):match.start()].lower() for word in _MAIL_WORDS)):
            return value
        replaced += 1
        return "<EMAIL>"

    return _spelled_email(text.isascii()).sub(replace, text), replaced


def spelled_out(text: str, lowered: str | None = None) -> bool:
    """Whether ``text`` (``lowered``: in lower case, if the caller has it) can hold an address spelled
    out: a bracketed "at", or "dot" and "at" as words. A bracket's one-character test comes first:
    a longer substring test costs ten times as much, and in lower case one covers all three cases."""
    if lowered is None:
        lowered = text.lower()
    return ((")" in text and "(at)" in lowered) or ("]" in text and "[at]" in lowered)
            or ("}" in text and "{at}" in lowered) or (">" in text and "<at>" in lowered)
            or ("\\" in text and "at\\u003" in lowered) or ("&" in text and ";" in text and "&lt;at&gt;" in lowered)
            or ("dot" in lowered and " at " in lowered))
