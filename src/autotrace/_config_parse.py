"""How ``config`` reads one setting's text (an environment variable's, or a keyword given as a string):
booleans, counts, durations, option names, lists of names, paths and URLs. Each parser raises
``ValueError`` with the reason; ``config`` adds the setting and the variable."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .export.redaction import BUILT_IN_KINDS


def as_path(raw: str | Path) -> Path:
    """A path setting, ``~`` expanded (a value from a ``.env`` file or a container's environment is not
    expanded by a shell: it named a directory ``~``) and made absolute (the file stays the same when
    the application changes directory: a forked worker reopens the store, a credentials file is reread)."""
    path = os.path.expanduser(raw)
    return Path(path if path == ":memory:" else os.path.abspath(path))


def http_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the base of the Langfuse endpoint, or None when it can."""
    if not isinstance(url, str):
        return f"not a string but a {type(url).__name__}"
    if any(ch.isspace() for ch in url):
        return "contains whitespace"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError as exc:
        return url_error(exc)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not http(s)://host[:port][/path]"
    if parts.username is not None or parts.password is not None:  # the exporter would send neither
        return "Langfuse takes the key pair, not a user and password in the URL"
    if parts.query or parts.fragment:
        return "API paths are appended to it, so it cannot have a query or fragment"
    return None


def url_error(exc: ValueError) -> str:
    """What ``urlsplit`` refused, never in its words: they quote the "port" or the netloc, which a
    password holding ``/``, ``?`` or ``#`` (not percent-encoded) cuts short and so puts there."""
    if "port" in str(exc).lower():
        return "its port is not a number from 0 to 65535; a / ? or # in a password must be percent-encoded"
    return "not a valid URL"


def shown_url(url: str) -> str:
    """``url`` as an error may show it: whatever stands before its last ``@`` (a user and password)
    masked, also in a URL too broken to parse."""
    return re.sub(r"^([^:/?#\s]*://).*@", r"\1***@", url, flags=re.S)


def boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true/false")


def positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("expected a positive integer")
    return value


def positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("expected a positive number")
    return value


def choice(raw: str) -> str:
    """One of a setting's options, whatever its case (``Drop``, ``OFF``)."""
    return raw.lower()


def names(raw: str) -> tuple[str, ...]:
    """Names separated by commas; text of commas alone names nothing, which is an error rather than
    a silent empty list (that would turn every integration, detector or target off)."""
    found = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not found and raw.strip():
        raise ValueError("names nothing (only commas); write 'none' to name nothing")
    return found


def all_or_none(raw: str) -> bool | None:
    """For a setting of named things (detectors, targets, integrations): True for a word that means
    all of them (``all``, ``true``, ``on``, ``yes``, ``1``), False for one that means none
    (``none``, ``false``, ``off``, ``no``, ``0``), None for names."""
    word = raw.strip().lower()
    if word in ("all", "true", "on", "yes", "1"):
        return True
    if word in ("none", "false", "off", "no", "0"):
        return False
    return None


def targets(raw: str) -> tuple[str, ...]:
    """``tenant_baggage``: ``all``, ``none``, or channel target patterns separated by commas."""
    every = all_or_none(raw)
    return names(raw) if every is None else ("*",) if every else ()


def methods(raw: str) -> tuple[str, ...]:
    """``grpc_untraced_methods``: ``none`` (trace every call), or method patterns separated by commas."""
    return () if all_or_none(raw) is False else names(raw)


def integrations(raw: str) -> tuple[str, ...] | None:
    """``integrations``: ``all`` (every one discovered), ``none``, or names separated by commas."""
    every = all_or_none(raw)
    return names(raw) if every is None else None if every else ()


def redact(value: Any) -> Any:
    """``redact`` as ``True`` (all detectors), ``False`` (none), a hook, or a tuple of detector names
    (upper case) and hooks; an unknown name is an error, never a silent gap in redaction."""
    if isinstance(value, bool) or callable(value):
        return value
    if isinstance(value, str):
        every = all_or_none(value)
        if every is not None:
            return every
        value = names(value)
        if not value:
            raise ValueError("expected 'all', 'none' or detector names")
    if not isinstance(value, list | tuple | set | frozenset):
        raise ValueError(f"expected 'all', 'none', detector names or hooks, not {type(value).__name__}")
    named = [v for v in value if not callable(v)]
    unknown = [v for v in named if not isinstance(v, str) or v.strip().upper() not in BUILT_IN_KINDS]
    if unknown:
        raise ValueError(f"unknown redaction detector(s) {', '.join(map(repr, unknown))}; "
                         f"valid: all, none, {', '.join(sorted(BUILT_IN_KINDS))}")
    return tuple(v.strip().upper() if isinstance(v, str) else v for v in value)
