"""The built-in PII detectors: patterns for each kind of value and the cheap triggers that decide
which of them run on a text (a digit shape is ``_digit_shape``'s); their matches are checked by
``_validators`` (IBAN mod-97, SSN rules, IP addresses, Basic credentials decoded; a card's issuer,
layout and Luhn check, and where a card is in a run of numbers, are ``_cards``'s); addresses spelled
out are ``detectors_spelled``'s, secrets' assignments (``password=...``) ``detectors_assigned``'s,
secrets found by what names them (service token prefixes, webhook URLs, ``Authorization`` headers,
XML elements) ``_secret_patterns``'s, what a digit match can be part of ``_digit_context``'s, and
what is read through before the search (escapes, references, full-width forms) ``detectors_decode``'s.
``redact_text`` replaces what they find with a placeholder naming the kind (``<EMAIL>``); placeholders
contain no quotes or backslashes, so JSON text stays valid (one that replaced a number is quoted,
``_json_values``). ``redaction.Redactor`` applies them, and
user hooks, to every span.
"""

from __future__ import annotations

import re

from . import _digit_runs as _runs
from . import _secret_patterns as _secrets
from ._cards import cards_in as _cards_in
from ._digit_context import KINDS as _IN_CONTEXT
from ._digit_context import after_a_month as _after_a_month
from ._digit_context import in_a_hex_id as _in_a_hex_id
from ._digit_context import part_of_more as _part_of_more
from ._digit_shape import COLON as _COLON
from ._digit_shape import GLUED_SCRIPTS as _GLUED_SCRIPTS
from ._digit_shape import HEX as _HEX
from ._digit_shape import IN_A_WORD as _IN_A_WORD
from ._digit_shape import has_digit_shape as _has_digit_shape
from ._json_values import quote_bare_placeholders as _quote_bare_placeholders
from ._text_hints import ascii_classes as _ascii_classes
from ._text_hints import contains_any as _contains_any
from ._text_hints import encoded_at as _encoded_at
from ._text_hints import glued_bearer as _glued_bearer
from ._text_hints import plain_hint as _plain_hint
from ._validators import HYPHEN_CHARS as _HYPHEN_CHARS
from ._validators import VALIDATORS as _VALIDATORS
from ._validators import hidden_at as _hidden_at
from ._validators import iban_in as _iban_in
from .detectors_assigned import KEY_WORDS as _KEY_WORDS
from .detectors_assigned import has_key_word as _has_key_word
from .detectors_assigned import occurrences as _occurrences
from .detectors_assigned import redact_assignments as _redact_assignments
from .detectors_assigned import redact_url_passwords as _redact_url_passwords
from .detectors_decode import HYPHENS as _HYPHENS
from .detectors_decode import WIDE_SPACES as _WIDE_SPACES
from .detectors_decode import decoded as _decoded
from .detectors_phones import redact_named_phones as _redact_named_phones
from .detectors_spelled import redact_spelled_emails as _redact_spelled_emails
from .detectors_spelled import spelled_out as _spelled_out

_DASHES = f"\u2013{_HYPHENS}"  # an en dash, and what reads as a hyphen (a minus sign ...): "-" last
_SPACE = f"[ {_WIDE_SPACES}]"
_SEP = f"[ {_WIDE_SPACES}{_DASHES}]"  # of a card's or phone's groups
_PSEP = f"[ .{_WIDE_SPACES}{_DASHES}]"  # of an international phone number's groups
#: Full-width letters and digits (typed with an IME) too, read as ASCII by the validators
_LETTER = "[A-Za-z\uff21-\uff3a\uff41-\uff5a]"
_ALNUM = "[A-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]"
_DOT_CHAR = "[.\uff0e]"
#: A letter in JSON text written with ensure_ascii (jos\u00e9@...), also a level down (``b\\u00fccher.de``:
#: such JSON, a tool's result, in a JSON string: its backslashes taken whole); in a domain never an "@"
#: or a dot so escaped: a label reading through an "@" took from each one to the end of a run of escapes
#: (a 16 kB run of ``\u0040`` took 0.4 s, a megabyte half an hour), and a dot read either way
#: would be tried both ways
_ESCAPED = r"\\++u(?!0040|[fF]{2}20|3002|[fF]{2}0[eE]|[fF]{2}61)[0-9A-Fa-f]{4}"
_LABEL = rf"(?:[^\W_]|{_ESCAPED}\x01?)(?:[\w-]|{_ESCAPED}\x01?)*"  # of a domain name, letters of any script
#: An "@" as written: plain, URL-encoded (once or twice: ``%2540``), escaped in JSON text, an HTML
#: character reference (numeric or ``&commat;``), or full-width (typed with an IME; escaped as ``json.dumps`` does)
_AT = r"(?:@|%40|%2540|\\u0040|&#0*64;|&#[xX]0*40;|&commat;|\uff20|\\uff20)"
#: A dot of an address's domain, also an HTML reference (its local part takes ``&period;`` and ``&#46;``),
#: and those IDNA reads as one: full-width (typed with an IME, as its "@" is), ideographic and
#: half-width ideographic full stops, raw or escaped as in JSON text (its local part takes a full-width
#: one), before a Latin letter or digit only: they end sentences of Japanese and Chinese text
_DOT = (r"(?:\.|[\uff0e\u3002\uff61](?=[A-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a])|&period;|&#0*46;"
        r"|&#[xX]0*2[eE];|\\u(?:3002|[fF]{2}0[eE]|[fF]{2}61)(?=[A-Za-z0-9]|\\u[fF]{2}[1-5]))")
