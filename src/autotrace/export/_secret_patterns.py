"""Secrets ``detectors.redact_text`` finds by what names them, each replaced by ``<API_KEY>`` with
that kept: service tokens by their prefixes (GitLab, npm, Stripe and Svix webhook secrets, Slack
app tokens, Groq, Replicate, xAI, Perplexity, PyPI, Google OAuth client secrets and access tokens,
SendGrid),
the secret path of a Slack or Discord webhook URL, an ``Authorization`` header's credentials in any
scheme (Bearer and Basic are ``detectors``'s), a ``Cookie`` header's values, an XML element named as
a secret (``<SecretAccessKey>``, ``<password>``), and after its name and a space an AWS secret access
key (``aws configure set aws_secret_access_key ...``) or a command's password (``--password ...``,
MySQL's ``-p...``, curl's ``-u user:...`` and ``-b name=...``, sshpass's ``-p ...``, redis-cli's ``-a ...``; after ``=`` or ``:`` it is an assignment,
``detectors_assigned``'s).

Linear in the text's length: every repeat without a bound is possessive (what follows it is a
character its class excludes, so what it gave back could never match), and attempts start only at
a literal, at a word found in lower case, or where no run of a token's characters does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from .detectors_assigned import occurrences

#: What each token starts with, as ``detectors`` tests for them (each holds a "-" or a "_"), and
#: what a webhook's URL holds (a "/" and "hooks" tested first: a single character is found ten times
#: faster than a longer substring, and prose seldom holds a slash)
GITLAB_PREFIXES = ("glpat-", "gldt-", "glrt-", "glptt-", "gloas-", "glsoat-")
DASH_PREFIXES = ("xapp-", "xai-", "pplx-", "pypi-", "GOCSPX-")
DOT_PREFIXES = ("ya29.", "SG.")  # (tested as ``hint`` does: after a "9" or a "G", found ten times faster)
UNDERSCORE_PREFIXES = ("npm_", "whsec_", "gsk_", "r8_")
WEBHOOK_HINTS = ("hooks.slack.com/", "hooks.slack.com\\/", "/webhooks")
TRIGGERS = (*GITLAB_PREFIXES, *DASH_PREFIXES, *UNDERSCORE_PREFIXES, *WEBHOOK_HINTS, *DOT_PREFIXES)


def _ending(prefixes: tuple[str, ...]) -> re.Pattern[str]:
    """Where one of ``prefixes`` (all ending in the same character) ends: that character searched for
    as fast as a substring (one scan of a long text, not one per prefix), then the one before it (in a
    UUID or a JSON key, seldom one of theirs), then each prefix."""
    end, before = re.escape(prefixes[0][-1]), "".join(sorted({prefix[-2] for prefix in prefixes}))
    return re.compile(f"{end}(?<=[{before}]{end})(?:" + "|".join(f"(?<={re.escape(p)})" for p in prefixes) + ")")


_UNDERSCORE_END, _DASH_END = _ending(UNDERSCORE_PREFIXES), _ending((*GITLAB_PREFIXES, *DASH_PREFIXES))

_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_-])(?:gl(?:pat|dt|rt|ptt|oas|soat)-[A-Za-z0-9_-]{20,}+(?:\.[A-Za-z0-9_-]++)*+"
    r"|npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])|whsec_[A-Za-z0-9+/]{24,}+={0,2}|xapp-\d-[A-Za-z0-9-]{20,}+"
    r"|gsk_[A-Za-z0-9]{40,}+|r8_[A-Za-z0-9]{30,}+|xai-[A-Za-z0-9]{40,}+|pplx-[A-Za-z0-9]{40,}+"
    r"|pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{40,}+"  # (a PyPI token's macaroon names pypi.org)
    r"|GOCSPX-[A-Za-z0-9_-]{24,}+|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])|ya29\.(?=[A-Za-z0-9_.-]{20})[A-Za-z0-9_-]++(?:\.[A-Za-z0-9_-]++)*+)")
#: The path after a webhook's kind (``/services/T.../B.../secret``, ``/api/webhooks/id/token``); its
#: slashes escaped too, as JSON text may write them
_WEBHOOK = re.compile(r"(?P<prefix>hooks\.slack\.com\\?/(?:services|workflows|triggers)\\?/"
                      r"|discord(?:app)?\.com\\?/api(?:\\?/v\d++)?\\?/webhooks\\?/)"
                      r"[A-Za-z0-9_-]++(?:\\?/[A-Za-z0-9_-]++)++")
#: An ``Authorization`` (or ``Proxy-Authorization``, ``HTTP_AUTHORIZATION``) header's credentials, as a
#: header line, a JSON or Python mapping's item or an assignment: after a scheme (``Token``, ``ApiKey``,
#: ``Negotiate``...), or alone to the value's end. Never a parameter list (Digest, AWS4-HMAC-SHA256: a
#: signature of one request, its access key id found as an ``API_KEY``); a digit or 20 characters, so
#: that prose (``authorization: required``) stays.
_AUTHORIZATION = re.compile(  # (its classes in both cases: cheaper than ignoring case)
    r"(?i:authorization)(?:\\*+[\"'])?[ \t]*+[:=][ \t]*+(?:\\*+[\"'])?"
    r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9-]{0,30}+(?: ++|\u3000|%20|\+))(?![A-Za-z0-9_-]++=(?:\\?[\"'])?[^\s\"'\\,]*+(?:\\?[\"'])?,))?"
    r"(?P<value>(?=[A-Za-z._~+/-]*+\d|[A-Za-z0-9._~+/-]{20})[A-Za-z0-9._~+/-]{8,}+=*+)"
    r"(?(scheme)|(?=[ \t]*+(?:[\r\n\"'\\,;)}\]<]|\Z)))")
#: An XML element named as a secret (its name ends so: ``SessionToken``, ``client_secret``; not
#: ``max_tokens``), holding no space
_ELEMENT = re.compile(r"<(?P<tag>[\w.:-]{0,48}?(?i:api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|secret"
                      r"|token|passw(?:or)?d))>(?P<value>[^<>\s]{6,4096}+)</(?P=tag)>")
#: An AWS secret access key (40 characters of base64) after its name (``aws_secret_access_key``) and a space
_AWS_SECRET = re.compile(r"(?i:secret_access_key)(?:\\?[\"'])?[ \t]++(?:\\?[\"'])?"
                         r"(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")


#: A ``Cookie`` or ``Set-Cookie`` header's value (a header line, a JSON or Python mapping's item, a HAR
#: file's ``"name": "Cookie", "value": ...``, curl's ``--cookie``), to its
#: line's end: its pairs (``_PAIR``) after ";" or "," (a client joins repeated ``Set-Cookie`` headers with
#: ", ": ``requests``, ``httpx``), each value of 20 characters, or of 6 with letters and digits, a secret (a
#: session's id; not ``theme=dark``, nor a time, ``d-s=1700000000``), but a ``Set-Cookie``'s attributes
#: (``Domain=api2.example.com``)
_COOKIE = re.compile(r"(?i:cookie)(?:(?:\\*+[\"'])?[ \t]*+:|(?<=--(?i:cookie))(?:[ \t]++|=)"
                     r"|\\*+[\"']\s*+,\s*+\\*+[\"'](?i:value)\\*+[\"']\s*+:)[ \t]*+(?:\\*+[\"'])?"
                     r"(?P<value>[^\s=;,\"'\\]{1,128}+=[^\r\n\"'\\]{0,4096}+)")
_PAIR = re.compile(r"(?:\A|[;,])[ \t]*+(?P<name>[^\s=;,\"'\\]{1,128}+)=(?P<value>[^\s;,\"'\\]{6,}+)")
_ATTRIBUTES = frozenset(("path", "domain", "expires", "max-age", "samesite", "priority", "version", "comment"))
_LETTER, _DIGIT = re.compile("[A-Za-z]"), re.compile("[0-9]")
#: A command's password after ``--password`` (``--passwd``, ``--pass``) and a space, quoted or not: with
#: a character other than a letter, or of 16 letters (not prose's "the --password option"), and never a
#: variable, a placeholder or the next option (``$DB_PASSWORD``, ``<password>``, ``-h``)
_DASHED_PASSWORD = re.compile(r"(?<![\w-])(?i:--pass(?:wd|word)?)[ \t]++(?:\\?[\"'])?(?![-<$%{\[(*])"
                              r"(?P<value>(?=[^\s\"'\\`]{0,127}?[^A-Za-z\s\"'\\`]|[A-Za-z]{16})[^\s\"'\\`]{4,128}+)")
#: A password glued to ``-p`` (``-P`` is a port), MySQL's and MariaDB's where their command is (``_in_command``),
#: never a port mapping (``docker run --name mysql -p3306:3306 ...``)
_GLUED_PASSWORD = re.compile(r"-p(?<=[ \t]-p)(?![\d.]++:[\d.:-]*+(?:/[a-z]++)?(?![^\s\"'\\]))"
                             r"(?P<value>[^\s\"'\\<-][^\s\"'\\]{2,127}+)")
#: curl's credentials (``-u user:password``, ``--user``), the password after the user's ":" (never a
#: variable or a placeholder: ``-u "$USER:$TOKEN"``), where curl's command is (``docker run -u 1000:1000`` is a uid)
_CURL_USER = re.compile(r"-(?<=[ \t]-)(?:u[ \t]*+|-user(?:[ \t]++|=))"
                        r"(?:\\?[\"'])?[^\s:\"'\\$]{1,64}+:(?![$<{%])(?P<value>[^\s\"'\\]{3,128}+)")
#: A password after an option that takes nothing else (``sshpass -p secret``, ``redis-cli -a secret``: its ``-p``
#: is a port), spaced or glued, quoted (to its closing quote) or not, where its command is (``_in_command``);
#: never a variable, a placeholder or the next option
_OPTION_VALUE = (r"(?:[ \t]++)?(?:\\?[\"'])?(?![-<$%{\[(*])"
                 r"(?P<value>(?<=[\"'])[^\"'\r\n\\]{1,128}+(?=[\"'])|[^\s\"'\\`]{1,128}+)")
_SSHPASS_PASSWORD = re.compile(r"-(?<=[ \t]-)p" + _OPTION_VALUE)
_REDIS_PASSWORD = re.compile(r"-(?<=[ \t]-)a" + _OPTION_VALUE)
#: curl's cookies after ``-b`` (``--cookie`` is ``_COOKIE``'s): pairs (``_PAIR``), not a file's name
_CURL_COOKIE = re.compile(r"-(?<=[ \t]-)b[ \t]++(?:\\?[\"'])?(?P<value>[^\s=;,\"'\\]{1,128}+=[^\r\n\"'\\]{0,4096}+)")
_MYSQL_COMMANDS, _CURL_COMMANDS, _COMMAND_ENDS = ("mysql", "mariadb"), ("curl",), ("\n", "|", ";", "&")
_SSHPASS_COMMANDS, _REDIS_COMMANDS = ("sshpass",), ("redis-cli",)
#: What may come between ``sshpass`` and its ``-p``: its options that take no password (``-v``, ``-P prompt``);
#: after another (``-e``, ``-f file``) or the command it runs, a ``-p`` is that command's (``ssh -p 2222``: a port)
_SSHPASS_BEFORE = re.compile(r"(?:[ \t]++-(?:v++|P[ \t]*+[^\s-]\S*+))*+[ \t]++")


def _cookie_values(match: re.Match[str]) -> tuple[str, int]:
    """A ``_COOKIE`` match's value with its pairs' values replaced, and how many."""
    replaced = 0

    def pair(found: re.Match[str]) -> str:
        nonlocal replaced
        value = found["value"]
        if found["name"].lower() in _ATTRIBUTES or not (
                len(value) >= 20 or (_LETTER.search(value) and _DIGIT.search(value))):
            return found.group()
        replaced += 1
        return f"{found.group()[:found.start('value') - found.start()]}<API_KEY>"

    return _PAIR.sub(pair, match["value"]), replaced


def redact_service_secrets(text: str) -> tuple[str, int]:
    """``text`` with prefixed service tokens and webhook URLs' secret paths replaced, and how many."""
    replaced = 0
    if "_" in text or "-" in text or "ya29." in text or "SG." in text:
        text, replaced = _TOKEN.subn("<API_KEY>", text)
    if "/" in text and "hooks" in text:
        text, n = _WEBHOOK.subn(r"\g<prefix><API_KEY>", text)
        replaced += n
    return text, replaced


