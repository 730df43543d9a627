"""The ``autotrace`` command line: inspect the embedded store, run the demo, and (see ``commands``)
launch applications with tracing.

Read commands open the store read-only (``open_store``): they never write, purge or wait for a
writer, and a store that cannot be read is a one-line error, never a traceback.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from . import render
from .config import ConfigError, load_settings
from .export.local_store import LocalStore, StoreError, TraceIdError


def open_store(db: str | None) -> LocalStore:
    """The local store (``--db`` or the configured path), opened read-only; ``StoreError`` when it is
    missing or unreadable."""
    return LocalStore(Path(db) if db else load_settings().local_store_path, read_only=True)


def _emit(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    """Print ``data`` as JSON with ``--json``, else the rendered text (only then rendered)."""
    print(render.to_json(data) if args.json else text())


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def cmd_traces(args: argparse.Namespace) -> int:
    summaries = open_store(args.db).traces(limit=args.limit, tenant=args.tenant)
    _emit(args, summaries, lambda: render.render_traces(summaries))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    records = open_store(args.db).trace(args.trace_id)
    if not records:
        print(f"autotrace: no trace {render.clean(args.trace_id)}", file=sys.stderr)
        return 1
    _emit(args, records, lambda: render.render_tree(records, io=not args.no_io))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from .query import QueryError, compile_query

    try:
        query = compile_query(args.expression)
    except QueryError as exc:
        print(f"autotrace: {render.clean(str(exc))}", file=sys.stderr)
        return 2
    records = open_store(args.db).iter_observations()  # streamed: memory bounded by --limit, not the store
    matches = list(islice((r for r in records if query.matches(r)), args.limit))
    _emit(args, matches, lambda: render.render_observations(matches))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(db=args.db)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autotrace", description="Typed tracing for LLM agent pipelines.")
    parser.add_argument("--db", help="local store path (default: AUTOTRACE_LOCAL_STORE_PATH or ~/.autotrace)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("traces", help="list recent traces")
    p.add_argument("--limit", type=_positive, default=20)
    p.add_argument("--tenant")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_traces)

    p = sub.add_parser("show", help="print one trace as a typed tree")
    p.add_argument("trace_id", help="the trace id or a unique prefix of it (hex)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-io", action="store_true", help="omit input/output previews")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("query", help="find observations, e.g. 'type=generation and usage.total>2000'")
    p.add_argument("expression")
    p.add_argument("--limit", type=_positive, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("demo", help="run the two-service demo (agent + RAG over gRPC) and print its traces")
    p.set_defaults(func=cmd_demo)

    from . import commands

    commands.register(sub)
    return parser


def _split_program(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Split off the program to launch: ``run [--] PROG ARGS...`` (everything after the program is its
    own, ``--`` included) and ``replay ... -- PROG ARGS...`` (after the first ``--``)."""
    index = 0
    while index < len(argv) and argv[index].startswith("-") and argv[index] != "--":
        index += 2 if argv[index] == "--db" else 1  # options before the subcommand
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv, command = _split_program(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if command is not None:
        args.command = command
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"autotrace: {exc}", file=sys.stderr)
        return 2
    except TraceIdError as exc:
        print(f"autotrace: {render.clean(str(exc))}", file=sys.stderr)
        return 2
    except (StoreError, sqlite3.Error) as exc:
        print(f"autotrace: {render.clean(str(exc))}", file=sys.stderr)
        return 1