_LOCAL_DOT = "&period;|&#46;"
#: A letter of a top-level domain in another script escaped in JSON text as ``_ESCAPED`` is
#: (``.\u0440\u0444``: ``.рф``): none of Latin-1's first half, punctuation and symbols (U+2000 to
#: U+2FFF, U+3000 to U+3003), surrogates (an emoji's), private use, compatibility and full-width forms
_ESCAPED_LETTER = r"\\++u(?!00[0-9a-bA-B]|2|30[0-3]|[dD][89a-fA-F]|[eEfF])[0-9A-Fa-f]{4}"
_DOMAIN = (rf"{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}(?!(?i:png|jpe?g|gif|webp|svg|ico|json|html?|css|js|ts|txt|csv|xml|ya?ml"
           rf"|toml|pdf|log)\b)(?:[^\W\d_]|{_ESCAPED_LETTER}){{2,}}\b")
#: An address whose local part is quoted (``"john doe"@example.com``; its quotes escaped in JSON text,
#: ``\"``, ``\\\"`` a level down, or ``\u0022``): found before the "EMAIL" pass, which would take its
#: last word only. Its first and last characters no space, JSON's punctuation nor an operator: a JSON
#: string starting with an "@" (``"k": "@x.io"``) stays, as code joining strings does (``"a"+"@x.io"``)
_QUOTED_EDGE = r"[^\s\"\\,:;=+()\[\]{}]"
_QUOTED_EMAIL = (rf'(?P<quote>\\u0022|\\{{0,7}}"){_QUOTED_EDGE}(?:[^"\\\r\n]{{0,62}}{_QUOTED_EDGE})?(?P=quote)'
                 rf"{_AT}{_DOMAIN}")
#: The zeros of the scripts whose digits JSON escapes are read in (``detectors_decode``): ASCII, full-width,
#: Arabic-Indic, Persian and Devanagari
_ZEROS = (0x30, 0xFF10, 0x660, 0x6F0, 0x966)


def _digits(low: int, high: int = 9) -> str:
    """A class of the digits ``low`` to ``high`` in those scripts (where a pattern needs a digit's value)."""
    return "[" + "".join(f"{chr(zero + low)}-{chr(zero + high)}" for zero in _ZEROS) + "]"


#: A phone's trunk 0, an area code's first digit, a North American area code's or exchange's first digit
_D0, _D1, _D2 = _digits(0, 0), _digits(1), _digits(2)


#: Where a time or a date and a space end, a phone's groups may follow: a time's or date's last two
#: digits after a colon, slash or hyphen ("10:30 ", "2024-05-01 ", "5/12/26 ") or dotted day and month
#: ("5.12.26 ": a decimal, "1.26 ", has one dot); a year after a day and month (or month and day:
#: "05/12/2026 ", "12.5.2026 ", "05-12-2026 "), or after a space or comma: a phone then only after a
#: month's name (``after_year``: "5 Dec 2026 ", "December 5, 2026 ", ``_digit_context.after_a_month``).
#: Lookbehinds of fixed width (as Python's are), each set after a cheap one that most groups of a
#: number fail (the phone pattern is tried at each of them)
_DATE_SEP = f"[/.{_HYPHENS}]"
_AFTER_A_DATE = (
    rf"|(?<=[:/.{_HYPHENS}]\d\d{_SPACE})(?:(?<=[:/{_HYPHENS}]\d\d{_SPACE})|(?<=\d\.\d\.\d\d{_SPACE})"
    rf"|(?<=\d\.[0-3]\d\.\d\d{_SPACE}))|(?<=(?:19|20)\d\d{_SPACE})(?:(?<={_DATE_SEP}\d{{4}}{_SPACE})"
    rf"(?:(?<=\d{_DATE_SEP}\d{_DATE_SEP}\d{{4}}{_SPACE})|(?<=\d{_DATE_SEP}[0-3]\d{_DATE_SEP}\d{{4}}{_SPACE}))"
    rf"|(?<=[ ,{_WIDE_SPACES}]\d{{4}}{_SPACE})(?P<after_year>))")