def hint(text: str) -> bool:
    """Whether ``text`` holds one of ``TRIGGERS``."""
    return (("_" in text and _UNDERSCORE_END.search(text) is not None) or ("-" in text and dash_hint(text))
            or ("/" in text and "hooks" in text and any(map(text.__contains__, WEBHOOK_HINTS)))
            or ("9" in text and "ya29." in text) or ("G" in text and "SG." in text))


def dash_hint(text: str) -> bool:
    """Whether ``text`` holds one of ``GITLAB_PREFIXES`` or ``DASH_PREFIXES``."""
    return _DASH_END.search(text) is not None


def redact_named(text: str, lowered: str, authorization: bool, named: bool, cookie: bool = False) -> tuple[str, int]:
    """``text`` (``lowered``: in lower case) with each ``Authorization`` header's credentials replaced
    if ``authorization``, a ``Cookie`` header's values if ``cookie``, and if ``named`` the values of XML
    elements named as secrets and of AWS secret access keys after their name and a space; and how many."""
    replaced = 0
    if cookie:
        pieces: list[str] = []
        done = 0
        for match in _found_at(_COOKIE, text, lowered, "cookie"):
            value, n = _cookie_values(match)
            if n:
                pieces += (text[done:match.start("value")], value)
                done, replaced = match.end("value"), replaced + n
        if pieces:
            text = "".join(pieces) + text[done:]
            lowered = text.lower()
    if authorization:
        text, n = _replaced(text, _found_at(_AUTHORIZATION, text, lowered, "authorization"))
        replaced += n
        lowered = text.lower() if n else lowered
    if named and "</" in text:
        text, n = _replaced(text, _ELEMENT.finditer(text))
        replaced += n
        lowered = text.lower() if n else lowered
    if named and "access_key" in lowered:
        text, n = _replaced(text, _found_at(_AWS_SECRET, text, lowered, "secret"))
        replaced += n
        lowered = text.lower() if n else lowered
    if named and command_hint(lowered):
        if "--pass" in lowered:
            text, n = _replaced(text, _found_at(_DASHED_PASSWORD, text, lowered, "--pass"))
            replaced += n
            lowered = text.lower() if n else lowered
        if "mysql" in lowered or "mariadb" in lowered:
            text, n = _replaced(text, _in_command(_GLUED_PASSWORD, text, _MYSQL_COMMANDS))
            replaced += n
        if "curl" in lowered:
            text, n = _replaced(text, _in_command(_CURL_USER, text, _CURL_COMMANDS))
            replaced += n
            if "-b" in text:
                text, n = _curl_cookies(text)
                replaced += n
        if "sshpass" in lowered:  # (its own ``-p`` only: ``sshpass -p pw ssh -p 2222 host``'s second is ssh's port)
            text, n = _replaced(text, _in_command(_SSHPASS_PASSWORD, text, _SSHPASS_COMMANDS, _SSHPASS_BEFORE))
            replaced += n
        if "redis-cli" in lowered:
            text, n = _replaced(text, _in_command(_REDIS_PASSWORD, text, _REDIS_COMMANDS))
            replaced += n
    return text, replaced


