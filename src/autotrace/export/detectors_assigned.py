"""The assignment detector: the value of a secret's ``key=value`` or ``"key": "value"`` (``password``,
``api_key``, ``token``...), replaced by ``<API_KEY>`` with its key kept; ``detectors.redact_text``
runs it when a key word and ``=`` or ``:`` are in the text; and the password of a URL
(``postgres://app:hunter22@db/app``), replaced so with its user kept, when an "@" and a slash are."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

KEY_WORDS = ("key", "secret", "token", "passw")
#: The words of ``_PWD``, ``_PASS`` and ``_SIGNATURE`` too (``has_key_word``; ``sig`` with an "=" only)
_WORDS, _WORDS_WITH_EQUALS = (*KEY_WORDS, "pwd", "pass"), (*KEY_WORDS, "pwd", "pass", "sig")
# The key is kept, so assignments have their own expression. Quotes may be escaped
# (``{\"password\": \"...\"}``: JSON inside a JSON string, such as a chat message holding JSON; the
# key's closing quote by as many backslashes as its depth takes, ``\\\"`` two levels down).
# A value may start with quotes (``"\"hunter22\""``, ``"""hunter22"""``); after the last of them
# (``q``, escaped by the ``k`` backslashes ``bs``: 2**n - 1 for a string n levels down) it is
# quoted: it runs to the quote that closes it, taking spaces, escapes whole and other quotes. A
# quote after r backslashes closes it if r is k plus a multiple of 2(k + 1) (the last k escape it,
# the others are escaped backslashes), is part of it if r is 2k + 1 plus such a multiple (escaped
# once more: a string further down), and else is the end of a string further up, which the value
# never takes (nor a ``"`` after an even number, a JSON string's end): JSON, and JSON in a JSON
# string, stays valid. It starts with no space, comma, semicolon or closing bracket (an empty
# string's closing quote opens nothing: ``password="" user="bob"``), and after a quote never with a
# separator and a JSON value (the quote closed a key ending in its separator: ``{"Enter password:": [1]}``).
# A quote never closed on its line (free text: ``my password: "correct horse battery staple``) takes
# the rest of that line when that
# is 6 to 512 characters with no quote or backslash. Any other value not quoted so (no quote before
# it, or no closing one within 512 characters and its line) ends at a space, quote, comma,
# semicolon or brace, and before an escaped quote one level down (``\\\"``); when 6 characters
# come before it, also before a query string's next parameter (``?token=...&page=2``: ``&page=``).
# After its separator a line break only before a value that is no assignment of its own (an empty
# ``DATABASE_PASSWORD=`` line keeps the next line, ``DEBUG=true``, ``debug: true``; a base64 value's
# padding, ``token:`` then ``aGVsbG8gd29ybGQ=``, and ``user:secret`` are values).
_BLOCK = r"(?P=bs)\\(?P=bs)\\"  # 2(k + 1) backslashes
_QUOTED_UNIT = (rf"[^\"'\\\n]|\\++[^\"'\n]|(?:{_BLOCK})*+(?P=bs)\\(?P=bs)(?P=q)"
                r"|\\*+(?!(?P=q))'|(?:\\\\)*+\\(?!(?P=q))\"")  # (the other quote: after an odd number if ")
_CLOSING = rf"(?:{_BLOCK})*+(?=(?P=bs)(?P=q))"  # (escaped backslashes before it: the value's)
_ESCAPE_UNIT = r"\\[^\s\"'\\]|\\\\(?!\\[\"'])"  # of a value not quoted
_ASSIGNED = (r"(?:\\*+[\"'])?\s?[:=](?:[^\S\r\n]|[\r\n](?![\w.-]{1,64}+\s?(?:=[^=\s]|:(?!\S))))?(?:(?:\\*[\"'])*(?P<bs>\\*)(?P<q>[\"']))?)"
             rf"(?P<value>(?(q)(?![:=]\s*+(?:[\[{{\\\"\d<-]|true|false|null)))(?:(?(q)(?![\s,;}}\]]|(?:\\*[\"']){{0,3}}<[A-Z_]+>\\*[\"'])(?:{_QUOTED_UNIT}){{6,512}}{_CLOSING}|(?!))"
             # a quote opened and never closed on its line (free text): the value is the rest of the line
             r"|(?(q)(?![\s,;}\]])[^\n\r\"'\\]{6,512}(?=[\n\r]|\Z)|(?!))"
             rf"|(?!<)(?:(?:[^\s\"',;}}\\&]|&(?!(?:amp;)?[\w.-]{{1,64}}=)|{_ESCAPE_UNIT}){{6,}}"
             rf"|(?:[^\s\"',;}}\\]|{_ESCAPE_UNIT}){{6,}})))")
#: An ODBC or MySQL connection string's password (``Pwd=...;``), never a working directory's path
#: (``PWD=/home/app``, ``OLDPWD=~``, ``PWD=C:\\app``, ``pwd: ./build``, code's ``pwd = os.getcwd()``,
#: ``PWD=$(pwd)``), nor a word after a spaced separator unless quoted (``pwd: current directory``,
#: ``old_pwd = cwd_path``: ``Pwd=x;``, ``"pwd": ...`` and ``pwd = "x"`` are passwords); a signed URL's
#: signature, after its query's ``?``, ``&`` or ``;`` and with ``=`` (an Azure SAS ``sig=``, S3's
#: ``X-Amz-Signature=``, GCS's ``X-Goog-Signature=``: each grants access to what it signs until it
#: expires; an HMAC's or RSA signature: 16 characters at least), never code's ``sig = ...`` nor a word (``&sig=thumbnail``)
_PWD = (r"pwd(?!(?:\\*+[\"'])?\s?[:=]\s?(?:\\*[\"'])*(?:[/~]|[A-Za-z]:[\\/]|\.\.?[\\/]|\$\(|[\w.]{0,40}cwd\())"
        r"(?=\\*+[\"']|[:=]\S|\s?[:=]\s?\\*[\"'])")
#: A password's key shortened (an environment's ``DB_PASS=...``, a query's ``&pass=...``, ``"pass": ...``), never
#: within a word (``bypass=``) nor a word after a spaced separator unless quoted, as ``_PWD`` (``First pass: tokenize``)
_PASS = r"(?<![A-Za-z])pass(?=\\*+[\"']|[:=]\S|\s?[:=]\s?\\*[\"'])"
#: Where ``_PASS`` (or ``passphrase``) may be a key: "pass" alone is in much prose ("passed", "passage"), whose
#: every text with a ":" would have been searched for assignments (a chat request's JSON: four times the time)
_PASS_KEY = re.compile(r"pass(?:phrase|\\*+[\"']|\s?[:=])")
_SIGNATURE = (r"(?:(?<=[?&;])|(?<=\\u0026)|(?<=[?&;]x-amz-)|(?<=[?&;]x-goog-)|(?<=\\u0026x-amz-)|(?<=\\u0026x-goog-))"
              r"sig(?:nature)?(?==[A-Za-z0-9%+/=_.~-]{16})")
_KEY_VALUE = (r"(?P<prefix>(?:\\?[\"'])?(?:api[_-]?key|apikey|secret|token|password|passwd|access[_-]?key"
              r"|(?:secret|private|subscription)[_-]?key|accountkey|passphrase|" + _PWD + "|" + _PASS + "|" + _SIGNATURE + ")" + _ASSIGNED)
#: The same, from where its key's word is (``KEY_WORDS``, found in lower case: a regular
#: expression starting with a quote that may be there or not is tried at every character, and was
#: most of the cost of redacting a chat request's JSON); what is before that word is kept anyway.
_KEY_VALUE_AT = (r"(?P<prefix>(?:key(?:(?<=apikey)|(?<=api_key)|(?<=api-key)|(?<=accesskey)|(?<=access_key)"
                 r"|(?<=access-key)|(?<=secretkey)|(?<=secret_key)|(?<=secret-key)|(?<=privatekey)|(?<=private_key)"
                 r"|(?<=private-key)|(?<=subscriptionkey)|(?<=subscription_key)|(?<=subscription-key)|(?<=accountkey))"
                 r"|secret|token|passw(?:or)?d|passphrase|" + _PWD + "|" + _PASS + "|" + _SIGNATURE + ")" + _ASSIGNED)


def has_key_word(text: str, lowered: str) -> bool:
    """Whether ``text`` (with an "=" or ":"; ``lowered``: in lower case) holds a word an assignment's key
    does: one of ``KEY_WORDS``, ``pwd``, ``pass`` as a key (``_PASS_KEY``), or with an "=" ``sig`` (each substring test of a longer text
    costs about half a microsecond a kilobyte: an "=" is tested first)."""
    for word in KEY_WORDS:
        if word in lowered:
            return True
    return "pwd" in lowered or any(_PASS_KEY.match(lowered, at) for at in occurrences(lowered, "pass")) or (
        "=" in text and "sig" in lowered)


@cache
def assignment(from_key_word: bool) -> re.Pattern[str]:
    """``_KEY_VALUE_AT`` or ``_KEY_VALUE``, compiled when first used (as ``_ByText`` patterns are)."""
    return re.compile(_KEY_VALUE_AT if from_key_word else _KEY_VALUE, re.IGNORECASE)


def redact_assignments(text: str) -> tuple[str, int]:
    """``text`` with the values of ``_KEY_VALUE``'s assignments replaced, found from where a key
    word starts (as ``detectors`` finds phone words). On other than ASCII text (a long s
    ``\u017f`` is an "s" ignoring case, and a lower case may be longer) the expression is searched for."""
    if not text.isascii():
        return assignment(False).subn(r"\g<prefix><API_KEY>", text)
    lowered, pattern = text.lower(), assignment(True)
    pieces: list[str] = []
    done = 0
    words = _WORDS_WITH_EQUALS if "=" in text else _WORDS
    for start in sorted({at for word in words for at in occurrences(lowered, word)}):
        if start >= done and (match := pattern.match(text, start)) is not None:
            pieces += (text[done:match.start("value")], "<API_KEY>")
            done = match.end()
    return ("".join(pieces) + text[done:], len(pieces) // 2) if pieces else (text, 0)


#: A URL's password (``scheme://user:password@host``): to the last "@" before the host (one typed in
#: it unencoded is the password's), never past a space, slash, quote, backslash or angle bracket (JSON
#: text stays valid; a placeholder is never taken), unless it is a template's (``{db_password}``,
#: ``${PGPASSWORD}``, ``$PGPASSWORD`` in capitals, ``%s``: code, which a model writes plenty of).
#: After the scheme's ``://`` (also as JSON text escaping slashes writes it, ``:\/\/``); starting
#: with a literal, it is searched for as fast as a substring.
_URL_PASSWORD = re.compile(r"(?P<prefix>:(?:\\?/){2}[^\s/?#@:\"'\\<>]*:)"
                           r"(?!(?:\$?\{[^\s{}]*\}|\$[A-Z_][A-Z0-9_]*|%(?:\(\w+\))?s)@)[^\s/?#\"'\\<>]+@(?=[^\s@])")


def redact_url_passwords(text: str) -> tuple[str, int]:
    """``text`` with the password of each URL's credentials replaced by ``<API_KEY>``, the user kept."""
    return _URL_PASSWORD.subn(r"\g<prefix><API_KEY>@", text)


def occurrences(text: str, word: str) -> Iterator[int]:
    """Where ``word`` starts in ``text``, each."""
    at = text.find(word)
    while at != -1:
        yield at
        at = text.find(word, at + 1)