#: A token or number starts and ends at no letter, digit or "_" of a script that spaces its words (``_IN_A_WORD``,
#: ``_digit_shape``'s: ``\b`` would need a space after Chinese, Japanese or Thai text too, which has none between
#: words: "密钥是sk-...", "卡号4111..."); a token's tested after its first character (a lookbehind tried at every
#: character doubled the pass's cost), a number's after ``_DIGIT_START``'s
_ALNUM_IN_A_WORD = rf"[^\W_{_GLUED_SCRIPTS}]"  # (a letter or digit of such a script)
#: A token's part after its header, from the dot ending it. Its header's characters end where their run
#: does, so the "JWT" pass reads each run once (``_JWT_RUNS``): a header too short, or with no token's
#: rest after it, is kept with the rest of its run, where a later "eyJ" (after a hyphen) would find the
#: same end (tried from each "eyJ" of a 64 kB run of ``eyJab-``, the run was read to its end each time: 1.2 s)
_JWT_REST = r"\.(?:eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*|[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,})"
_JWT_RUNS = rf"eyJ(?<!{_IN_A_WORD}eyJ)(?:[A-Za-z0-9_-]{{5,}}+(?P<jwt_rest>{_JWT_REST})?|[A-Za-z0-9_-]*+)"


def _iban(separators: str) -> str:
    """An IBAN's pattern, its groups separated by spaces or all by one of ``separators``."""
    return (rf"(?<!{_IN_A_WORD}){_LETTER}{{2}}\d{{2}}(?:(?:{_SPACE}?{_ALNUM}{{4}}){{2,7}}(?:{_SPACE}?{_ALNUM}{{1,4}})?"
            rf"|(?P<iban_sep>[{separators}]){_ALNUM}{{4}}(?:(?P=iban_sep){_ALNUM}{{4}}){{1,6}}"
            rf"(?:(?P=iban_sep){_ALNUM}{{1,4}})?)(?!{_IN_A_WORD})")


