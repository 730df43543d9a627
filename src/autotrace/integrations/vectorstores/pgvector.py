"""pgvector through psycopg 3: queries (``SELECT``, ``WITH``) using a distance operator (``<->``,
``<=>``, ``<#>``, ``<+>``, ``<~>``, ``<%>``) outside comments and string literals become retrievals
(how a statement is read: ``_pgvector_sql``).

``Cursor.execute`` and ``AsyncCursor.execute`` are wrapped (``Connection.execute`` goes through
them). Other SQL costs one substring test. The table is the one the searching query reads
(``FROM``), ``top_k`` the ``LIMIT`` of a statement with ``ORDER BY`` (a number or a parameter's
value; inside the parentheses around a whole statement too); the result is read from the cursor's buffered result without consuming it: the row count,
ids (an ``id`` column), content (``content``/``text``/``document``) and scores (a column named
``distance``, ``score`` or ``similarity``, or the unnamed distance expression).

Rows that arrive after the call are recorded as the cursor hands them out, and ``doc_count`` counts
those handed out: ``Cursor.stream()`` (and the async one) is one retrieval from its first row
until it is exhausted, fails, is closed or is dropped; a named (server-side) cursor's ``execute``
starts one that its ``fetchone``/``fetchmany``/``fetchall``/iteration fill, ending when they reach
the last row, one fails, the cursor is closed, executes again or is freed.

``executemany`` is not recorded: it runs a statement once per parameter set, for writes; the rows
of a search run through it are discarded, or (``returning=True``) kept in result sets the caller
walks with ``nextset()``, which cannot be read without moving the cursor.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any

from ..._internal import guarded_failure
from ..base import Integration
from ..documents import MAX_DOCUMENTS, document
from ._common import Batch, Pending, argument, pending_search, search_wrapper
from ._pgvector_sql import is_vector_search, request, sql_text

_SCORE_COLUMNS = ("distance", "score", "similarity", "?column?")
_CONTENT_COLUMNS = ("content", "text", "document", "page_content")
_TUPLES_OK = 2  # psycopg.pq.ExecStatus.TUPLES_OK: the statement returned rows


def _describe(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    return request(sql_text(argument(args, kwargs, "query", 0), instance) or "", argument(args, kwargs, "params", 1))


Reader = Callable[[Any, int], Any]


def _reader(cursor: Any, result: Any, column: int | None) -> Reader | None:
    """A function reading ``column`` of a row of a result shaped like ``result``, as text: a binary
    value (``binary=True``) is loaded with the cursor's own loader and shown as its text form would be."""
    if column is None:
        return None
    if result.fformat(column) == 0:
        return lambda res, row: (raw.decode("utf-8", "replace") if isinstance(raw := res.get_value(row, column), bytes)
                                 else raw)
    oid = result.ftype(column)
    loader_class = cursor.adapters.get_loader(oid, 1)
    loader = loader_class(oid, cursor) if loader_class is not None else None

    def read(res: Any, row: int) -> Any:
        raw = res.get_value(row, column)
        if raw is None or loader is None:
            return None
        value = loader.load(raw)
        return value if isinstance(value, str) else str(value)

    return read


class _Columns:
    """Where the id, the content and the score of a query's rows are, and how to read them."""

    __slots__ = ("content", "id", "score")

    def __init__(self, cursor: Any, result: Any) -> None:
        # the names of ``result``'s own columns (the cursor describes only its current result)
        position = {(result.fname(index) or b"").decode("utf-8", "replace"): index for index in range(result.nfields)}
        self.id = _reader(cursor, result, position.get("id"))
        self.content = _reader(cursor, result, next((position[n] for n in _CONTENT_COLUMNS if n in position), None))
        self.score = _reader(cursor, result, next((position[n] for n in _SCORE_COLUMNS if n in position), None))

    def documents(self, result: Any, rows: range) -> Iterator[dict[str, Any]]:
        for row in rows:
            yield document(self.id(result, row) if self.id else None,
                           _number(self.score(result, row)) if self.score else None,
                           self.content(result, row) if self.content else None)


