"""The filter language of ``autotrace query``: comparisons on observation fields joined by
``and``/``or``/``not`` with parentheses.

    type=generation and usage.total>2000
    type=retriever and doc_count<1
    level=ERROR or (name~search and not tenant=acme)
    has prompt.version

Operators: ``=`` ``==`` ``!=`` ``<`` ``<=`` ``>`` ``>=`` ``~`` (case-insensitive contains) ``!~``.
Values: numbers, quoted strings, bare words, ``true``/``false``/``null``. A quoted string takes the
escapes ``show`` prints a control or invisible character as (``\\n``, ``\\x1b``, ``\\u200b``); another
escaped character stands for itself (``\\"``). A dotted field reads nested values (``usage.total``)
or, where there is none, a key holding dots (``metadata.app.version``). A number is ASCII digits
with an optional sign, fraction and exponent (``-2``, ``+.5``, ``2.5e3``); ``1_000``, `` 5 ``,
``nan``, ``inf`` or other scripts' digits are not numbers, typed or stored. ``~`` looks for the value
as typed (``name~404`` finds ``error-404``) in the field's text (structured fields as JSON, non-ASCII
kept). A value typed as a finite number compares numerically with a numeric field (``2.5e3`` equals
2500); ``<`` ``<=`` ``>`` ``>=`` with such a value also read a text field that is wholly a finite
number, and fail on anything else. Otherwise equality compares text: a text field with the value as
typed (``version=1.10`` does not match ``"1.1"``), any other field with its JSON text. A missing (or
null) field equals ``null`` (``model=null``) and fails every other comparison except ``!=`` and
``!~``. ``type`` and ``level`` compare case-insensitively. A word followed by an operator is a field
name, keywords included (``has=1``, ``not~x``).
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import _query_sql
from ._query_sql import Narrowing

MAX_LENGTH = 4000
MAX_DEPTH = 64
# The one numeric grammar, for a typed value and a text field alike: ASCII digits, an optional sign,
# fraction and exponent; no spaces, underscores, other scripts' digits, nan or inf (which float() takes).
_NUMBER_PATTERN = _query_sql.NUMBER_PATTERN
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<op>==|!=|<=|>=|!~|=|<|>|~)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>""" + _NUMBER_PATTERN + r"""(?![\w.-]))
  | (?P<word>[A-Za-z_][\w.:/@-]*|[\w.:/@-]+)
""", re.VERBOSE | re.DOTALL)  # DOTALL: a backslash escapes a newline too, as ``_ESCAPE`` reads it
_NUMBER = re.compile(_NUMBER_PATTERN)
#: A backslash escape in a quoted value: ``\n`` ``\r`` ``\t``, ``\xHH`` and ``\uXXXX`` (as ``show`` prints a
#: control or invisible character), any other character as itself (``\"``, ``\\``).
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)", re.DOTALL)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
_MISSING = object()
_ORDER: dict[str, Callable[[Any, Any], bool]] = {"<": operator.lt, "<=": operator.le, ">": operator.gt,
                                                 ">=": operator.ge}
Predicate = Callable[[Mapping[str, Any]], bool]
#: A parsed part: its predicate, and what the store can decide of it in SQL (``_query_sql``).
_Parsed = tuple[Predicate, Narrowing]


class QueryError(ValueError):
    """A malformed query; ``position`` is the 0-based column of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at column {position + 1})")
        self.position = position


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position] in "\"'":
                raise QueryError("unterminated string", position)
            raise QueryError(f"unexpected character {text[position]!r}", position)
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    return tokens


def _lookup(obs: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path``; a key holding dots (``metadata.app.version``) is read whole where the
    nested reading finds nothing."""
    value: Any = obs
    index = 0
    while index < len(path):
        part = path[index]
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdecimal() and int(part) < len(value):  # not '²': int() fails
            value = value[int(part)]
        elif isinstance(value, Mapping) and index + 1 < len(path):
            return _dotted(value, path[index:])
        else:
            return _MISSING
        index += 1
    return _MISSING if value is None else value