_PATTERNS: dict[str, str] = {
    # order matters: more specific shapes first
    # a PEM private key block, its body base64 with line breaks (raw, or escaped as in JSON text, at
    # any depth: ``\\n`` in JSON held in a JSON string, a tool call's arguments; its slashes too, as
    # some encoders write them, ``\/``) and optional headers; to its END line, or where its characters
    # end (a block cut short). A run of backslashes is taken whole: JSON text stays valid
    "PRIVATE_KEY": (
        r"-----BEGIN[A-Z0-9 ]* PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=:,\s\x00-]|\\++[nr/])*?"
        r"(?:-----END[A-Z0-9 ]* PRIVATE KEY(?: BLOCK)?-----|(?![A-Za-z0-9+/=:,\s\x00-]|\\++[nr/]))"
    ),
    # its claims (a payload that is JSON too: "eyJ") also with an empty or short signature, as an
    # unsecured token (``alg: none``) has (never a payload alone: a value held cut inside it is
    # dropped anyway, ``bounds``)
    "JWT": rf"eyJ(?<!{_IN_A_WORD}eyJ)[A-Za-z0-9_-]{{5,}}{_JWT_REST}",
    # never a word in lower case after one in prose ("the bearer instrument"; "bearer xyz..." in a header is);
    # after an ideographic space or a URL's "%20" too, and in capitals with a digit or of 20 characters; so
    # too after the word "token" or one of another script (glued to it: "Bearer令牌abc123..."; kept, ``bearer_lead``)
    "BEARER_TOKEN": (r"(?:(?<=[Bb]earer[ \u3000])|(?<=[Bb]earer%20)|(?<=BEARER )(?=[A-Za-z._~+/-]*+\d|[A-Za-z0-9._~+/-]{20})"
                     r"|(?<=[Bb]earer)(?P<bearer_lead>[ \u3000]?(?:[^\x00-\x7f\s]{1,8}+|(?i:token))[ \u3000]?[:\uff1a=]?[ \u3000]?)"
                     r"(?=[A-Za-z._~+/-]*+\d|[A-Za-z0-9._~+/-]{20}))"
                     r"(?!(?<=[A-Za-z] bearer )[a-z]{1,19}(?![\w.~+/=-]))[A-Za-z0-9._~+/-]{8,}=*"),
    # HTTP Basic credentials: base64 of ``user:password`` (checked by decoding, so "basic idea" stays)
    "BASIC_AUTH": r"(?<=[Bb]asic )[A-Za-z0-9+/]{4,}={0,2}(?![A-Za-z0-9+/=])",
    "API_KEY": (
        rf"(?=[Aghprsx])(?<!{_IN_A_WORD})"  # (the first characters of what follows)
        r"(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}|[ps]k-lf-[A-Za-z0-9-]{8,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
        r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[bpaesrc]-[A-Za-z0-9-]{10,}"
        r"|xoxd-[A-Za-z0-9%+/=-]{10,}"  # a Slack client's session token and cookie (URL-encoded)
        r"|AIza[0-9A-Za-z_-]{35}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|hf_[A-Za-z0-9]{30,})"  # Stripe, HF
    ),
    # letters of any script (josé@example.com, user@bücher.de: \w is Unicode here); a backslash in
    # the local part takes whatever escape it starts with it, so JSON text stays valid. It starts
    # where a run of its characters starts: tried from within a long run, each start would read to
    # the run's end (a 64 kB word with an "@" in the text took seconds)
    # the "@" also URL-encoded (a query string: ?to=a%40b.com) or escaped as in JSON text; nor
    # after a dot written as an HTML reference (which a run of its characters holds)
    # never a git remote's user (git@github.com:org/repo.git), nor ending in a file type (an image's scale: icon@2x.png)
    "EMAIL": (rf"(?<![\w.\uff0e%+\\\x01-])(?<!&period;)(?<!&#46;)(?!git@[\w.-]{{1,253}}:[\w~/])[\w.\uff0e%+\\\x01-]+(?:(?:{_LOCAL_DOT})[\w.\uff0e%+\\\x01-]+)*{_AT}"
              rf"{_DOMAIN}"),
    # any case, full-width too; its groups separated by spaces, or all by dots, all by en dashes or all
    # by hyphens (or one of the characters read as one)
    "IBAN": _iban(f".{_DASHES}"),
    # a whole run of digit groups with 13 digits at least, where cards may be among other numbers
    # (``_cards.cards_in`` finds them; SSNs and phones in the rest, ``_IN_A_RUN``); never inside a
    # decimal number, nor a word (a hex id: a trace, span or commit id), nor after a minus sign or
    # a decimal point; after a word and one of those it is one ("card-4111 ..."). A last group glued
    # to a word, a hyphen or a decimal part is left to what follows (read once: no group given back)
    # dots only between groups of four ("4111.1111.1111.1111"): other dotted digits are decimals.
    # A comma between digits separates values (CSV, compact JSON: "jane,4111111111111111,12/27"):
    # no number of 13 digits or more has thousands or a decimal part that way
    "CREDIT_CARD": (
        rf"(?<!{_ALNUM_IN_A_WORD})(?<!(?<![^\W\d_])[.{_HYPHENS}])(?:(?=\d(?:{_SEP}?\d){{12}})"
        rf"(?:\d++{_SEP}(?!\d++(?!{_SEP}\d)(?:[^\W\d_{_GLUED_SCRIPTS}]|[{_HYPHENS}]|\.\d))(?=\d))*+\d++"
        rf"|\d{{4}}(?:\.\d{{4}}){{3}}(?:\.\d{{3}})?(?!{_ALNUM_IN_A_WORD}|[{_HYPHENS}]|\.\d))"
    ),
    # or in spaces, as the card prints it, where no number is next to it (``_part_of_more``); never
    # joined to another number by a hyphen, but after a word and one it is one ("ssn-123-45-6789")
    "US_SSN": (rf"(?<!\d)(?<!\d[{_HYPHENS}])\d{{3}}(?P<ssn_sep>[ {_WIDE_SPACES}{_HYPHENS}])\d{{2}}(?P=ssn_sep)\d{{4}}"
               rf"(?!\d|[{_HYPHENS}]\d)"),
    # international (+..., its code also in brackets: "(+44) 20 ..."); North American in its shapes
    # (spaced: area code and exchange not starting with 0 or 1); national after a trunk 0 (UK,
    # Germany...: 10 to 12 digits, checked)
    # and French pairs: a group of digits next to them would make them part of a longer number (not
    # a time's or date's end and a space: ``_AFTER_A_DATE``), a time's or decimal's digits right
    # before them a time or decimal ("12:09-8941-1533")
    "PHONE": (
        rf"(?<!{_IN_A_WORD})(?<!\+)(?:(?:\+\d{{1,3}}|\(\+\d{{1,3}}\)){_PSEP}?(?:\(\d{{1,4}}\){_PSEP}?)?\d{{1,4}}(?:{_PSEP}?\d{{2,4}}){{2,4}}"
        rf"|\(\d{{3}}\){_SPACE}?\d{{3}}{_PSEP}\d{{4}}|\d{{3}}[.{_DASHES}]\d{{3}}[.{_DASHES}]\d{{4}}"
        rf"|(?>(?<!\d{_SEP}){_AFTER_A_DATE})(?:{_D2}\d\d{_SPACE}{_D2}\d\d{_SPACE}\d{{4}}"
        rf"|(?<!\d[:.])\(?{_D0}{_D1}\d{{0,4}}\)?(?:{_SEP}|/)\d{{3,8}}(?:{_SEP}\d{{3,4}})?"
        rf"|{_D0}{_D1}(?P<pair>[ .{_WIDE_SPACES}{_DASHES}])\d\d(?:(?P=pair)\d\d){{3}})(?!{_SEP}\d))(?!{_IN_A_WORD})"
    ),
    # full-width too (digits, dots, colons)
    "IP_ADDRESS": (
        rf"(?<!{_IN_A_WORD})(?<![.\uff0e])(?:\d{{1,3}}{_DOT_CHAR}){{3}}\d{{1,3}}(?!{_IN_A_WORD}|[.\uff0e])"
        rf"|(?<!{_IN_A_WORD})(?<![:\uff1a])(?:(?:{_HEX}{{1,4}}{_COLON}){{7}}{_HEX}{{1,4}}"
        rf"|(?:{_HEX}{{1,4}}{_COLON}){{1,6}}{_COLON}(?:{_HEX}{{1,4}}(?:{_COLON}{_HEX}{{1,4}}){{0,5}})?)"
        rf"(?!{_IN_A_WORD}|[:\uff1a])"
    ),
}
#: In JSON text a value often follows an escape ("...key:\nsk-proj-..." in a serialised chat
#: message), where the escape's letter hides the word boundary the patterns start at. While the
#: passes run, a NUL (never raw in JSON text) follows each such escape, then is taken out again
#: (one after an escaped backslash and a letter only adds a boundary: harmless).
_ESCAPES = ("\\n", "\\t", "\\r", "\\b", "\\f")
_MARK = "\x00"
#: So too a letter of ``_GLUED_SCRIPTS`` escaped as ``json.dumps`` writes it ("\u662fsk-proj-...", "\u53f7"
#: and a card's digits: its hex digits read as the number's), where a letter, digit, "+" or a phone's "("
#: follows: a "\x01" after it (which an address's local part and domain, also spelled out, read through)
_GLUE_MARK = "\x01"
_GLUED_ESCAPE = re.compile(
    r"\\u(?i:0e(?:[0-46-7][0-9a-f]|5[a-f])|30[4-9a-f][0-9a-f]|3[4-9a-f][0-9a-f]{2}|4[0-9a-c][0-9a-f]{2}|4d[0-9ab][0-9a-f]"
    r"|4[ef][0-9a-f]{2}|[5-9][0-9a-f]{3}|a[c-f][0-9a-f]{2}|[bc][0-9a-f]{3}|d[0-6][0-9a-f]{2}|d7[0-9a][0-9a-f]"
    r"|f[9a][0-9a-f]{2}|ff(?:6[6-9a-f]|[7-9][0-9a-f]))(?=[^\W_]|\+|\((?=[\d+]))")
