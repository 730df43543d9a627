"""The embedded local store: finished observations and scores in SQLite (stdlib), with retention.

Written only from export worker threads (``local_sink``: spans and scores as records); read by the
CLI, replay and compare through read-only connections (``LocalStore(path, read_only=True)``: no schema script, no purge; WAL lets them read
while an application writes).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import schema
from .._internal import count, follow_fork, guarded_failure
from . import store_retention
from ._store_columns import INT64, as_recorded, ns, storable, total, utf8
from ._store_files import (
    ERROR_SQL,
    StoreError,
    TraceIdError,
    check_version,
    check_writable,
    decoded,
    failure,
    identity,
    open_reader,
    reading,
    spent,
)
from ._store_files import SCHEMA as _SCHEMA
from .store_pruning import ROW_OVERHEAD, SizeCap, used_bytes

#: Indexes newer than the first stores, built by a store's first write (the export thread), never by opening
#: in ``install()``: over a large store a build takes a while. Reads do without.
_LATER_INDEXES = "CREATE INDEX IF NOT EXISTS observations_trace_start ON observations (trace_id, start_ns)"
#: Sums over a trace read its rows in key order whatever the indexes: a float total is the same sum.
_BY_KEY = "INDEXED BY sqlite_autoindex_observations_1"
_PURGE_EVERY = 3600.0
#: The WAL is truncated to this after a checkpoint (a large transaction, say a prune round, grew it).
_WAL_LIMIT = 64 << 20
#: SQLite's busy timeout for writes from the export thread.
_BUSY_TIMEOUT = 10.0
#: How long opening the store may wait for another writer (it runs in ``install()``; when the store
#: is busy the export thread opens it on first use instead).
_OPEN_WAIT = 0.2
_TRACE_PREFIX = re.compile(r"[0-9a-f]{1,32}")


#: Connections inherited across ``fork``: never closed in the child (closing one there would act
#: on the parent's database state), only kept so they are not closed by garbage collection.
_INHERITED: list[sqlite3.Connection] = []
#: ``fork`` waits at most this long for a write in progress (longer than SQLite's busy timeout).
_FORK_WAIT = 15.0


class LocalStore:
    """SQLite-backed storage of observations and scores.

    Every use of the connection holds ``_lock``; ``fork`` takes it too, so no thread of ours is
    inside SQLite when a process forks (its mutexes would stay locked in the child). The child opens
    its own connection on first use, never in the fork handler.
    """

    def __init__(self, path: str | Path, retention_days: float = 28.0, *, read_only: bool = False,
                 max_mb: float | None = 1024.0) -> None:
        """Open (creating if needed) the store for writing; never waits long for another writer: a busy
        store, or one a full disk cannot create yet, is opened on first use. Expired rows are purged by
        the first write, on the export thread: opening runs in ``install()``, whose caller must not wait
        for a large delete.
        ``max_mb``: the size cap (MiB of used pages; None: none), kept by writes (``store_pruning``).
        ``read_only``: open an existing store for reading only (raises ``StoreError``); it never
        writes, purges, prunes or waits for a writer."""
        self.path = Path(path)
        #: The file written, absolute: a later ``chdir`` must not move the store (nor ``_follow_file``'s check).
        self._target = self.path if str(path) == ":memory:" else self.path.absolute()
        self.retention_ns = int(retention_days * 86400 * 1e9)
        self.read_only = read_only
        self._cap = SizeCap(int(max_mb * 2**20)) if max_mb is not None and not read_only else None
        self._lock = threading.Lock()
        self._held_for_fork: threading.Lock | None = None
        self._pid = os.getpid()
        self._closed = False
        self._last_purge = float("-inf")  # the first write purges
        self._first_cutoff: tuple[int, float] | None = None  # (cutoff, monotonic time) of the first purge
        self._indexed = False  # the first write adds ``_LATER_INDEXES``
        self._file: tuple[int, int] | None = None  # the file the writer's connection has open (``_follow_file``)
        self._db: sqlite3.Connection | None = None
        if read_only:
            self._db = open_reader(self.path)
        else:
            try:
                self._db = self._connect(_OPEN_WAIT)
            except sqlite3.OperationalError as exc:  # busy, or a full disk: opened on first use
                if failure(exc) not in (("store locked", True), ("disk full", True)):
                    raise
            finally:
                if self._db is not None:
                    self._db.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT * 1000)}")
        follow_fork(self)

    def _connect(self, wait: float = _BUSY_TIMEOUT) -> sqlite3.Connection:
        if self.read_only:
            return open_reader(self.path)
        if str(self.path) != ":memory:":
            # (again after ``rm -rf ~/.autotrace`` to start afresh while the application runs: ``_follow_file``)
            self._target.parent.mkdir(parents=True, exist_ok=True)
            check_writable(self._target)  # ``ReadOnlyStoreError``: install() goes on without the store
        db = sqlite3.connect(str(self._target), check_same_thread=False, isolation_level=None, timeout=wait)
        try:
            check_version(db, self.path, "writing")  # before any write, a pragma's too
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT}")
            if db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('observations', 'scores', "
                          "'observations_end', 'observations_start', 'scores_trace')").fetchone()[0] < 5:
                db.executescript(_SCHEMA)  # a write: only when the store is new
        except BaseException:
            db.close()
            raise
        self._file = identity(self._target) if str(self.path) != ":memory:" else None
        return db

    def _follow_file(self) -> None:
        """Before a write: when the store's file was removed or replaced since it was opened (``rm`` to
        start afresh while the application runs), reopen it (counted): the rows went, unseen, to the
        file no longer there, and no reader saw them. One ``stat`` a batch."""
        if self._file is None or identity(self._target) == self._file:
            return
        with self._held():  # (a reconnect on another thread notes its file under it too)
            if self._db is not None:
                self._db.close()  # its WAL, if still beside the new file, folded into the old one and gone
                self._db = None
            self._file, self._indexed = None, False
        count("local_store.reopened")

    def _conn(self) -> sqlite3.Connection:
        """The connection, opened on first use after ``fork`` (call with ``_lock`` held)."""
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        if self._db is None:
            self._db = self._connect()
        return self._db

    def reopen(self) -> None:
        """In a forked child: forget the parent's connection and lock (a SQLite connection must not
        cross ``fork``); the next use opens a new connection. Touches no SQLite code, so it is safe
        in a fork handler; once per process."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._lock = threading.Lock()
        if self._cap is not None:
            self._cap.after_fork()
        if self._db is not None:
            _INHERITED.append(self._db)
            self._db = None

    def _before_fork(self) -> None:
        """Wait for a use in progress, then close the writer's connection (each process opens its own
        on next use): the child's SQLite would take the parent's file locks, open across ``fork``, for
        its own and hold none, so the parent, closing last, deleted the WAL the child still used."""
        if self._lock.acquire(timeout=_FORK_WAIT):
            self._held_for_fork = self._lock
            if self._db is not None and not self.read_only:
                try:
                    self._db.close()
                    self._db = None
                except sqlite3.Error:  # kept: the child sets it aside (``reopen``)
                    pass

    def _after_fork_in_parent(self) -> None:
        held, self._held_for_fork = self._held_for_fork, None
        if held is not None:
            held.release()
            if self._closed:
                self._close_if_free()

    def _after_fork_in_child(self) -> None:
        self._held_for_fork = None
        self.reopen()

    # -- writing ------------------------------------------------------------------------------------
    def write(self, records: Iterable[dict[str, Any]]) -> int:
        self._follow_file()
        if not self._indexed:
            self._add_indexes()
        rows = [
            (r["trace_id"], r["id"], r["parent_id"], r["name"], r["type"], r["tenant"], r.get("service"),
             start := ns(r["start_ns"], 0), ns(r["end_ns"], start), r["level"], r["model"], total(r["usage"]),
             total(r["cost"]), schema.strict_json(r))
            for r in records
        ]
        purged = time.monotonic() - self._last_purge > _PURGE_EVERY
        if purged:  # before the batch: the store's newest trace bounds the cutoff (``purge``)
            try:
                self.purge()
            except sqlite3.Error as exc:  # counted, tried again at the next interval; the batch is written
                guarded_failure("local_store.purge", exc)
        try:
            self._insert(rows)
        except (UnicodeEncodeError, sqlite3.ProgrammingError, OverflowError):  # a lone surrogate (text decoded
            # with surrogateescape: not UTF-8), a value no column type takes: only such a batch pays for the walk
            self._insert(storable(rows))
        self._keep_cap(sum(len(row[-1]) + ROW_OVERHEAD for row in rows), purged)
        return len(rows)

    def _keep_cap(self, written: int, measure: bool = False) -> None:
        """After a write (export thread): note its estimated bytes and, when the cap may be passed (or
        ``measure``), measure the store and prune its oldest traces (a failure is counted, not raised:
        the rows are written)."""
        if self._cap is None or not (self._cap.note(written) or measure):
            return
        try:
            self._cap.enforce(self.used_bytes, self._transaction, str(self.path))
        except sqlite3.Error as exc:
            guarded_failure("local_store.cap", exc)

    def used_bytes(self) -> int:
        """Bytes of the store's pages holding rows (``store_pruning.used_bytes``; the WAL not counted)."""
        with self._held():
            return used_bytes(self._conn())

    def _add_indexes(self) -> None:
        """Build ``_LATER_INDEXES`` if the store lacks them; once (a failure is counted: reads do without)."""
        self._indexed = True
        try:
            with self._held():
                self._conn().execute(_LATER_INDEXES)
        except sqlite3.Error as exc:
            guarded_failure("local_store.index", exc)

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO observations VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one transaction, with ``_lock`` held: committed, or rolled back on
        error. It takes the write lock at once (another process writing the same store is waited
        for): a transaction that reads first could not write after that process's commit. SQLite rolls
        some failures back itself (a full disk, an I/O error): the error raised is still theirs."""
        with self._held():
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")  # (may wait: ``close`` gives up on it past its wait)
            try:
                yield db
                if self._closed:  # given up by ``close`` meanwhile: not written (counted dropped)
                    raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def add_score(self, score: dict[str, Any]) -> None:
        self._follow_file()
        value = score.get("value")
        row = (score["id"], score.get("trace_id"), score.get("observation_id"), score["name"],
               value if isinstance(value, int | float) else None, value if isinstance(value, str) else None,
               score.get("data_type"), score.get("comment"), score.get("tenant"), time.time_ns())
        try:
            self._insert_score(row)
        except UnicodeEncodeError:  # as ``write``: a lone surrogate must not fail the score (and its batch)
            count("local_store.invalid_text")
            self._insert_score(tuple(map(utf8, row)))
        self._keep_cap(sum(len(v) for v in row if isinstance(v, str)) + ROW_OVERHEAD)

    def _insert_score(self, row: tuple[Any, ...]) -> None:
        with self._transaction() as db:  # (as a batch: not written once ``close`` gave up on it)
            db.execute("INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?,?,?,?,?,?)", row)

    def purge(self, now_ns: int | None = None) -> int:
        """Delete the traces (whole) and scores older than the retention period (``store_retention``);
        returns rows deleted. ``now_ns``: the time to purge as of, taken as given (tools, tests).

        Without it, the wall clock is not believed blindly: set far forward (a bad NTP step, a VM's
        clock), it would expire the whole store at once. The cutoff is at most (a) the end of the
        newest stored observation minus the retention (``write`` purges before storing its batch, so
        a batch stamped by a wrong clock does not count yet), and (b) this process's first cutoff
        advanced by the monotonic time since (within a process, the cutoff moves no faster than time
        passes). Both only keep traces longer, never shorter: a store left alone keeps its last
        retention period until newer traces arrive; a clock already wrong at a process's first purge
        is believed from its next one (the store then holds what it stamped)."""
        self._last_purge = time.monotonic()
        cutoff = now_ns - self.retention_ns if now_ns is not None else self._clock_cutoff(self._last_purge)
        return store_retention.purge(self._transaction, cutoff)

    def _clock_cutoff(self, monotonic: float) -> int:
        """The retention cutoff by the wall clock, bounded as ``purge`` says."""
        cutoff = time.time_ns() - self.retention_ns
        if self._first_cutoff is None:
            self._first_cutoff = (cutoff, monotonic)
        first, at = self._first_cutoff
        cutoff = min(cutoff, first + int((monotonic - at) * 1e9))
        with self._held():
            newest = self._conn().execute("SELECT MAX(end_ns) FROM observations").fetchone()[0]
        return cutoff if newest is None else max(INT64[0], min(cutoff, newest - self.retention_ns))

    # -- reading ------------------------------------------------------------------------------------
    def _shown(self) -> str:
        """The SQL condition that leaves out the traces being deleted (``store_retention.HIDDEN``), never
        shown half gone; "1" for a store without that table yet (a reader cannot create it; a writer does
        before its first drop, so the table never comes with one: ``store_retention.drain``)."""
        hiding = self._rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dropping_traces'")
        return store_retention.HIDDEN if hiding else "1"

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with reading(self.path), self._held():
            return self._conn().execute(sql, args).fetchall()

    def _stream(self, sql: str, args: Sequence[Any] = (), chunk: int = 256) -> Iterator[tuple[Any, ...]]:
        """Rows of a query, fetched ``chunk`` at a time (memory bounded by the chunk, not the store)."""
        with reading(self.path):
            with self._held():
                cursor = self._conn().execute(sql, args)
            while True:
                with self._held():
                    rows = cursor.fetchmany(chunk)
                if not rows:
                    return
                yield from rows

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """Every observation of one trace, ordered by start; ``trace_id`` may be a unique hex prefix
        (``TraceIdError`` when it is not hex or matches several traces)."""
        prefix = trace_id.strip().lower()
        if not _TRACE_PREFIX.fullmatch(prefix):
            raise TraceIdError(f"{trace_id!r} is not a trace id (1 to 32 hex digits)")
        shown = self._shown()
        ids = [r[0] for r in self._rows(
            f"SELECT DISTINCT trace_id FROM observations WHERE trace_id >= ? AND trace_id < ? AND {shown} "
            "ORDER BY trace_id LIMIT 6", (prefix, prefix + "g"),
        )]
        if len(ids) > 1:
            more = ", ..." if len(ids) > 5 else ""
            raise TraceIdError(f"trace id prefix {prefix!r} is ambiguous: {', '.join(ids[:5])}{more}")
        if not ids:
            return []
        rows = self._rows(f"SELECT record FROM observations WHERE trace_id = ? AND {shown} ORDER BY start_ns, rowid",
                          (ids[0],))
        records = [self._decode(r[0]) for r in rows]
        if any("id" not in r or "trace_id" not in r for r in records):  # a tree needs both
            raise StoreError(f"local store {self.path} holds a damaged observation (no id or trace_id); move "
                             f"the file away to start a new store, or pass --db")
        return records

    def traces(self, limit: int = 20, tenant: str | None = None, since_ns: int | None = None,
               until_ns: int | None = None) -> list[dict[str, Any]]:
        """Summaries of recent traces: name, tenant, duration, tokens and cost (None when no observation that
        ran recorded them: unknown, not 0; a replay's frozen calls did not run), errors. ``tenant``, ``since_ns``
        and ``until_ns`` pick the traces with an observation of that tenant, started then, each summed whole
        (a root started before the tenant was known has none; a row filter left it out of the sums).

        Requests of several tenants can carry one trace id (each a local root): with ``tenant``, a trace is its
        observations of that tenant and of none; without, its tenants are listed (``acme,globex``: no tenant id
        holds a comma). A tenant stored as bytes is shown as its record holds it (``b'acme'``)."""
        # a tenant typed as bytes that are not UTF-8 (decoded to lone surrogates) is compared as the
        # store keeps such text (U+FFFD): SQLite cannot take it, and it names no stored tenant
        wanted = utf8(tenant) if tenant else None
        picks = [(f"trace_id IN (SELECT trace_id FROM observations WHERE {condition})", value) for condition, value in
                 (("tenant = ?", wanted), ("start_ns >= ?", since_ns),
                  ("start_ns < ?", until_ns)) if value is not None]  # a trace that ran then, summed whole
        shown = self._shown()
        # with a tenant, never another tenant's rows (of requests that shared the trace id)
        owner, owner_args = ("1", []) if wanted is None else ("(tenant = ? OR tenant IS NULL)", [wanted])
        where = "WHERE " + " AND ".join([shown, owner, *(c for c, _ in picks)])
        args = [*owner_args, *(value for _, value in picks)]
        newest = self._newest(where, args, limit)
        if newest is not None:  # summed: only the traces that can be among the newest, not the whole store
            where = f"WHERE {shown} AND {owner} AND trace_id IN (SELECT value FROM json_each(?))"
            args = [*owner_args, json.dumps(newest)]
        rows = self._rows(
            f"""SELECT trace_id, MIN(start_ns), MAX(end_ns), COUNT(*), {spent('usage_total')},
                       {spent('cost_total')}, SUM({ERROR_SQL}), MIN(tenant), MAX(tenant)
                FROM observations {_BY_KEY} {where} GROUP BY trace_id ORDER BY MIN(start_ns) DESC LIMIT ?""",
            [*args, limit],
        )
        summaries = []
        for trace_id, start, end, n, tokens, cost, errors, first_tenant, last_tenant in rows:
            # the root: an observation whose parent is not in the trace, before any start order (a child
            # can start at the root's nanosecond, or earlier on a skewed clock of another service)
            root = self._rows(
                f"SELECT name, record FROM observations AS o WHERE trace_id = ? AND {owner} ORDER BY EXISTS (SELECT 1 "
                "FROM observations AS p WHERE p.trace_id = o.trace_id AND p.id = o.parent_id), start_ns, rowid LIMIT 1",
                (trace_id, *owner_args),
            )
            record = self._decode(root[0][1]) if root else {}
            summaries.append({
                "trace_id": trace_id, "name": record.get("trace_name") or (root[0][0] if root else None), "tenant":
                self._tenants(trace_id, first_tenant, last_tenant), "start_ns": start, "duration_ms": (end - start) / 1e6,
                "observations": n,
                "tokens": None if tokens is None or abs(tokens) == float("inf") else int(tokens),  # past a float: no number
                "cost": None if cost is None else float(cost),
                "errors": int(errors or 0),
                "replay_of": record.get("replay_of"),
            })
        return summaries

    def _tenants(self, trace_id: str, first: Any, last: Any) -> str | None:
        """A trace's tenant (``first``, ``last``: its least and greatest), or its tenants joined by commas."""
        if first == last:
            return as_recorded(first)
        found = self._rows("SELECT DISTINCT tenant FROM observations WHERE trace_id = ? AND tenant IS NOT NULL "
                           "ORDER BY tenant", (trace_id,))
        return ",".join(str(as_recorded(row[0])) for row in found)

    def _newest(self, where: str, args: list[Any], limit: int) -> list[str] | None:
        """The traces (of ``where``) that started no earlier than the ``limit``-th newest, ties kept (None
        if there are no more than ``limit``): only they are summed, their errors read from each record."""
        starts = self._rows(f"SELECT trace_id, MIN(start_ns) FROM observations {where} GROUP BY trace_id", args)
        if len(starts) <= limit:
            return None
        cutoff = sorted((start for _, start in starts), reverse=True)[limit - 1]
        return [trace_id for trace_id, start in starts if start >= cutoff]

    def first_replay(self, original: str, since_ns: int) -> str | None:
        """The first trace started since ``since_ns`` that replays ``original``: the run ``autotrace replay``
        started (every later trace of that run, whatever it is, replays the original too)."""
        rows = self._rows(
            f"SELECT trace_id FROM observations WHERE start_ns >= ? AND {self._shown()} AND instr(record, ?) > 0 AND CASE WHEN "
            "json_valid(record) THEN json_extract(record, '$.replay_of') END = ? ORDER BY start_ns, rowid LIMIT 1",
            (since_ns, original, original),
        )
        return rows[0][0] if rows else None

    def observations(self, since_ns: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Observations, newest first (optionally since a time)."""
        return list(self.iter_observations(since_ns, limit))

    def iter_observations(self, since_ns: int | None = None, limit: int | None = None,
                          kind: str | None = None, until_ns: int | None = None,
                          where: tuple[str, Sequence[Any]] | None = None) -> Iterator[dict[str, Any]]:
        """Observations (of type ``kind``, started from ``since_ns`` and before ``until_ns``, if given), newest
        first, decoded one at a time as they are consumed; with ``where`` (SQL and its parameters:
        ``Query.where``), those it holds for."""
        sql = "SELECT record FROM observations"
        conditions: list[str] = [self._shown()] + ([] if where is None else [f"({where[0]})"])
        args: list[Any] = [] if where is None else list(where[1])
        for condition, value in (("start_ns >= ?", since_ns), ("start_ns < ?", until_ns)):
            if value is not None:
                conditions.append(condition)
                args.append(value)
        if kind is not None:
            conditions.append("type = ?")
            args.append(kind)
        sql += " WHERE " + " AND ".join(conditions) + " ORDER BY start_ns DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return (self._decode(row[0]) for row in self._stream(sql, args))

    def _decode(self, text: str) -> dict[str, Any]:
        return decoded(self.path, text)  # (``StoreError`` for a damaged record)

    def scores(self, trace_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, trace_id, observation_id, name, value, string_value, data_type, comment, tenant FROM scores"
        args: list[Any] = []
        if trace_id:
            sql += " WHERE trace_id = ?"
            args.append(trace_id)
        keys = ("id", "trace_id", "observation_id", "name", "value", "string_value", "data_type", "comment", "tenant")
        return [dict(zip(keys, row, strict=True)) for row in self._rows(sql + " ORDER BY created_ns", args)]

    @contextmanager
    def _held(self) -> Iterator[None]:
        """``_lock`` held: every use of the connection (one ``close`` gave up on closes it as it ends)."""
        try:
            with self._lock:
                yield
        finally:
            if self._closed:
                self._close_if_free()

    def close(self, wait: float | None = None) -> None:
        """Close the store; a use under way (a write: its transaction) finishes first, waited for at most
        ``wait`` seconds (None: as long as it takes; a write waits out SQLite's busy timeout while another
        process holds the store). One given up is rolled back, not committed, and closes the connection."""
        if self._lock.acquire(timeout=-1 if wait is None else min(max(0.0, wait), threading.TIMEOUT_MAX)):
            self._lock.release()
        self._closed = True  # then tried: a use ending from now on finds it closed and tries too (``_held``)
        self._close_if_free()

    def _close_if_free(self) -> None:
        if self._lock.acquire(blocking=False):
            try:
                db, self._db = self._db, None
                if db is not None:
                    db.close()
            finally:
                self._lock.release()
