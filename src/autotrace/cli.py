"""The ``autotrace`` command line: inspect the embedded store, run the demo, and (see ``commands``)
launch applications with tracing.

Read commands open the store read-only (``open_store``): they never write, purge or wait for a
writer, and a store that cannot be read is a one-line error, never a traceback. A failure is that
line on stderr and a non-zero exit code (1: nothing to show or no readable store; 2: a bad
argument, query, trace id or setting); with ``--json`` it is also ``{"error": {"kind": ...,
"message": ...}}`` on stdout (see ``CliError``), so stdout is JSON either way. Output is written so
that it never fails on its way out: a character the terminal's encoding lacks is escaped (``out``),
and a reader that stops early (``| head``) ends the command quietly with 141, as a shell reports a
program ended by SIGPIPE (also when it went before the buffered output was flushed), an output that cannot
be written (a full disk) is one line and exit 1; Ctrl-C ends it with 130, also without a traceback.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import islice
from typing import IO, TYPE_CHECKING, Any, NoReturn, TextIO

from . import render
from ._config_parse import as_path
from .config import ConfigError, load_settings
from .export._store_columns import INT64
from .export.local_store import LocalStore, StoreError, TraceIdError

if TYPE_CHECKING:
    from .query import Query


class CliError(Exception):
    """A command's failure: ``kind`` (``usage``, ``config``, ``store``, ``trace_id``, ``not_found``,
    ``query``, ``no_data``), a one-line message, the exit code and details (``column`` for a query)."""

    def __init__(self, kind: str, message: str, code: int = 1, **details: Any) -> None:
        super().__init__(message)
        self.kind, self.message, self.code, self.details = kind, message, code, details

    def as_dict(self) -> dict[str, Any]:
        """The ``error`` object of ``--json`` output."""
        return {"kind": self.kind, "message": self.message, **self.details}


class _UsageError(Exception):
    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    """Raises usage errors (``main`` reports them, as JSON too with ``--json``) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(self, message)

    def _print_message(self, message: str, file: IO[str] | None = None) -> None:
        """argparse's (help, usage), whose failed write is as any output's (``_written``), not ignored:
        written at once (``PYTHONUNBUFFERED``), to a reader gone or a full disk, it was lost with exit 0."""
        stream = file or sys.stderr
        if message and stream is not None:
            with _written():
                stream.write(message)


def open_store(db: str | None) -> LocalStore:
    """The local store (``--db`` or the configured path), opened read-only; ``StoreError`` when it is
    missing or unreadable."""
    return LocalStore(as_path(db) if db else load_settings().local_store_path, read_only=True)


#: The exit code when stdout's reader went away (``| head``): 128 + SIGPIPE, as a shell says it.
EXIT_BROKEN_PIPE = 141
#: The exit code when the user pressed Ctrl-C.
EXIT_INTERRUPTED = 130


#: ``out``'s default stream: stdout, as it is when written.
_STDOUT: Any = object()


def out(text: str, stream: TextIO | None = _STDOUT, as_json: bool = False) -> None:
    """Print ``text`` (to stdout unless ``stream`` is given); characters ``stream``'s encoding cannot hold
    (an ASCII or cp1252 console, ``PYTHONIOENCODING``) are escaped rather than failing the command:
    ``\\uXXXX`` in JSON (still valid JSON), a backslash escape in text. A stream closed at start-up
    (``>&-``), which Python makes None, is not written: a closed stdout is an output that cannot be
    written, a closed stderr's line is lost, never printed to stdout (``print``'s None) among the JSON."""
    if stream is _STDOUT:
        stream = sys.stdout
        if stream is None:
            raise _Unwritable("stdout is closed")
    if stream is None:
        return
    with _written():
        try:
            print(text, file=stream)
        except UnicodeEncodeError:  # raised before anything is written: print encodes the whole text first
            encoding = stream.encoding or "ascii"
            print(render.ascii_json(text) if as_json else text.encode(encoding, "backslashreplace").decode(encoding),
                  file=stream)