BUILT_IN_KINDS = frozenset(_PATTERNS)
#: Each detector runs only when a cheap trigger is present: a substring test or, for the
#: digit-based kinds, a digit shape (``_digit_shape``). Passes run in order; placeholders contain
#: no digits or trigger text, so a later pass never matches an earlier replacement.
_DIGIT_KINDS = ("IBAN", "CREDIT_CARD", "US_SSN", "PHONE", "IP_ADDRESS")


class _ByText:
    """``pattern`` compiled twice, indexed by ``text.isascii()``: on ASCII text the ASCII-only
    classes (``\\d`` as ``[0-9]``, ``\\w``, ``\\b``) match exactly what the Unicode ones do, and
    cost the matcher less per character; other text keeps the Unicode classes (digits of other
    scripts stay detected); in the ASCII ones a class leaves out no ``_GLUED_SCRIPTS`` (none is in
    such a text: a class holding their ranges cost more at each character). Each is compiled
    when first used (on the export thread): compiling them all took about 17 ms of ``import
    autotrace``, and a process that sees no such text never needs them (two threads compiling one at
    once is harmless)."""

    __slots__ = ("_compiled", "_pattern")

    def __init__(self, pattern: str) -> None:
        self._pattern = pattern
        self._compiled: list[re.Pattern[str] | None] = [None, None]

    def __getitem__(self, ascii_text: bool) -> re.Pattern[str]:
        compiled = self._compiled[ascii_text]
        if compiled is None:
            pattern = self._pattern.replace(_GLUED_SCRIPTS, "") if ascii_text else self._pattern
            compiled = self._compiled[ascii_text] = re.compile(pattern, re.ASCII if ascii_text else 0)
        return compiled


_TEXT_PASSES: tuple[tuple[str, tuple[str, ...], _ByText], ...] = (
    ("PRIVATE_KEY", ("PRIVATE KEY",), _ByText(_PATTERNS["PRIVATE_KEY"])),
    ("JWT", ("eyJ",), _ByText(_JWT_RUNS)),  # (``_PATTERNS["JWT"]``'s matches)
    ("BEARER_TOKEN", ("earer ", "earer\u3000", "earer%20", "EARER "), _ByText(_PATTERNS["BEARER_TOKEN"])),
    ("BASIC_AUTH", ("asic ",), _ByText(_PATTERNS["BASIC_AUTH"])),
    ("API_KEY", ("sk-", "k-lf-", "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox",
                 "AIza", "k_live_", "k_test_", "hf_"), _ByText(_PATTERNS["API_KEY"])),
    ("EMAIL", ("@", "%40", "%2540", "\\u0040", "\\uff20", "&#", "&commat;", "\uff20"),
     _ByText(_PATTERNS["EMAIL"])),
)
#: Every text pass's trigger contains one of these (checked by a test), so a text with none of
#: them needs no text pass. A few substring tests cost far less than one scan with a regular
#: expression whose alternatives start with common letters. Those after the plain ones, an "@"
#: written otherwise, are tested as ``_encoded_at`` does: after a one-character test.
_PLAIN_HINTS = ("@", "k-", "_", "eyJ", "earer ", "earer\u3000", "earer%20", "EARER ", "asic ", "xox", "AKIA", "ASIA",
                "AIza", "PRIVATE KEY",
                *_secrets.GITLAB_PREFIXES, *_secrets.DASH_PREFIXES, *_secrets.WEBHOOK_HINTS, *_secrets.DOT_PREFIXES)