def _dotted(value: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """``_lookup`` of ``path`` in ``value`` whose first part is a longer key with dots: the longest first."""
    for end in range(len(path), 1, -1):
        key = ".".join(path[:end])
        if key in value:
            return _lookup(value[key], path[end:])
    return _MISSING


@dataclass(frozen=True, slots=True)
class _Literal:
    """A value as typed: ``value`` is its text, a bool or None (``null``); ``number`` is set when it
    was typed as a number, and holds that number if it is finite (None otherwise)."""

    value: str | bool | None
    text: str
    typed_number: bool = False
    number: int | float | None = None


def _finite(value: Any) -> int | float | None:
    """``value`` if it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if isinstance(value, int) or math.isfinite(value) else None


def _parse_number(text: str) -> int | float | None:
    """The finite number ``text`` holds as a whole in the ``_NUMBER`` grammar (an integer exactly),
    else None."""
    if _NUMBER.fullmatch(text) is None:
        return None
    try:
        return _finite(float(text) if any(c in text for c in ".eE") else int(text))
    except ValueError:  # an integer too long for int(): not a number we compare
        return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


def _compare(field: str, op: str, expected: _Literal) -> Predicate:
    path = tuple(field.split("."))
    fold = path[-1] in _query_sql.FOLDED and len(path) == 1
    needle = expected.text.casefold()

    def predicate(obs: Mapping[str, Any]) -> bool:
        actual = _lookup(obs, path)
        if actual is _MISSING:  # absent or null: equals null and contains nothing (``!~`` any value holds)
            return op in ("=", "==", "!~") if expected.value is None else op in ("!=", "!~")
        if op in ("~", "!~"):
            found = needle in _text(actual).casefold()
            return found if op == "~" else not found
        if expected.value is None:
            return op == "!="
        if op in ("<", "<=", ">", ">="):
            if expected.typed_number:
                left = _parse_number(actual) if isinstance(actual, str) else _finite(actual)
                return left is not None and expected.number is not None and _ORDER[op](left, expected.number)
            if not isinstance(actual, str) or isinstance(expected.value, bool):
                return False
            return _ORDER[op](actual.lower(), expected.text.lower()) if fold else _ORDER[op](actual, expected.text)
        if isinstance(expected.value, bool) or isinstance(actual, bool):
            equal = actual is expected.value
        elif expected.number is not None and _finite(actual) is not None:
            equal = actual == expected.number
        else:
            left = _text(actual)
            equal = left.lower() == expected.text.lower() if fold else left == expected.text
        return equal if op in ("=", "==") else not equal

    return predicate


class _Parser:
    def __init__(self, tokens: list[_Token], length: int) -> None:
        self.tokens = tokens
        self.index = 0
        self.length = length
        self.fields: list[str] = []  # the field names the query reads, in order

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def keyword(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.lower() == word

    def before_operator(self) -> bool:
        """Whether the token after the next is an operator: the next word is then a field name even
        if it reads as a keyword (``has=1``, ``not~x``), where a keyword could not stand."""
        following = self.tokens[self.index + 1] if self.index + 1 < len(self.tokens) else None
        return following is not None and following.kind == "op"

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise QueryError("unexpected end of query", self.length)
        self.index += 1
        return token

    def parse_or(self, depth: int) -> _Parsed:
        if depth > MAX_DEPTH:
            raise QueryError(f"nesting deeper than {MAX_DEPTH}", self.peek().position if self.peek() else 0)
        parsed = [self.parse_and(depth)]
        while self.keyword("or"):
            self.take()
            parsed.append(self.parse_and(depth))
        if len(parsed) == 1:
            return parsed[0]
        parts = [p for p, _ in parsed]
        return (lambda obs: any(p(obs) for p in parts)), _query_sql.either([n for _, n in parsed])

    def parse_and(self, depth: int) -> _Parsed:
        parsed = [self.parse_not(depth)]
        while self.keyword("and"):
            self.take()
            parsed.append(self.parse_not(depth))
        if len(parsed) == 1:
            return parsed[0]
        parts = [p for p, _ in parsed]
        return (lambda obs: all(p(obs) for p in parts)), _query_sql.both([n for _, n in parsed])

    def parse_not(self, depth: int) -> _Parsed:
        if self.keyword("not") and not self.before_operator():
            self.take()
            if depth + 1 > MAX_DEPTH:
                raise QueryError(f"nesting deeper than {MAX_DEPTH}", self.peek().position if self.peek() else 0)
            inner, narrowing = self.parse_not(depth + 1)
            return (lambda obs: not inner(obs)), _query_sql.negated(narrowing)
        return self.parse_atom(depth)

    def parse_atom(self, depth: int) -> _Parsed:
        named = self.before_operator()
        token = self.take()
        if token.kind == "lparen":
            inner = self.parse_or(depth + 1)
            closing = self.peek()
            if closing is None or closing.kind != "rparen":
                raise QueryError("missing ')'", closing.position if closing else self.length)
            self.take()
            return inner
        if token.kind == "word" and token.text.lower() == "has" and not named:
            field = self.take()
            if field.kind != "word":
                raise QueryError("'has' needs a field name", field.position)
            self.fields.append(field.text)
            path = tuple(field.text.split("."))
            return (lambda obs: _lookup(obs, path) is not _MISSING), _query_sql.ANY
        if token.kind != "word" or (token.text.lower() in ("and", "or", "not") and not named):
            raise QueryError(f"expected a field name, found {token.text!r}", token.position)
        op = self.take()
        if op.kind != "op":
            raise QueryError(f"expected an operator after {token.text!r}, found {op.text!r}", op.position)
        self.fields.append(token.text)
        expected = self.value()
        return _compare(token.text, op.text, expected), _query_sql.comparison(
            token.text, op.text, expected.value, expected.text, expected.number, expected.typed_number)

    def value(self) -> _Literal:
        token = self.take()
        if token.kind == "number":
            return _Literal(token.text, token.text, True, _parse_number(token.text))
        if token.kind == "string":
            text = _ESCAPE.sub(lambda m: _unescape(m, token.position + 1), token.text[1:-1])
            return _Literal(text, text)
        if token.kind == "word":
            lowered = token.text.lower()
            if lowered in ("true", "false"):
                return _Literal(lowered == "true", token.text)
            return _Literal(None if lowered == "null" else token.text, token.text)
        raise QueryError(f"expected a value, found {token.text!r}", token.position)


def _unescape(match: re.Match[str], offset: int) -> str:
    """The character an escape in a quoted value (at ``offset`` in the query) stands for."""
    code = match.group(1)
    if len(code) > 1:
        return chr(int(code[1:], 16))
    if code in "xu":
        raise QueryError(f"\\{code} needs {2 if code == 'x' else 4} hex digits", offset + match.start())
    return _ESCAPES.get(code, code)


class Query:
    """A compiled filter; ``matches`` never raises. ``fields``: the field names it reads; ``where``: SQL on the
    store's columns true for every observation that matches (``_query_sql``; None: no narrowing), so that
    the store reads only those."""

    def __init__(self, text: str, predicate: Predicate, fields: tuple[str, ...] = (),
                 where: _query_sql.Sql | None = None) -> None:
        self.text = text
        self._predicate = predicate
        self.fields = fields
        self.where = where

    def matches(self, obs: Mapping[str, Any]) -> bool:
        try:
            return bool(self._predicate(obs))
        except Exception:
            return False

    def __repr__(self) -> str:
        return f"Query({self.text!r})"


def compile_query(text: str) -> Query:
    """Compile ``text``; raises ``QueryError`` with the column of the problem."""
    if len(text) > MAX_LENGTH:
        raise QueryError(f"query longer than {MAX_LENGTH} characters", MAX_LENGTH)
    tokens = _tokenize(text)
    if not tokens:
        raise QueryError("empty query", 0)
    parser = _Parser(tokens, len(text))
    predicate, narrowing = parser.parse_or(0)
    trailing = parser.peek()
    if trailing is not None:
        raise QueryError(f"unexpected {trailing.text!r}", trailing.position)
    return Query(text, predicate, tuple(parser.fields), _query_sql.where(narrowing))