class _Unwritable(Exception):
    """The output cannot be written (a full disk, an I/O error): ``main`` says so in one line, exit 1."""


@contextmanager
def _written() -> Iterator[None]:
    """A write of the output: its ``OSError`` (other than a reader gone, ``BrokenPipeError``) as ``_Unwritable``."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _Unwritable(exc.strerror or str(exc)) from None


def _emit(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    """Print ``data`` as JSON with ``--json``, else the rendered text (only then rendered)."""
    if args.json:
        out(render.to_json(data), as_json=True)
    else:
        out(text())


def _positive(text: str) -> int:
    """A positive integer; one past what the store can count means all (just under ``sys.maxsize``:
    a query reads one more than its limit)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return min(value, sys.maxsize - 1)


def _nonempty(text: str) -> str:
    """A name that is not blank: ``--tenant "$TENANT"`` with the variable unset must not list every tenant,
    nor ``--db "$DB"`` read the default store."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


_AGO = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _when(text: str) -> int:
    """A time (ns since the epoch): ISO 8601 (``2026-12-05T14:05+01:00``, ``...Z``; without an offset, this
    machine's local time, as ``date`` shows it) or a span before now (``90s``, ``15m``, ``2h``, ``7d``)."""
    ago = _AGO.fullmatch(text.strip())
    if ago:  # bounded before ``int``: a count of 400 digits is an infinity
        return _stored_ns(time.time_ns() - int(min(float(ago[1]) * _UNIT_SECONDS[ago[2]] * 1e9, 2.0**64)))
    try:
        return _stored_ns(int(datetime.fromisoformat(text.strip()).timestamp() * 1e6) * 1000)  # naive: local time
    except (ValueError, OverflowError, OSError):
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time (2026-12-05T14:05, ...Z, ...+01:00) or a "
                                         f"span before now (90s, 15m, 2h, 7d), got {text!r}") from None


def _stored_ns(ns: int) -> int:
    """``ns`` within what the store's columns (SQLite's 64-bit integers) hold: a time before 1677 or after 2262
    (``--until 2300-01-01``, ``--since 500000d``) is before or after every stored one, not a failed command."""
    return max(INT64[0], min(ns, INT64[1]))


def cmd_traces(args: argparse.Namespace) -> int:
    summaries = open_store(args.db).traces(limit=args.limit, tenant=args.tenant, since_ns=args.since,
                                           until_ns=args.until)
    _emit(args, summaries, lambda: render.render_traces(summaries))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    records = store.trace(args.trace_id)
    if not records:
        raise CliError("not_found", f"no trace {args.trace_id}")
    scores = store.scores(records[0]["trace_id"])
    if args.json:  # the records with their scores are built only for JSON
        out(render.to_json(render.with_scores(records, scores)), as_json=True)
    else:
        out(render.render_tree(records, io=not args.no_io, scores=scores))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from .query import QueryError, compile_query

    try:
        query = compile_query(args.expression)
    except QueryError as exc:
        raise CliError("query", str(exc), 2, column=exc.position + 1) from None
    store = open_store(args.db)
    seen: set[str] = set()  # the top-level fields of the observations read: a mistyped field is named
    # streamed (memory), and only the observations that may match, as far as the store's columns tell (time)
    records = (_keys_into(seen, r) for r in store.iter_observations(args.since, until_ns=args.until,
                                                                     where=query.where))
    matches = list(islice((r for r in records if query.matches(r)), args.limit + 1))  # bounded by --limit
    more = len(matches) > args.limit  # one more than --limit read: is there more?
    del matches[args.limit:]
    _emit(args, matches, lambda: render.render_observations(matches))
    if more:  # on stderr: stdout stays the matches (JSON with --json)
        out(f"autotrace: the newest {args.limit} matches shown; more match (--limit to see more)", sys.stderr)
    unknown = [] if matches else _unknown(query, seen)
    if not matches and query.where is not None and (unknown or not seen):  # those left unread count too
        seen = _fields_seen(store, query)
        unknown = _unknown(query, seen)
    if unknown:  # nothing matched (the whole store was read) and no observation has such a field: a typo?
        out(f"autotrace: no observation has a field {', '.join(map(repr, unknown))}; "
            f"fields: {', '.join(sorted(seen))}", sys.stderr)
    return 0