_TRIGGER_HINTS = (*_PLAIN_HINTS, "%2540", "\\uff20", "&#", "&commat;", "\uff20", "%40", "\\u0040")
#: A pass's replacement where it keeps part of its match (what it read a token after)
_REPLACEMENTS = {"BEARER_TOKEN": r"\g<bearer_lead><BEARER_TOKEN>"}
_QUOTED_EMAIL_PASS = _ByText(_QUOTED_EMAIL)
_QUOTES_BEFORE_AT = (('"@', '"'), ('"\\u0040', '"'), ("\\u0022@", "\\u0022"), ("\\u0022\\u0040", "\\u0022"))
#: Where a match of the digit kinds can start, tested once before their alternatives (each of which starts
#: with a lookbehind, tried at every character: a 64 kB hex or base64 value took 20 ms): a letter, digit,
#: "+" or "(" after no letter or digit (an IBAN's ``\b``, a card's, phone's and IP address's lookbehinds; of
#: scripts that space their words: neither starts a match, ``_IN_A_WORD``),
#: or an SSN's first group and separator (after a letter too: ``(?<!\d)``)
_DIGIT_START = rf"(?:(?<!{_ALNUM_IN_A_WORD})(?={_ALNUM_IN_A_WORD}|[+(])|(?=\d{{3}}[ {_WIDE_SPACES}{_HYPHENS}]))"


def _digit_pass(patterns: tuple[tuple[str, str], ...]) -> _ByText:
    """The digit kinds' ``patterns`` (kind, pattern) as one, each a named group, after ``_DIGIT_START``."""
    return _ByText(_DIGIT_START + "(?:" + "|".join(f"(?P<{kind}>{pattern})" for kind, pattern in patterns) + ")")


_DIGIT_PASS = _digit_pass(tuple((kind, _PATTERNS[kind]) for kind in _DIGIT_KINDS))
#: Cards, phones and SSNs use hyphens too: where a candidate IBAN in groups of hyphens is none (or
#: only its start is one), what it took from them ("GB19-7503-6188-541-324-0647": a phone) is found
#: by a second pass, the IBAN's hyphen groups left out (the digit pass as it was before them).
_DIGIT_RESCAN = _digit_pass((("IBAN", _iban(".\u2013")), *((kind, _PATTERNS[kind]) for kind in _DIGIT_KINDS[1:])))
#: What a run of digit groups holds besides cards (a run has no dots, colons, letters or plus signs);
#: searched for with ``_RUN_CONTEXT`` characters of what is around the run (``_digit_context.in_a_hex_id``
#: reads one id's length), to two characters after it (its patterns' lookaheads read two at most), the
#: run's cards already replaced
_IN_A_RUN = _ByText("|".join(f"(?P<{kind}>{_PATTERNS[kind]})" for kind in ("US_SSN", "PHONE")))
_RUN_CONTEXT = 64
#: Each of those holds a group of two or three digits, or one starting with 0 (a trunk prefix)
_MORE_IN_A_RUN = re.compile(rf"(?<!\d)(?:{_D0}|\d\d\d?(?!\d))")


def redact_text(text: str, kinds: frozenset[str] | None = None) -> tuple[str, int]:
    """Replace every detected value in ``text``; returns the new text and the number of replacements.
    What ``detectors_decode`` reads through (JSON escapes, HTML references, ``%20``, a query
    string's ``+``...) is read so; it stays as written unless a value is replaced."""
    if (("\\" in text and "\\u" in text) or ("&" in text and ";" in text and ("&nbsp;" in text or "&#" in text))
            or ("%" in text and ("%20" in text or "%2B" in text or "%2b" in text)) or ("+" in text and "=" in text)
            or "\uff0b" in text):  # (free on ASCII text)
        decoded = _decoded(text)
        if decoded is not None and (found := _redact(decoded, kinds))[1]:
            return _as_json(found, text)
    return _as_json(_redact(text, kinds), text)


def _as_json(found: tuple[str, int], text: str) -> tuple[str, int]:
    """What ``redact_text`` found in ``text``, JSON if ``text`` is (``_json_values``)."""
    return (_quote_bare_placeholders(found[0], text), found[1]) if found[1] and text[:1] in "{[" else found


