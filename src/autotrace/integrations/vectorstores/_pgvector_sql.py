"""Reading a psycopg statement for pgvector: is it a vector search, and what does it ask for (the
table searched, how many rows it returns at most, the distance operator)?

Only code counts: comments and string literals are blanked out first (an operator or a quote in
them is no part of the statement). A vector search is a ``SELECT`` (or ``WITH ... SELECT``) using a
distance operator; ``EXPLAIN``, ``COPY``, ``DECLARE`` and writes that use one return no rows found
by it. Of several statements in one string, the first search is read (``Request.statement``: which
one, its rows being that statement's result).
"""

from __future__ import annotations

import re
from numbers import Integral
from typing import Any

#: pgvector's distance operators and their metrics (``<+>``, ``<~>``, ``<%>``: pgvector 0.7 and later).
METRICS = {"<->": "l2", "<=>": "cosine", "<#>": "inner_product", "<+>": "l1", "<~>": "hamming", "<%>": "jaccard"}
#: ``<%>`` in a statement with psycopg placeholders, where a percent sign is written ``%%``.
_SPELLED = {"<%%>": "<%>"}
_OPERATORS = (*METRICS, *_SPELLED)
#: What is not code: comments, string literals (``'...'``, ``E'...'``, ``$tag$...$tag$``); and a
#: double-quoted identifier (group 1), kept, in which a quote starts no literal.
_NOT_CODE = re.compile(r"""("(?:[^"]|"")*")|--[^\n]*|/\*.*?\*/|(?<![\w$])[Ee]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'"""
                       r"|(?<![\w$])\$((?:[A-Za-z_]\w*)?)\$.*?\$\2\$", re.DOTALL)
_MARKS = ("'", '"', "--", "/*", "$")  # what starts something _NOT_CODE matches
_OPERATOR_PATTERN = r"<->|<=>|<#>|<\+>|<~>|<%%?>"
_OPERATOR = re.compile(_OPERATOR_PATTERN)
_SEARCH = re.compile(r"[\s(]*(?:SELECT|WITH)\b", re.IGNORECASE)
_NAME = r'(?:"(?:[^"]|"")*"|[A-Za-z_][\w$]*)'
#: What shapes a statement: parentheses (``query``: a subquery's), the table after ``FROM``, a
#: ``LIMIT`` (or ``FETCH FIRST``: a number, ``ALL``, a parameter: ``%s``, ``%(name)s``, a raw
#: cursor's ``$n``), ``ORDER BY`` and the distance operators.
_TOKENS = re.compile(
    rf"(?P<open>\((?P<query>\s*(?:SELECT|WITH)\b)?)|(?P<close>\))"
    rf"|\bFROM\s+(?:ONLY\s+)?(?P<table>{_NAME}(?:\s*\.\s*{_NAME})*)"
    r"|\b(?:LIMIT|FETCH\s+(?:FIRST|NEXT))\s+(?P<limit>ALL\b|\d+|%\((?P<name>\w+)\)[sbt]|%[sbt]|\$(?P<number>\d+))"
    rf"|(?P<order>\bORDER\s+BY\b)|(?P<operator>{_OPERATOR_PATTERN})", re.IGNORECASE)
_POSITIONAL = re.compile(r"%%|%[sbt]")
_PARENTHESES = re.compile(r"[()]")


def sql_text(query: Any, cursor: Any) -> str | None:
    """The statement's text: a string, bytes or a ``psycopg.sql`` object rendered for ``cursor``."""
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode("utf-8", "replace")
    as_string = getattr(query, "as_string", None)
    if callable(as_string):
        try:
            return str(as_string(cursor))
        except Exception:
            return None
    return None


def _code(text: str) -> str:
    """``text`` with its comments and string literals blanked out, every position kept."""
    if not any(mark in text for mark in _MARKS):
        return text
    return _NOT_CODE.sub(lambda m: m.group() if m.group(1) else " " * len(m.group()), text)


def _statement(code: str) -> tuple[int, int] | None:
    """Where the first statement that searches with a distance operator starts and ends (one
    before it using an operator may be no search: a ``DELETE``, an ``EXPLAIN``)."""
    end = 0
    while (operator := _OPERATOR.search(code, end)) is not None:
        start = code.rfind(";", 0, operator.start()) + 1
        end = code.find(";", operator.end())
        end = len(code) if end < 0 else end
        if _SEARCH.match(code, start):
            return start, end
    return None


