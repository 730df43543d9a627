"""The local store's file: its schema, its errors, its layout version, opening it for reading, and the SQL
that sums a trace.

A reader never writes: it opens the file read-only and, when it cannot create the WAL's index beside
a store closed cleanly (a read-only medium, a directory it may not write), reads the file alone.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The store's layout, kept in ``PRAGMA user_version`` (0: a store from before it was kept, the same
#: layout). A store of a newer layout is neither written nor read: this code could misread or damage it.
SCHEMA_VERSION = 1
#: One transaction: a reader sees no table, or all of them.
SCHEMA = f"""
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS observations (
    trace_id TEXT NOT NULL, id TEXT NOT NULL, parent_id TEXT, name TEXT NOT NULL, type TEXT NOT NULL,
    tenant TEXT, service TEXT, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, level TEXT,
    model TEXT, usage_total INTEGER, cost_total REAL, record TEXT NOT NULL,
    PRIMARY KEY (trace_id, id)
);
CREATE INDEX IF NOT EXISTS observations_end ON observations (end_ns);
CREATE INDEX IF NOT EXISTS observations_start ON observations (start_ns);
CREATE TABLE IF NOT EXISTS scores (
    id TEXT PRIMARY KEY, trace_id TEXT, observation_id TEXT, name TEXT NOT NULL, value REAL,
    string_value TEXT, data_type TEXT, comment TEXT, tenant TEXT, created_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS scores_trace ON scores (trace_id);
PRAGMA user_version = {SCHEMA_VERSION};
COMMIT;
"""
#: An observation is in error when its level or its span status is ERROR (the ``error`` field, as
#: ``show`` renders it); a record with NaN (not strict JSON) is searched for the field's text.
ERROR_SQL = ("CASE WHEN level = 'ERROR' THEN 1 WHEN json_valid(record) THEN json_extract(record, '$.error') = 1 "
             "ELSE instr(record, '\"error\": true') > 0 END")
#: An observation a replay did not run (``metadata.replay`` is ``frozen``): it holds the recorded call's
#: usage and cost, which the replay did not spend. Read only for rows with a usage or cost.
_FROZEN_SQL = ("instr(record, '\"replay\": \"frozen\"') > 0 AND json_valid(record) "
               "AND json_extract(record, '$.metadata.replay') = 'frozen'")
#: How long a reader waits for a lock (WAL readers never wait for writers; other journal modes may).
_READ_WAIT = 2.0
#: The size of a SQLite file's header, which keeps ``PRAGMA user_version`` at bytes 60 to 63 (big-endian).
_HEADER = 100


#: SQLite's errors (by ``sqlite_errorname``, its extended codes included) that fail a batch for a
#: reason of the store's, as a log names them, and whether a later try may not meet them (another
#: process holding the store past the busy timeout, a full disk, an I/O error: retried, not an internal
#: error of autotrace's) or no retry changes them (a store read-only for this process, a damaged one).
_FAILURES = {"SQLITE_BUSY": ("store locked", True), "SQLITE_LOCKED": ("store locked", True),
             "SQLITE_FULL": ("disk full", True), "SQLITE_IOERR": ("store I/O error", True),
             "SQLITE_READONLY": ("read-only store", False), "SQLITE_CORRUPT": ("damaged store", False),
             "SQLITE_NOTADB": ("damaged store", False)}


def failure(exc: sqlite3.Error) -> tuple[str, bool] | None:
    """What ``exc`` is (``_FAILURES``) and whether a later try may not meet it; None for any other error."""
    name = str(getattr(exc, "sqlite_errorname", ""))
    return next((kind for code, kind in _FAILURES.items() if name == code or name.startswith(f"{code}_")), None)


class StoreError(RuntimeError):
    """The store cannot be opened or read (missing, not a database, locked, not an autotrace store)."""


class TraceIdError(StoreError, ValueError):
    """A trace id (prefix) that is not hex or matches more than one trace."""


class ReadOnlyStoreError(StoreError):
    """A store (or its WAL) this process may open but not write: every write would fail."""


def decoded(path: Path, text: str) -> dict[str, Any]:
    """A record stored in ``path``; ``StoreError`` (one line, never a traceback) for one that is not JSON:
    a damaged store, or one another program wrote into."""
    try:
        record = json.loads(text)
    except ValueError as exc:
        record, problem = None, str(exc)
    else:
        problem = "not a JSON object"
    if not isinstance(record, dict):
        raise StoreError(f"local store {path} holds a damaged observation ({problem}); move the file "
                         f"away to start a new store, or pass --db")
    return record


def spent(column: str) -> str:
    """The SQL sum of ``column`` over a trace's observations that ran (a replay's frozen ones left out):
    NULL when none recorded it (unknown, never a false 0: an unpriced model's cost, a stream's usage)."""
    # summed as REAL: SQLite's integer SUM fails the whole query ("integer overflow") past 2**63
    return f"SUM(CASE WHEN {column} IS NULL THEN NULL WHEN {_FROZEN_SQL} THEN NULL ELSE {column} * 1.0 END)"


def check_writable(path: Path) -> None:
    """Raise ``ReadOnlyStoreError`` when the store at ``path``, or its WAL or WAL index, exists and cannot
    be opened for writing. SQLite opens such a file read-only without a word, and then fails each write
    (and, in a directory it may write, leaves a WAL behind it): checked before it opens the file."""
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            os.close(os.open(name, os.O_RDWR))
        except FileNotFoundError:  # created by SQLite when needed (a directory it cannot write fails there)
            continue
        except IsADirectoryError:  # SQLite's own error says it
            return
        except OSError as exc:
            raise ReadOnlyStoreError(f"local store {path} is read-only for this process ({name.name}: "
                                     f"{exc.strerror}); not writing it") from None


def identity(path: Path) -> tuple[int, int] | None:
    """The file at ``path`` (device, inode); None when there is none (or it cannot be told)."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def check_version(db: sqlite3.Connection, path: Path, doing: str) -> None:
    """Raise ``StoreError`` (one line) when the store at ``path`` has a layout newer than this code's."""
    _check_layout(db.execute("PRAGMA user_version").fetchone()[0], path, doing)