class _Judge:
    """What one text's redaction shares between its passes (the kinds asked for, whether the text
    is ASCII; the replacements made, whether an IBAN pass must be searched again): an object, not
    closures, which would refer to each other and leave a reference cycle per text for the
    garbage collector."""

    __slots__ = ("ascii_text", "kinds", "replaced", "rescan")

    def __init__(self, kinds: frozenset[str] | None, ascii_text: bool) -> None:
        self.kinds, self.ascii_text, self.replaced, self.rescan = kinds, ascii_text, 0, False

    def substitute(self, match: re.Match[str], kind: str | None = None) -> str:
        replacement, end = self.judged(match, kind)
        return replacement + match.string[end:match.end()]

    def judged(self, match: re.Match[str], kind: str | None = None) -> tuple[str, int]:
        """A match's replacement, and where the text it replaces ends: before the match's end where an
        IBAN's match read on into what follows it ("... 7034 ok", "... 7034 4111 1111 1111 1111": searched
        again), after it where a phone's read on into a card's groups (the card's run read whole)."""
        kinds = self.kinds
        kind = kind or match.lastgroup or ""
        text, start, end = match.string, match.start(), match.end()
        if kind == "CREDIT_CARD":  # (searched for the kinds asked for too: ``in_a_run``)
            return self.in_a_run(text, start, end, None), end
        if kind == "PHONE" and (kinds is None or "CREDIT_CARD" in kinds) and match.re is not _IN_A_RUN[self.ascii_text] and (
                reach := _runs.card_in_reach(text, start, end, _in_a_hex_id)):  # (a run's rest holds no card)
            return self.in_a_run(text, start, reach[1], reach[0]), reach[1]
        value = match.group()
        if kind == "IBAN":  # a match written in groups may run into the words after it
            value = _iban_in(value)[0]
        elif kind == "PHONE":  # or into an SSN's groups
            value = value[:_runs.phone_end(text, start, end) - start]
        if kinds is not None and kind not in kinds:
            return value, start + len(value)
        valid = _VALIDATORS.get(kind, bool)(value) and not (
            kind in _IN_CONTEXT and _part_of_more(kind, value, text, start, start + len(value))) and (
            kind != "PHONE" or match["after_year"] is None or _after_a_month(text, start))
        if kind == "IBAN" and (len(value) < end - start or not valid) and _contains_any(match.group(), _HYPHEN_CHARS):
            self.rescan = True  # hyphen groups not all of an IBAN: see _DIGIT_RESCAN
        if not valid:  # no IBAN, perhaps a card in its groups: searched again from them (``hidden_at``)
            at = _hidden_at(value, text[start + len(value):start + len(value) + 2]) if kind == "IBAN" else 0
            return (value[:at], start + at) if at else (match.group(), end)
        self.replaced += 1
        return f"<{kind}>", start + len(value)

    def in_a_run(self, text: str, start: int, end: int, cards: list[tuple[int, int]] | None) -> str:
        """A run of digit groups with its cards (found, unless given) replaced, then the SSNs and phones in the rest."""
        kinds = self.kinds
        if (given := cards) is None:
            cards = [] if kinds is not None and "CREDIT_CARD" not in kinds else _cards_in(text, start, end, _in_a_hex_id)
        self.replaced += len(cards)
        parts, done = [], start
        for at, done_at in cards:
            parts += (text[done:at], "<CREDIT_CARD>")
            done = done_at
        run = "".join(parts) + text[done:end]
        if (kinds is not None and kinds.isdisjoint(("US_SSN", "PHONE"))) or (
                given is None and _MORE_IN_A_RUN.search(run) is None):  # (a phone's run, given its cards, holds one)
            return run
        before = text[max(0, start - _RUN_CONTEXT):start]
        local = f"{before}{run}{text[end:end + _RUN_CONTEXT]}"
        pieces, done, stop = [], len(before), len(before) + len(run)
        for found in _IN_A_RUN[self.ascii_text].finditer(local, done, stop + 2):
            if found.end() > stop:
                break
            pieces += (local[done:found.start()], self.judged(found)[0])  # (never a phone read on: it ends at its match's end)
            done = found.end()
        return "".join(pieces) + local[done:stop] if pieces else run


