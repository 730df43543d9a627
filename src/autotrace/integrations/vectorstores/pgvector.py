"""pgvector through psycopg 3: statements using ``<->``, ``<=>`` or ``<#>`` become retrievals.

``Cursor.execute`` and ``AsyncCursor.execute`` are wrapped (``Connection.execute`` goes through
them). Other SQL costs one substring test. The table comes from ``FROM``, ``top_k`` from
``LIMIT``; the result is read from the cursor's buffered result without consuming it: the row
count, ids (an ``id`` column), content (``content``/``text``/``document``) and scores (a column
named ``distance``, ``score`` or ``similarity``, or the unnamed distance expression).
"""

from __future__ import annotations

import re
from typing import Any

from ..base import Integration
from ._common import argument, document, search_wrapper

_OPERATORS = ("<->", "<=>", "<#>")
_TABLE = re.compile(r"\bFROM\s+([\w.\"]+)", re.IGNORECASE)
_LIMIT = re.compile(r"\bLIMIT\s+(\d+)", re.IGNORECASE)
_SCORE_COLUMNS = ("distance", "score", "similarity", "?column?")
_CONTENT_COLUMNS = ("content", "text", "document", "page_content")


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


def is_vector_search(query: Any, cursor: Any) -> bool:
    """Cheap test: does this statement use a pgvector distance operator?"""
    text = _sql_text(query, cursor)
    return text is not None and "<" in text and any(op in text for op in _OPERATORS)


def _describe(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    text = _sql_text(argument(args, kwargs, "query", 0), instance) or ""
    table = _TABLE.search(text)
    limit = _LIMIT.search(text)
    operator = next(op for op in _OPERATORS if op in text)
    return {"collection": table.group(1).strip('"') if table else None,
            "top_k": int(limit.group(1)) if limit else None,
            "metadata": {"operator": operator, "metric": {"<->": "l2", "<=>": "cosine", "<#>": "inner_product"}[operator]}}


def _value(result: Any, row: int, column: int | None) -> str | None:
    if column is None:
        return None
    raw = result.get_value(row, column)
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _results(cursor: Any, request: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """``execute`` returns the cursor itself; its buffered result is read, not consumed."""
    result = getattr(cursor, "pgresult", None)
    names = [c.name for c in cursor.description or ()]
    if result is None or not names:
        return [[]]
    position = {name: index for index, name in enumerate(names)}
    id_column = position.get("id")
    content_column = next((position[n] for n in _CONTENT_COLUMNS if n in position), None)
    score_column = next((position[n] for n in _SCORE_COLUMNS if n in position), None)
    documents = []
    for row in range(result.ntuples):
        score = _value(result, row, score_column)
        documents.append(document(_value(result, row, id_column), float(score) if score is not None else None,
                                  _value(result, row, content_column)))
    return [documents]


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