def _curl_cookies(text: str) -> tuple[str, int]:
    """``text`` with the values of the cookies given to curl with ``-b`` replaced (as ``_cookie_values``), and how many."""
    pieces: list[str] = []
    done = replaced = 0
    for match in _in_command(_CURL_COOKIE, text, _CURL_COMMANDS):
        value, n = _cookie_values(match)
        if n:
            pieces += (text[done:match.start("value")], value)
            done, replaced = match.end("value"), replaced + n
    return ("".join(pieces) + text[done:], replaced) if pieces else (text, 0)


def _in_command(pattern: re.Pattern[str], text: str, commands: tuple[str, ...],
                between: re.Pattern[str] | None = None) -> Iterator[re.Match[str]]:
    """The matches of ``pattern`` in ``text`` after the name of one of ``commands`` in the same command, 256
    characters before at most (never ``tar -pxf``); if ``between`` is given, right after the name but for
    what it matches whole (``commands`` of one name)."""
    for match in pattern.finditer(text):
        at = max(0, match.start() - 256)
        before = text[at:match.start()].lower()
        named = max(before.rfind(command) for command in commands)
        if named >= 0 and not any(end in before[named:] for end in _COMMAND_ENDS) and (
                between is None or between.fullmatch(text, at + named + len(commands[0]), match.start()) is not None):
            yield match


