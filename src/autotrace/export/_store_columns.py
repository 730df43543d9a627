"""Values as the local store's columns take them: totals and times as 64-bit integers (or REAL),
text as UTF-8, a sequence or a mapping as its JSON text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .._internal import count
from .._serialize import strict_json

INT64 = (-(2**63), 2**63 - 1)
_SURROGATE = re.compile("[\ud800-\udfff]")


def total(value: Any, key: str = "total") -> float | None:
    """The numeric total for its column; integers beyond SQLite's 64 bits are stored as REAL (counted)."""
    if isinstance(value, dict):
        total = value.get(key)
        if isinstance(total, int) and not INT64[0] <= total <= INT64[1]:
            count("local_store.int_out_of_range")
            try:
                return float(total)
            except OverflowError:  # beyond a float too: no total, rather than losing the batch it came in
                return None
        return total if isinstance(total, int | float) else None
    return None


def ns(value: Any, fallback: int) -> int:
    """A time for its ``INTEGER NOT NULL`` column: a float one (``span.end(end_time=...)``) as its integer, one
    that is none (NaN, which SQLite takes as NULL: the whole batch failed) ``fallback``."""
    try:
        value = value if type(value) is int else int(value)
    except (TypeError, ValueError, OverflowError):
        return fallback
    return value if INT64[0] <= value <= INT64[1] else fallback


def utf8(value: Any) -> Any:
    """``value`` storable as UTF-8: a lone surrogate in a text becomes U+FFFD, as undecodable bytes show
    (an escape would not do: ``\\udcff`` in the record's JSON reads back as the surrogate)."""
    return _SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def storable(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``rows`` with each value a column can take (for a batch SQLite refused): a sequence or a mapping (a
    column's attribute that another library's span set to a list or a dict: no column type) as its JSON
    text, an integer past 64 bits (there: the totals and times are bounded already) as its digits, text
    as ``utf8`` makes it (counted once as ``local_store.invalid_text`` when one held a lone surrogate)."""
    fixed = [tuple(map(_column, row)) for row in rows]
    if any(isinstance(v, str) and _SURROGATE.search(v) for row in fixed for v in row):
        count("local_store.invalid_text")
        fixed = [tuple(map(utf8, row)) for row in fixed]
    return fixed


def _column(value: Any) -> Any:
    """One value as ``storable`` makes it (its text left to ``utf8``): a sequence or a mapping (OpenTelemetry
    takes both as an attribute's value, a resource's ``service.name`` too) as the record holds it, strict JSON."""
    if isinstance(value, list | tuple | dict):
        return strict_json(value)
    if type(value) is int and not INT64[0] <= value <= INT64[1]:
        return str(value)
    return value


def as_recorded(value: Any) -> Any:
    """A column's value as the record holds it: bytes (a blob) as their ``str``, as ``strict_json`` writes them."""
    return str(value) if isinstance(value, bytes) else value