def writer_problem(path: Path) -> str | None:
    """Why ``install()`` could not write a store at ``path`` (None: it could, as far as can be told), found
    without creating or writing anything (``autotrace info``): a path under a file or in a directory it may
    not write (also an existing store's: its WAL is made there), a file that is no SQLite database, is
    read-only or has a newer layout. The layout is read from the file's header, or, while a writer's WAL
    holds it (not yet folded into the file), through a read-only connection."""
    try:
        if not path.exists():
            parent = next(p for p in path.parents if p.exists())
            if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
                return f"local store {path} cannot be created ({parent} is not a directory this process may write)"
            return None
        if not path.is_file():
            return f"local store {path} is not a file"
        check_writable(path)
        with open(path, "rb") as file:
            header = file.read(_HEADER)
        if header and (len(header) < _HEADER or not header.startswith(b"SQLite format 3\0")):
            return f"local store {path} is not a SQLite database"
        real = path.resolve()  # SQLite keeps its WAL beside the file a symlink points at
        version = int.from_bytes(header[60:64], "big", signed=True) if header else 0
        if version <= SCHEMA_VERSION and _has_bytes(Path(f"{real}-wal")) and Path(f"{real}-shm").exists():
            version = _logged_version(real, version)
        _check_layout(version, path, "writing")
        if not os.access(real.parent, os.W_OK | os.X_OK) and not all(
                Path(f"{real}{end}").exists() for end in ("-wal", "-shm")):
            return (f"local store {path} cannot be written (SQLite creates its WAL in {real.parent}, a directory "
                    "this process may not write)")
    except StoreError as exc:
        return str(exc)
    except OSError as exc:
        return f"local store {path} cannot be used ({exc.strerror or exc})"
    return None


def _logged_version(path: Path, header: int) -> int:
    """The layout version of a store whose WAL holds changes, read through a read-only connection (its WAL
    and WAL index exist: nothing is created); ``header``'s when it cannot be read."""
    try:
        db = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True, timeout=_READ_WAIT)
        try:
            return int(db.execute("PRAGMA user_version").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return header


def _check_layout(version: int, path: Path, doing: str) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(f"local store {path} was written by a newer autotrace (store version {version}, this one "
                         f"knows {SCHEMA_VERSION}); not {doing} it: upgrade autotrace, or use another store path")


def open_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection to the store at ``path`` (``StoreError`` when there is none to read)."""
    if not path.exists():
        raise StoreError(f"no local store at {path} (run something traced first, or pass --db)")
    if not path.is_file():
        raise StoreError(f"local store {path} is not a file")
    uri = path.resolve().as_uri() + "?mode=ro"
    with reading(path):
        try:
            return _checked_reader(path, uri)
        except sqlite3.OperationalError as exc:
            # closed cleanly (no WAL) where this process cannot create files: the file is the whole store
            cannot_create = "unable to open" in str(exc) or \
                getattr(exc, "sqlite_errorname", None) == "SQLITE_READONLY_DIRECTORY"
            if not cannot_create or any(_has_bytes(Path(f"{path}{end}")) for end in ("-wal", "-shm")):
                raise
        return _checked_reader(path, uri + "&immutable=1")


def _checked_reader(path: Path, uri: str) -> sqlite3.Connection:
    db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=_READ_WAIT)
    try:
        db.execute("PRAGMA query_only = 1")
        check_version(db, path, "reading")
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if not names:  # an empty file, or one whose first writer is still creating its tables
            raise StoreError(f"nothing in the local store at {path} yet (run something traced first, or pass --db)")
        if "observations" not in names:
            raise StoreError(f"{path} is not an autotrace store (no observations table)")
    except BaseException:
        db.close()
        raise
    return db


def _has_bytes(path: Path) -> bool:
    """Whether ``path`` exists with anything in it."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False
    except OSError:  # cannot tell: as if it held something
        return True


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn SQLite errors while reading ``path`` into a one-line ``StoreError``."""
    try:
        yield
    except sqlite3.Error as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise StoreError(f"local store {path} is locked by another process; try again") from exc
        if "not a database" in text or "malformed" in text:
            raise StoreError(f"local store {path} is not a readable SQLite database ({text})") from exc
        raise StoreError(f"cannot read local store {path}: {text}") from exc