def _number(value: Any) -> float | None:
    """A score as a number; None for one that is none (a text column named ``score``, or the last
    unnamed column being some other expression than the distance)."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _results(cursor: Any, request: dict[str, Any]) -> list[Batch] | None:
    """``execute`` returns the cursor itself; its buffered result is read, not consumed: the
    search's own, which a statement before it in the same string (``SET ...; SELECT ...``) puts
    after its result (the cursor's current one is the first). In pipeline mode (results come at
    the sync) there are no rows yet: the result is then unknown, not empty."""
    statement = getattr(request, "statement", 0)
    if statement:
        held = getattr(cursor, "_results", None)  # psycopg keeps every result of the string, in order
        result = held[statement] if isinstance(held, list) and len(held) > statement else None
    else:
        result = getattr(cursor, "pgresult", None)
    if result is None or result.status != _TUPLES_OK:
        return None
    return [Batch(result.ntuples, _Columns(cursor, result).documents(result, range(result.ntuples)))]


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


class _Rows:
    """The rows of a vector search as the cursor hands them out after the call (streamed or
    fetched), recorded into ``pending``. Each row comes from the cursor's current result, in order:
    a new result starts at its first row."""

    __slots__ = ("columns", "freed", "pending", "position", "result")

    def __init__(self, pending: Pending) -> None:
        self.pending = pending
        self.result: Any = None
        self.position = 0
        self.columns: _Columns | None = None
        self.freed: weakref.finalize[Any, Any] | None = None

    def delivered(self, cursor: Any, count: int) -> None:
        """The cursor just handed out ``count`` rows (never raises); once the retrieval holds all
        the documents it records, they are only counted."""
        if len(self.pending.documents) >= MAX_DOCUMENTS:
            self.pending.count += count
            return
        try:
            result = cursor.pgresult
            if result is not self.result:
                self.result, self.position = result, 0
            start, self.position = self.position, self.position + count
            self.pending.add(count, self._documents(cursor, result, start, count))
        except Exception as exc:
            guarded_failure("pgvector.rows", exc)

    def _documents(self, cursor: Any, result: Any, start: int, count: int) -> Iterator[dict[str, Any]]:
        """Their documents, read only if asked for (while ``pending`` has room)."""
        if result is None:
            return
        if self.columns is None:
            self.columns = _Columns(cursor, result)
        yield from self.columns.documents(result, range(start, min(start + count, result.ntuples)))


def _pending(cursor: Any, args: Any, kwargs: Any) -> Pending | None:
    return pending_search("pgvector", "query", _describe, cursor, args, kwargs)


# -- Cursor.stream(): rows as the caller iterates ------------------------------------------------

def _stream(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``Cursor.stream()`` (a generator: nothing runs before the first row is asked for)."""
    return _streamed(wrapped(*args, **kwargs), instance, args, kwargs)


