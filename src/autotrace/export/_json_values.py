"""A placeholder that replaced a number in JSON text (``{"card": 4111111111111111}``) quoted, so the
text stays JSON (Langfuse shows JSON input and output as a tree, other text as it is written)."""

from __future__ import annotations

import json
import re

#: A placeholder where JSON text has a value (after an opening bracket, a colon or a comma)
_BARE = re.compile(r"([\[:,][ \t\r\n]*)(<[A-Z_]+>)")
_PLACEHOLDER = re.compile(r"<[A-Z_]+>")
#: Placeholders quoted one at a time at most (each costs a parse of the text)
_MAX_QUOTED = 16


def quote_bare_placeholders(text: str, original: str) -> str:
    """``text`` (``original`` with values replaced) with each placeholder where JSON's parser expects a
    value quoted, if ``original`` is JSON and that makes ``text`` JSON; else ``text``. All are quoted at
    once first (where one is in a string, a quote put around it ends the string: never JSON), then, if
    that is no JSON, one at a time where the parser stops."""
    if _BARE.search(text) is None:
        return text
    try:
        json.loads(original)
        quoted = _BARE.sub(r'\1"\2"', text)
        try:
            json.loads(quoted)
            return quoted
        except json.JSONDecodeError:
            quoted = text
        for _ in range(_MAX_QUOTED):
            try:
                json.loads(quoted)
                return quoted
            except json.JSONDecodeError as error:
                if (found := _PLACEHOLDER.match(quoted, error.pos)) is None:
                    return text
                quoted = f'{quoted[:error.pos]}"{found.group()}"{quoted[found.end():]}'
    except (ValueError, RecursionError):  # no JSON (a JSONDecodeError is a ValueError), or nested too deep
        pass
    return text