def _redact(text: str, kinds: frozenset[str] | None) -> tuple[str, int]:
    if not text:
        return text, 0
    # four cheap tests first: most values (plain prose, JSON without secrets) pass all of them
    triggered = _plain_hint(text) or _encoded_at(text)
    digits = _has_digit_shape(text)
    lowered = text.lower()  # for two of them (C, half a nanosecond a character)
    assigned = "=" in text or ":" in text
    keyed = assigned and _has_key_word(text, lowered)
    # an XML element (a closing tag) or a command's argument (``aws_secret_access_key ...``, ``--password ...``) names a
    # secret too (``_secrets.redact_named``); text with "=" or ":" and no key word has none
    named = ((keyed or not assigned) and (("<" in text and "</" in text) or ("_" in text and "access_key" in lowered))
             and (keyed or _contains_any(lowered, _KEY_WORDS))) or _secrets.command_hint(lowered)
    authorized = assigned and "z" in lowered and "authorization" in lowered  # (a "z": rare in prose)
    cookie = assigned and "ookie" in lowered
    spelled = _spelled_out(text, lowered)
    if not (triggered or digits or keyed or named or authorized or cookie or spelled):
        return text, 0
    marked = "\\" in text and _MARK not in text
    if marked:
        for escape in _ESCAPES:
            if escape in text:
                text = text.replace(escape, escape + _MARK)
    glued = "\\u" in text and _GLUE_MARK not in text
    if glued:
        text = _GLUED_ESCAPE.sub(f"\\g<0>{_GLUE_MARK}", text)
    judge = _Judge(kinds, _ascii_classes(text))
    ascii_text = judge.ascii_text
    if triggered:
        if "@" in text and "/" in text and (kinds is None or "API_KEY" in kinds):
            # a URL's password first: its host would read as the domain of an address ending in it
            text, n = _redact_url_passwords(text)
            judge.replaced += n
        if (kinds is None or "EMAIL" in kinds) and (("@" in text and '"@' in text) or (
                "\\" in text and ("\\u0022" in text or '"\\u0040' in text))):
            text, n = _redact_quoted_emails(text, _QUOTED_EMAIL_PASS[ascii_text])
            judge.replaced += n
        for kind, triggers, patterns in _TEXT_PASSES:
            if (kinds is None or kind in kinds) and (any(trigger in text for trigger in triggers) or (
                    kind == "BEARER_TOKEN" and not ascii_text and _glued_bearer(text))):
                pattern = patterns[ascii_text]
                if kind in _VALIDATORS:  # a shape that ordinary text can have too: replaced once checked
                    text = pattern.sub(lambda match, kind=kind: judge.substitute(match, kind), text)
                else:
                    text, n = _redact_jwts(text, pattern) if kind == "JWT" else pattern.subn(_REPLACEMENTS.get(kind, f"<{kind}>"), text)
                    judge.replaced += n
        if (kinds is None or "API_KEY" in kinds) and _secrets.hint(text):
            text, n = _secrets.redact_service_secrets(text)
            judge.replaced += n
    if (authorized or named or cookie) and (kinds is None or "API_KEY" in kinds):
        text, n = _secrets.redact_named(text, text.lower() if judge.replaced else lowered, authorized, named, cookie)
        judge.replaced += n
    if spelled and (kinds is None or "EMAIL" in kinds):
        text, n = _redact_spelled_emails(text)
        judge.replaced += n
    if digits and (kinds is None or not kinds.isdisjoint(_DIGIT_KINDS)):
        text = _runs.replace_all((_DIGIT_PASS if kinds is None or "IBAN" in kinds else _DIGIT_RESCAN)[ascii_text], text, judge.judged)
        if judge.rescan:
            text = _runs.replace_all(_DIGIT_RESCAN[ascii_text], text, judge.judged)
    if digits and (kinds is None or "PHONE" in kinds):
        text, n = _redact_named_phones(text)
        judge.replaced += n
    if keyed and (kinds is None or "API_KEY" in kinds):
        text, n = _redact_assignments(text)
        judge.replaced += n
    if glued:
        text = text.replace(_GLUE_MARK, "")
    return (text.replace(_MARK, "") if marked else text), judge.replaced


def _redact_quoted_emails(text: str, pattern: re.Pattern[str]) -> tuple[str, int]:
    """``text`` with the addresses ``pattern`` (``_QUOTED_EMAIL``) finds replaced, each tried only from
    the quote opening what a quote before an "@" closes (a local part holds no quote: the one before it;
    both found as substrings: a search of the whole text cost 30 ns a character)."""
    pieces: list[str] = []
    done = 0
    found = [(at, quote) for needle, quote in _QUOTES_BEFORE_AT if needle in text for at in _occurrences(text, needle)]
    for at, quote in sorted(found) if len(found) > 1 else found:
        opening = text.rfind(quote, max(done, at - 80), at)
        if quote == '"':  # escaped by as many backslashes as the closing one
            before = text[max(0, at - 7):at]
            opening -= len(before) - len(before.rstrip("\\"))
        if opening >= done and (match := pattern.match(text, opening)) is not None:
            pieces += (text[done:match.start()], "<EMAIL>")
            done = match.end()
    return ("".join(pieces) + text[done:], len(pieces) // 2) if pieces else (text, 0)


def _redact_jwts(text: str, pattern: re.Pattern[str]) -> tuple[str, int]:
    """``text`` with the tokens ``_JWT_RUNS`` finds (``pattern``) replaced, and how many."""
    replaced = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal replaced
        if match["jwt_rest"] is None:
            return match[0]
        replaced += 1
        return "<JWT>"

    return pattern.sub(replace, text), replaced