def _astream(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``AsyncCursor.stream()``, likewise."""
    return _astreamed(wrapped(*args, **kwargs), instance, args, kwargs)


def _streamed(rows: Generator[Any, Any, None], cursor: Any, args: Any, kwargs: Any) -> Iterator[Any]:
    """The stream's rows, one retrieval from the first row asked for until the stream is exhausted,
    fails, is closed or is dropped."""
    pending = _pending(cursor, args, kwargs)
    seen = _Rows(pending) if pending is not None else None
    error: BaseException | None = None
    try:
        for row in rows:
            if seen is not None:
                seen.delivered(cursor, 1)
            yield row
    except BaseException as exc:
        error = exc
        raise
    finally:
        rows.close()  # psycopg's own generator cancels the query left unread
        if pending is not None:
            pending.finish(error)


def _unhooked_first(rows: AsyncGenerator[Any, None]) -> Awaitable[Any]:
    """``rows.__anext__()`` for its first row, with the event loop's async-generator hooks off, so
    that only the stream wrapping psycopg's generator closes it. Otherwise a loop closing with the
    stream open (``asyncio.run`` returning) closes both at once, and the second close fails
    ("asynchronous generator is already running"): logged by asyncio, or leaving the retrieval open."""
    hooks = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(None, None)
    try:
        return rows.__anext__()
    finally:
        sys.set_asyncgen_hooks(*hooks)


async def _astreamed(rows: AsyncGenerator[Any, None], cursor: Any, args: Any, kwargs: Any) -> AsyncIterator[Any]:
    pending = _pending(cursor, args, kwargs)
    seen = _Rows(pending) if pending is not None else None
    error: BaseException | None = None
    try:
        step = _unhooked_first(rows)
        while True:
            try:
                row = await step
            except StopAsyncIteration:
                break
            if seen is not None:
                seen.delivered(cursor, 1)
            yield row
            step = rows.__anext__()
    except BaseException as exc:
        error = exc
        raise
    finally:
        try:
            await rows.aclose()  # psycopg cancels the query left unread: a wait a cancellation can stop
        except BaseException as exc:
            error = exc
            raise
        finally:
            if pending is not None:
                pending.finish(error)


# -- named (server-side) cursors: execute declares, fetches bring the rows ----------------------

#: Server-side cursors (by ``id``) whose vector search's rows are being fetched -> those rows: a
#: plain dict, as every fetch of every server-side cursor looks here (a ``WeakKeyDictionary`` cost
#: more than psycopg's own ``__next__``); an entry leaves when its cursor is freed, before its id
#: can be another's.
_fetching: dict[int, _Rows] = {}


def _declared(cursor: Any, args: Any, kwargs: Any) -> Pending | None:
    """Before ``ServerCursor.execute``: the retrieval of a vector search, if this is one. The
    cursor's previous query, if any, is over: the cursor closes it before declaring this one."""
    _stop(cursor)
    if not is_vector_search(argument(args, kwargs, "query", 0), cursor):
        return None
    return _pending(cursor, args, kwargs)


def _track(cursor: Any, pending: Pending | None, error: BaseException | None) -> None:
    """After ``execute``: a failed search ends; a declared one waits for its rows, ending when the
    cursor has handed them all, fails, is closed or is freed."""
    if pending is None:
        return
    if error is not None:
        pending.finish(error)
        return
    try:
        rows = _Rows(pending)
        rows.freed = weakref.finalize(cursor, _freed, id(cursor), pending)
        rows.freed.atexit = False  # when the cursor is freed, not at interpreter exit
        _fetching[id(cursor)] = rows
    except Exception as exc:  # a cursor that cannot be tracked: its search ends now, without rows
        guarded_failure("pgvector.declare", exc)
        pending.finish()


def _freed(key: int, pending: Pending) -> None:
    _fetching.pop(key, None)
    pending.finish()


def _stop(cursor: Any, error: BaseException | None = None) -> None:
    rows = _fetching.pop(id(cursor), None) if _fetching else None
    if rows is not None:
        if rows.freed is not None:
            rows.freed.detach()
        rows.pending.finish(error)


Delivered = Callable[[Any, tuple[Any, ...], dict[str, Any], Any], tuple[int, bool]]


def _one(cursor: Any, args: Any, kwargs: Any, row: Any) -> tuple[int, bool]:  # fetchone: None at the end
    return (0, True) if row is None else (1, False)


def _many(cursor: Any, args: Any, kwargs: Any, rows: Any) -> tuple[int, bool]:  # fewer than asked: the end
    return len(rows), len(rows) < (argument(args, kwargs, "size", 0) or cursor.arraysize)


def _all(cursor: Any, args: Any, kwargs: Any, rows: Any) -> tuple[int, bool]:
    return len(rows), True


def _next(cursor: Any, args: Any, kwargs: Any, row: Any) -> tuple[int, bool]:  # the end is StopIteration
    return 1, False


def _after_fetch(cursor: Any, rows: _Rows, delivered: Delivered, args: Any, kwargs: Any, got: Any) -> None:
    try:
        count, last = delivered(cursor, args, kwargs, got)
    except Exception as exc:
        guarded_failure("pgvector.fetch", exc)
        return
    rows.delivered(cursor, count)
    if last:
        _stop(cursor)


def _fetch_wrapper(delivered: Delivered, asynchronous: bool) -> Callable[..., Any]:
    """A server-side cursor's fetch method: records the rows it hands out while a search is fetched."""
    if asynchronous:
        async def traced_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            rows = _fetching.get(id(instance)) if _fetching else None
            if rows is None:
                return await wrapped(*args, **kwargs)
            try:
                got = await wrapped(*args, **kwargs)
            except BaseException as exc:
                _stop(instance, exc)
                raise
            _after_fetch(instance, rows, delivered, args, kwargs, got)
            return got

        return traced_async

    def traced(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        rows = _fetching.get(id(instance)) if _fetching else None
        if rows is None:
            return wrapped(*args, **kwargs)
        try:
            got = wrapped(*args, **kwargs)
        except BaseException as exc:
            _stop(instance, exc)
            raise
        _after_fetch(instance, rows, delivered, args, kwargs, got)
        return got

    return traced


def _declare(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    pending = _declared(instance, args, kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _track(instance, pending, exc)
        raise
    _track(instance, pending, None)
    return result


async def _adeclare(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    pending = _declared(instance, args, kwargs)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _track(instance, pending, exc)
        raise
    _track(instance, pending, None)
    return result


def _close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    try:
        return wrapped(*args, **kwargs)
    finally:
        _stop(instance)


async def _aclose(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _stop(instance)


class PgvectorIntegration(Integration):
    name = "pgvector"
    distribution = "psycopg"
    module = "psycopg"
    supported = ">=3.1,<4"

    def _instrument(self) -> None:
        wrap = self.patcher.wrap
        sync = search_wrapper("pgvector", "query", _describe, _results)
        asynchronous = search_wrapper("pgvector", "query", _describe, _results, asynchronous=True)
        wrap("psycopg", "Cursor.execute", _vector_only(sync, False))
        wrap("psycopg", "AsyncCursor.execute", _vector_only(asynchronous, True))
        wrap("psycopg", "Cursor.stream", _vector_only(_stream, False))
        wrap("psycopg", "AsyncCursor.stream", _vector_only(_astream, False))  # returns an async generator
        for cls, asynchronous_, step, declare, close in (("ServerCursor", False, "__next__", _declare, _close),
                                                         ("AsyncServerCursor", True, "__anext__", _adeclare, _aclose)):
            wrap("psycopg", f"{cls}.execute", declare)
            wrap("psycopg", f"{cls}.close", close)
            for method, delivered in (("fetchone", _one), ("fetchmany", _many), ("fetchall", _all), (step, _next)):
                wrap("psycopg", f"{cls}.{method}", _fetch_wrapper(delivered, asynchronous_))


INTEGRATION = PgvectorIntegration()
