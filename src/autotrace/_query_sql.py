"""The SQL that narrows what ``autotrace query`` reads of the local store, so that the records of
observations that cannot match are neither read nor decoded.

A query's comparison of a field the store keeps in a column (``usage.total``, ``cost.total``,
``trace_id``, ``name``, ``tenant``, ``type``, ``level``) becomes two conditions on the row: ``may``, true for every
observation the comparison matches, and ``sure``, true only for ones it matches; ``and``, ``or`` and
``not`` combine them (``not``: each is the other negated). Each is exact only where the column holds
the record's value as the matcher reads it (``_certain_number``, ``_certain_text``), and leaves the other rows to the matcher,
which still decides every row read: SQL only skips rows. Every condition is 0 or 1, never NULL, so
``NOT`` negates it exactly.

Where a column can differ from the record: a number the store keeps as NULL (a total that is text,
or an integer beyond a float) or rounded (beyond 2**53, an infinity), a bool stored as 1 or 0; text
a number became (a name given as an int is stored as ``5``); text SQLite does not lower-case as Python
does (not ASCII). The records are strict JSON written with ``json.dumps``'s separators.

``may`` reads every row (a ``CASE`` no index serves); an equality on a column an index leads with
(``trace_id``: the primary key's) also gives ``keys``, a condition the index finds rows by: the value's rows
and those whose column is a blob (bytes, whose record holds their ``str``), the only other rows the value
can match when it is no number's text (a number's column text may differ from its JSON: ``1.0e+20``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Sql = tuple[str, tuple[Any, ...]]

_NUMERIC = {"usage.total": "usage_total", "cost.total": "cost_total"}
_TEXT = {"trace_id": "trace_id", "name": "name", "tenant": "tenant", "type": "type", "level": "level"}
#: The columns an index leads with, in every layout of the store (the primary key's first column).
_KEYED = frozenset({"trace_id"})
#: The one numeric grammar (``query``'s): ASCII digits, an optional sign, fraction and exponent.
NUMBER_PATTERN = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_NUMBER = re.compile(NUMBER_PATTERN)
#: What ``json.dumps`` writes for a float that is not finite.
_NOT_FINITE = frozenset({"Infinity", "-Infinity", "NaN"})
#: The fields compared without case (the matcher's too: ``query``).
FOLDED = frozenset({"type", "level"})
_ORDERS = frozenset({"<", "<=", ">", ">=", "=", "==", "!="})
#: Below this magnitude a float holds every integer exactly: a column value is the record's.
_EXACT = 2.0**53
#: A record whose ``total`` may be one the matcher reads as a number where the column is NULL (text, or an
#: integer of 309 digits or more: beyond a float), or as no number where it is 1 or 0 (a bool).
#: (``GLOB`` scans a long text faster than ``instr``.)
_TEXT_TOTAL = "record GLOB '*\"total\": \"*'"
_HUGE_TOTAL = "record GLOB '*\"total\": [-0-9]" + "[0-9]" * 308 + "*'"
_BOOL_TOTAL = "record GLOB '*\"total\": [tf][ra][ul][es]*'"  # true, fals(e)
#: Text a number (or bool) bound to a text column becomes has only these characters (``1.0e+20``, ``-Inf``).
_NUMBERISH = "-+.0-9eEINnfa"
#: How deep ``and``/``or``/``not`` may nest in a narrowing: SQLite's parser refuses SQL nested much deeper
#: ("parser stack overflow"); a deeper part is not narrowed (the matcher decides it).
MAX_NESTING = 12


@dataclass(frozen=True, slots=True)
class Narrowing:
    """``may``: holds for every row the query matches (None: true); ``sure``: only for rows it
    matches (None: false); ``nesting``: of ``and``/``or``/``not`` in them; ``keys``: holds for every row
    the query matches, found through an index (None: none; it may be NULL: never negated)."""

    may: Sql | None = None
    sure: Sql | None = None
    nesting: int = 0
    keys: Sql | None = None


ANY = Narrowing()


def _join(parts: list[Sql], word: str) -> Sql:
    return f" {word} ".join(f"({sql})" for sql, _ in parts), tuple(a for _, args in parts for a in args)


def _negated(part: Sql | None) -> Sql | None:
    return None if part is None else (f"NOT ({part[0]})", part[1])


def both(parts: list[Narrowing]) -> Narrowing:
    """The narrowing of ``and``."""
    mays = [p.may for p in parts if p.may is not None]
    sures = [p.sure for p in parts if p.sure is not None]
    keys = [p.keys for p in parts if p.keys is not None]
    return _nested(_join(mays, "AND") if mays else None, _join(sures, "AND") if len(sures) == len(parts) else None,
                   parts, _join(keys, "AND") if keys else None)


def either(parts: list[Narrowing]) -> Narrowing:
    """The narrowing of ``or``."""
    mays = [p.may for p in parts if p.may is not None]
    sures = [p.sure for p in parts if p.sure is not None]
    keys = [p.keys for p in parts if p.keys is not None]
    return _nested(_join(mays, "OR") if len(mays) == len(parts) else None, _join(sures, "OR") if sures else None,
                   parts, _join(keys, "OR") if len(keys) == len(parts) else None)


def negated(part: Narrowing) -> Narrowing:
    """The narrowing of ``not``."""
    return _nested(_negated(part.sure), _negated(part.may), [part])


def _nested(may: Sql | None, sure: Sql | None, parts: list[Narrowing], keys: Sql | None = None) -> Narrowing:
    nesting = 1 + max(p.nesting for p in parts)
    return Narrowing(may, sure, nesting, keys) if nesting <= MAX_NESTING and (may or sure) else ANY


def where(narrowing: Narrowing) -> Sql | None:
    """The SQL a query narrows the rows read by: its ``keys`` (first, for the planner) and ``may``."""
    parts = [part for part in (narrowing.keys, narrowing.may) if part is not None]
    return _join(parts, "AND") if len(parts) > 1 else (parts[0] if parts else None)


def comparison(field: str, op: str, value: str | bool | None, text: str, number: int | float | None,
               typed_number: bool) -> Narrowing:
    """The narrowing of ``field op value`` (``query._compare``'s semantics); ``ANY`` where none is exact."""
    column = _NUMERIC.get(field)
    if column is not None:
        if op not in _ORDERS or not typed_number or number is None:
            return ANY
        bound = max(-(2**62), min(number, 2**62)) if isinstance(number, int) else number  # same order as the column's
        sql = "=" if op in ("==", "!=") else op
        exact = f"IFNULL({column} {sql} ?, 0)"
        return _leaf(f"NOT {exact}" if op == "!=" else exact, (bound,), _certain_number(column))
    column = _TEXT.get(field)
    if column is None or value is True or value is False or not _storable(text):
        return ANY
    if op in ("~", "!~"):
        exact, args = f"IFNULL(instr(lower({column}), ?) > 0, 0)", (text.casefold(),)
        negate, ascii_only = op == "!~", True
    elif op in ("=", "==", "!="):
        folded = column in FOLDED
        exact, args = ((f"{column} IS NULL", ()) if value is None else
                       (f"IFNULL({'lower(' + column + ')' if folded else column} = ?, 0)", (text.lower() if folded else text,)))
        negate, ascii_only = op == "!=", folded
    else:
        return ANY
    leaf = _leaf(f"NOT ({exact})" if negate else exact, args, _certain_text(column, ascii_only))
    if column in _KEYED and op in ("=", "==") and value is not None and not typed_number and not _numeric(text):
        return Narrowing(leaf.may, leaf.sure, leaf.nesting, (
            f"{column} IN (SELECT ? UNION ALL SELECT {column} FROM observations WHERE {column} >= x'')", (text,)))
    return leaf


def _numeric(text: str) -> bool:
    """Whether ``text`` may be a number's JSON text (which a number's column text need not be)."""
    return text in _NOT_FINITE or _NUMBER.fullmatch(text) is not None


def _leaf(exact: str, args: tuple[Any, ...], certain: str) -> Narrowing:
    return Narrowing((f"({exact}) OR NOT ({certain})", args), (f"({exact}) AND ({certain})", args))  # exact first: cheaper


def _certain_number(column: str) -> str:
    """Rows whose ``column`` is the record's total as the matcher reads it (NULL: none, or none it reads as a number)."""
    return (f"CASE WHEN {column} IS NULL THEN NOT ({_TEXT_TOTAL} OR {_HUGE_TOTAL}) "  # not abs(): -2**63 overflows
            f"WHEN {column} <= {-_EXACT!r} OR {column} >= {_EXACT!r} THEN 0 "
            f"WHEN {column} IN (0, 1) THEN NOT {_BOOL_TOTAL} ELSE 1 END")


def _certain_text(column: str, ascii_only: bool) -> str:
    """Rows whose ``column`` is the record's text (NULL: none), ASCII if ``ascii_only`` (SQLite's ``lower``)."""
    ascii_check = f" AND length(CAST({column} AS BLOB)) = length({column})" if ascii_only else ""
    return (f"CASE WHEN {column} IS NULL THEN 1 WHEN typeof({column}) != 'text' THEN 0 "
            f"ELSE {column} GLOB '*[^{_NUMBERISH}]*'{ascii_check} END")


def _storable(text: str) -> bool:
    """Whether SQLite can take ``text`` as a parameter (a lone surrogate from a command line cannot)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