def _wrapping(code: str, start: int, end: int) -> int:
    """How many pairs of parentheses enclose the whole statement ``code[start:end]``
    (``(SELECT ... LIMIT 2)``: one), its own ``LIMIT`` and ``ORDER BY`` being inside them."""
    wrapped = 0
    while True:
        while start < end and code[start].isspace():
            start += 1
        while end > start and code[end - 1].isspace():
            end -= 1
        if start >= end or code[start] != "(" or code[end - 1] != ")":
            return wrapped
        depth = 0
        for parenthesis in _PARENTHESES.finditer(code, start, end - 1):  # does the first close at the last?
            depth += 1 if parenthesis.group() == "(" else -1
            if depth == 0:
                return wrapped
        wrapped, start, end = wrapped + 1, start + 1, end - 1


def _results_before(code: str, start: int) -> int:
    """How many results the statements before ``start`` return: one each, empty ones none."""
    return sum(1 for part in code[:start].split(";") if part.strip())


class Request(dict[str, Any]):
    """A search's fields, and which result of its string holds its rows (``statement``: 0 for the
    first; a ``SET`` or a ``SELECT`` before the search returns its own)."""

    statement = 0


def is_vector_search(query: Any, cursor: Any) -> bool:
    """Does this statement search with a pgvector distance operator? Other SQL costs one substring test."""
    text = sql_text(query, cursor)
    if text is None or "<" not in text or not any(op in text for op in _OPERATORS):
        return False
    return _statement(_code(text)) is not None


class _Scope:
    """A query (the statement, or a subquery in parentheses) and the first table it reads."""

    __slots__ = ("table",)

    def __init__(self) -> None:
        self.table: str | None = None


def request(text: str, params: Any) -> Request:
    """What a vector search asks for: the table of the query using the operator (else the first one
    named), its ``top_k`` and its operator and metric."""
    code = _code(text)
    start, end = _statement(code) or (0, len(code))
    scopes: list[tuple[_Scope, bool]] = [(_Scope(), True)]  # innermost last; False: an expression's parentheses
    own = 1 + _wrapping(code, start, end)
    searched: _Scope | None = None
    first_table: str | None = None
    limit: re.Match[str] | None = None
    operator: str | None = None
    ordered = False
    for token in _TOKENS.finditer(code, start, end):
        if token["open"] is not None:
            scopes.append((_Scope(), True) if token["query"] else (scopes[-1][0], False))
        elif token["close"] is not None:
            if len(scopes) > 1:
                scopes.pop()
        elif token["table"] is not None:
            scope, is_query = scopes[-1]
            if is_query and scope.table is None:  # not ``substring(x FROM 2)``, ``extract(year FROM t)``
                scope.table = re.sub(r'\s*\.\s*', ".", token["table"]).replace('"', "")
                first_table = first_table or scope.table
        elif token["operator"] is not None:
            if operator is None:
                operator, searched = _SPELLED.get(token["operator"], token["operator"]), scopes[-1][0]
        elif len(scopes) == own:  # the statement's own LIMIT and ORDER BY, not a subquery's
            if token["order"] is not None:
                ordered = True
            else:
                limit = token
    operator = operator or "<->"
    found = Request(collection=(searched.table if searched else None) or first_table,
                    top_k=_top_k(text, limit, params) if ordered else None,
                    metadata={"operator": operator, "metric": METRICS[operator]})
    found.statement = _results_before(code, start)
    return found


def _top_k(text: str, limit: re.Match[str] | None, params: Any) -> int | None:
    """The rows a ranked statement returns at most (its ``LIMIT``, read from ``params`` when it is
    a parameter); None if it has none or it is not a whole number."""
    if limit is None:
        return None
    value = limit["limit"]
    try:
        if value.isdigit():
            return int(value)
        if value.upper() == "ALL":
            return None
        if limit["name"] is not None:
            value = params[limit["name"]]
        elif limit["number"] is not None:
            value = params[int(limit["number"]) - 1]
        else:  # the parameters before it, ``%%`` being a percent sign (psycopg counts them everywhere)
            value = params[sum(p.group() != "%%" for p in _POSITIONAL.finditer(text, 0, limit.start("limit")))]
    except (LookupError, TypeError, ValueError):
        return None
    # a numpy integer too (psycopg sends one as a number), recorded as an int
    return int(value) if isinstance(value, Integral) and not isinstance(value, bool) else None
