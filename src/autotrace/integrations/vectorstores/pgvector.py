"""pgvector through psycopg 3: statements using ``<->``, ``<=>`` or ``<#>`` become retrievals.

``Cursor.execute`` and ``AsyncCursor.execute`` are wrapped (``Connection.execute`` goes through
them). Other SQL costs one substring test. The table comes from ``FROM``, ``top_k`` from
``LIMIT``; the result is read from the cursor's buffered result without consuming it: the row
count, ids (an ``id`` column), content (``content``/``text``/``document``) and scores (a column
named ``distance``, ``score`` or ``similarity``, or the unnamed distance expression).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from ..base import Integration
from ._common import Batch, argument, document, search_wrapper

_OPERATORS = ("<->", "<=>", "<#>")
_TABLE = re.compile(r"\bFROM\s+([\w.\"]+)", re.IGNORECASE)
_LIMIT = re.compile(r"\bLIMIT\s+(\d+)", re.IGNORECASE)
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_SCORE_COLUMNS = ("distance", "score", "similarity", "?column?")
_CONTENT_COLUMNS = ("content", "text", "document", "page_content")
_TUPLES_OK = 2  # psycopg.pq.ExecStatus.TUPLES_OK: the statement returned rows


def _sql_text(query: Any, cursor: Any) -> str | None:
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


def _has_operator(text: str) -> bool:
    return "<" in text and any(op in text for op in _OPERATORS)


def is_vector_search(query: Any, cursor: Any) -> bool:
    """Cheap test: does this statement use a pgvector distance operator outside its string
    literals? (``to_tsquery('fat <-> rat')`` is a text search, not a vector search.)"""
    text = _sql_text(query, cursor)
    return text is not None and _has_operator(text) and _has_operator(_LITERAL.sub("''", text))


def _describe(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    text = _LITERAL.sub("''", _sql_text(argument(args, kwargs, "query", 0), instance) or "")
    table = _TABLE.search(text)
    limit = _LIMIT.search(text)
    operator = next(op for op in _OPERATORS if op in text)
    return {"collection": table.group(1).strip('"') if table else None,
            "top_k": int(limit.group(1)) if limit else None,
            "metadata": {"operator": operator, "metric": {"<->": "l2", "<=>": "cosine", "<#>": "inner_product"}[operator]}}


def _reader(cursor: Any, result: Any, column: int | None) -> Callable[[int], Any] | None:
    """A function reading ``column`` of a row as text: a binary value (``binary=True``) is loaded
    with the cursor's own loader and shown as its text form would be."""
    if column is None:
        return None
    if result.fformat(column) == 0:
        return lambda row: (raw.decode("utf-8", "replace") if isinstance(raw := result.get_value(row, column), bytes)
                            else raw)
    oid = result.ftype(column)
    loader_class = cursor.adapters.get_loader(oid, 1)
    loader = loader_class(oid, cursor) if loader_class is not None else None

    def read(row: int) -> Any:
        raw = result.get_value(row, column)
        if raw is None or loader is None:
            return None
        value = loader.load(raw)
        return value if isinstance(value, str) else str(value)

    return read


def _documents(cursor: Any, result: Any, names: list[str]) -> Iterator[dict[str, Any]]:
    position = {name: index for index, name in enumerate(names)}
    id_of = _reader(cursor, result, position.get("id"))
    content_of = _reader(cursor, result, next((position[n] for n in _CONTENT_COLUMNS if n in position), None))
    score_of = _reader(cursor, result, next((position[n] for n in _SCORE_COLUMNS if n in position), None))
    for row in range(result.ntuples):
        score = score_of(row) if score_of else None
        yield document(id_of(row) if id_of else None, float(score) if score is not None else None,
                       content_of(row) if content_of else None)


def _results(cursor: Any, request: dict[str, Any]) -> list[Batch] | None:
    """``execute`` returns the cursor itself; its buffered result is read, not consumed. A server-side
    cursor (rows come with later fetches) or pipeline mode (results come at the sync) has no rows
    yet: the result is then unknown, not empty."""
    result = getattr(cursor, "pgresult", None)
    if result is None or result.status != _TUPLES_OK:
        return None
    names = [c.name for c in cursor.description or ()]
    return [Batch(result.ntuples, _documents(cursor, result, names))]


def _vector_only(wrapper: Any, asynchronous: bool) -> Any:
    """Apply ``wrapper`` only to vector searches; everything else runs untouched."""
    if asynchronous:
        async def traced_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            if not is_vector_search(argument(args, kwargs, "query", 0), instance):
                return await wrapped(*args, **kwargs)
            return await wrapper(wrapped, instance, args, kwargs)

        return traced_async

    def traced(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_vector_search(argument(args, kwargs, "query", 0), instance):
            return wrapped(*args, **kwargs)
        return wrapper(wrapped, instance, args, kwargs)

    return traced


class PgvectorIntegration(Integration):
    name = "pgvector"
    distribution = "psycopg"
    module = "psycopg"
    supported = ">=3.1,<4"

    def _instrument(self) -> None:
        sync = search_wrapper("pgvector", "query", _describe, _results)
        asynchronous = search_wrapper("pgvector", "query", _describe, _results, asynchronous=True)
        self.patcher.wrap("psycopg", "Cursor.execute", _vector_only(sync, False))
        self.patcher.wrap("psycopg", "AsyncCursor.execute", _vector_only(asynchronous, True))


INTEGRATION = PgvectorIntegration()