def _unknown(query: Query, seen: set[str]) -> list[str]:
    """The fields ``query`` reads that no observation read has (none when none was read)."""
    return sorted({f for f in query.fields if f.split(".")[0] not in seen}) if seen else []


def _fields_seen(store: LocalStore, query: Query) -> set[str]:
    """The top-level fields of the store's observations, read until every field ``query`` reads is among
    them (all of them, the whole store read, when one is not: a mistyped field, whose message lists them)."""
    wanted = {f.split(".")[0] for f in query.fields}
    seen: set[str] = set()
    for record in store.iter_observations():
        seen.update(record)
        if wanted <= seen:
            break
    return seen


def _keys_into(seen: set[str], record: dict[str, Any]) -> dict[str, Any]:
    """``record``, its keys added to ``seen``."""
    seen.update(record)
    return record


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(db=args.db)


def _window(parser: argparse.ArgumentParser, what: str) -> None:
    """``--since`` and ``--until`` (``_when``) on ``parser``."""
    parser.add_argument("--since", type=_when, metavar="TIME", help=f"only {what}: from TIME (ISO 8601, local time "
                        "without an offset; or 15m, 2h, 7d ago)")
    parser.add_argument("--until", type=_when, metavar="TIME", help="and before TIME")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="autotrace", description="Typed tracing for LLM agent pipelines.")
    parser.add_argument("--db", type=_nonempty, help="local store path (default: AUTOTRACE_LOCAL_STORE_PATH, else "
                        "$AUTOTRACE_HOME/traces.db or ~/.autotrace/traces.db)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("traces", help="list recent traces")
    p.add_argument("--limit", type=_positive, default=20, help="how many, newest first (default 20)")
    p.add_argument("--tenant", type=_nonempty, help="only the traces with an observation of this tenant")
    _window(p, "the traces that ran then (an observation started since, the first before until)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_traces)

    p = sub.add_parser("show", help="print one trace as a typed tree")
    p.add_argument("trace_id", help="the trace id or a unique prefix of it (hex)")
    p.add_argument("--json", action="store_true", help="print JSON: every observation with its scores")
    p.add_argument("--no-io", action="store_true", help="omit input/output previews")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("query", help="find observations, e.g. 'type=generation and usage.total>2000'",
                       description="Comparisons (= == != < <= > >= ~ !~, and 'has FIELD') on observation fields "
                       "(dotted for nested ones: usage.total, prompt.version, metadata.KEY), joined by "
                       "and/or/not and parentheses. Quoted values take the escapes show prints (\\n, \\x1b, "
                       "\\u200b); see README.md.")
    p.add_argument("expression", help="e.g. 'type=generation and usage.total>2000', 'level=error'")
    p.add_argument("--limit", type=_positive, default=100, help="how many matches, newest first (default 100)")
    _window(p, "the observations started then")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("demo", help="run the two-service demo (agent + RAG over gRPC) and print its traces")
    p.set_defaults(func=cmd_demo)

    from . import commands

    commands.register(sub)
    for name, command in sub.choices.items():  # ``autotrace show ID --db PATH`` as well as before the command
        if name != "run":  # whatever follows ``run`` is the program's
            command.add_argument("--db", type=_nonempty, default=argparse.SUPPRESS, help="local store path, as before the command")
    return parser


def _split_program(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Split off the program to launch: ``run [--] PROG ARGS...`` (everything after the program is its
    own, ``--`` included) and ``replay ... -- PROG ARGS...`` (after the first ``--``)."""
    index = 0
    while index < len(argv) and argv[index].startswith("-") and argv[index] != "--":
        index += 2 if argv[index] in ("--d", "--db") else 1  # options before the subcommand (``--d``: argparse's prefix)
    if index >= len(argv) or argv[index] not in ("run", "replay"):
        return argv, None
    if argv[index] == "run":
        rest = argv[index + 1:]
        if rest[:1] in (["-h"], ["--help"]):
            return argv, None
        return argv[:index + 1], rest[1:] if rest[:1] == ["--"] else rest
    if "--" in argv[index:]:
        split = argv.index("--", index)
        return argv[:split], argv[split + 1:]
    return argv, None


def _asks_json(argv: Sequence[str]) -> bool:
    """Whether ``argv`` (not yet parsed, perhaps not parseable) asks for ``--json`` (or a prefix of it)."""
    options = argv[:argv.index("--")] if "--" in argv else argv
    return any(len(arg) > 2 and "--json".startswith(arg) for arg in options)


def _fail(error: CliError, as_json: bool, label: str = "autotrace") -> int:
    """Report ``error``: its line on stderr, and with ``--json`` its ``{"error": ...}`` on stdout."""
    out(f"{label}: {render.clean(error.message)}", sys.stderr)
    if as_json:
        out(render.to_json({"error": error.as_dict()}), as_json=True)
    return error.code


def _discard_output() -> None:
    """Point stdout at /dev/null once it cannot be written (its reader gone, a full disk), so that the
    interpreter's last flush of what is still buffered does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # stdout is no file (an in-process caller's capture), or none
        pass


def _flush_output() -> None:
    """Flush what is still buffered: it fails here, as any write does, not at the interpreter's exit."""
    if sys.stdout is not None:
        with _written():
            sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            code = _main(argv)
        except SystemExit:  # argparse's --help and --version: their output too
            _flush_output()
            raise
        _flush_output()
        return code
    except BrokenPipeError:  # stdout's reader went away (also while reporting a failure): nothing more to say
        _discard_output()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:  # Ctrl-C: the user knows, so no traceback; 128 + SIGINT, as a shell says it
        return EXIT_INTERRUPTED
    except _Unwritable as exc:
        _discard_output()
        try:
            print(f"autotrace: cannot write the output: {exc}", file=sys.stderr)
        except OSError:  # stderr cannot be written either
            pass
        return 1


#: The commands that only read the store: they build large graphs of objects without cycles (the
#: records of a trace), which the cyclic garbage collector would walk again and again for nothing.
_READERS = frozenset({"traces", "show", "query", "compare"})


@contextmanager
def _collector_paused(pause: bool) -> Iterator[None]:
    """The cyclic garbage collector off while ``pause`` (a third of ``show``'s time on a trace of 20,000
    observations went to it); as it was afterwards (an in-process caller's)."""
    enabled = gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    argv, command = _split_program(list(sys.argv[1:] if argv is None else argv))
    as_json = _asks_json(argv)
    try:
        args = parser.parse_args(argv)
        as_json = bool(getattr(args, "json", False))
        name = args.command
        if command is not None:
            args.command = command
        with _collector_paused(isinstance(name, str) and name in _READERS):
            return int(args.func(args) or 0)
    except _UsageError as exc:
        exc.parser.print_usage(sys.stderr)
        return _fail(CliError("usage", str(exc), 2), as_json, f"{exc.parser.prog}: error")
    except CliError as exc:
        return _fail(exc, as_json)
    except ConfigError as exc:
        return _fail(CliError("config", str(exc), 2), as_json)
    except TraceIdError as exc:
        return _fail(CliError("trace_id", str(exc), 2), as_json)
    except (StoreError, sqlite3.Error) as exc:
        return _fail(CliError("store", str(exc), 1), as_json)