def command_hint(lowered: str) -> bool:
    """Whether ``lowered`` (a text in lower case) may hold a command's password (``_DASHED_PASSWORD``,
    ``_GLUED_PASSWORD``, ``_CURL_USER``, ``_SSHPASS_PASSWORD``, ``_REDIS_PASSWORD``; curl's cookies, ``_CURL_COOKIE``): a "-" and a "q" (a "u") found first (a character is found ten times faster than a
    longer substring; "-p" cost a microsecond a kilobyte)."""
    return "-" in lowered and ("--pass" in lowered or ("q" in lowered and "mysql" in lowered) or "mariadb" in lowered
                               or ("u" in lowered and "curl" in lowered) or "sshpass" in lowered or "redis-cli" in lowered)


def _found_at(pattern: re.Pattern[str], text: str, lowered: str, word: str) -> Iterator[re.Match[str]]:
    """The matches of ``pattern`` (which starts with ``word``) in ``text``, tried where ``word``
    starts in ``lowered``: an expression ignoring case has no literal to search for. Where a letter's
    lower case is longer (rare), positions differ: the expression is searched for."""
    if len(lowered) != len(text):
        yield from pattern.finditer(text)
        return
    end = 0
    for start in occurrences(lowered, word):
        if start >= end and (match := pattern.match(text, start)) is not None:
            end = match.end()
            yield match


def _replaced(text: str, matches: Iterable[re.Match[str]]) -> tuple[str, int]:
    """``text`` with the ``value`` group of each of ``matches`` replaced by ``<API_KEY>``, and how many."""
    pieces: list[str] = []
    done = 0
    for match in matches:
        pieces += (text[done:match.start("value")], "<API_KEY>")
        done = match.end("value")
    return ("".join(pieces) + text[done:], len(pieces) // 2) if pieces else (text, 0)
