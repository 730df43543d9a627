"""The ``autotrace`` command line: inspect the embedded store, run the demo, and (see ``commands``)
launch applications with tracing."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import render
from .config import ConfigError, load_settings


def _store(args: argparse.Namespace) -> Any:
    from .export.local_store import LocalStore

    path = Path(args.db) if args.db else load_settings().local_store_path
    if not path.exists():
        raise SystemExit(f"autotrace: no local store at {path} (run something traced first, or pass --db)")
    return LocalStore(path)


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False) if args.json else text)


def cmd_traces(args: argparse.Namespace) -> int:
    summaries = _store(args).traces(limit=args.limit, tenant=args.tenant)
    _emit(args, summaries, render.render_traces(summaries))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    records = _store(args).trace(args.trace_id)
    if not records:
        print(f"autotrace: no trace {args.trace_id}", file=sys.stderr)
        return 1
    _emit(args, records, render.render_tree(records, io=not args.no_io))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from .query import QueryError, compile_query

    try:
        query = compile_query(args.expression)
    except QueryError as exc:
        print(f"autotrace: {exc}", file=sys.stderr)
        return 2
    matches = [r for r in _store(args).observations() if query.matches(r)][: args.limit]
    _emit(args, matches, render.render_observations(matches))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(db=args.db)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autotrace", description="Typed tracing for LLM agent pipelines.")
    parser.add_argument("--db", help="local store path (default: AUTOTRACE_LOCAL_STORE_PATH or ~/.autotrace)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("traces", help="list recent traces")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--tenant")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_traces)

    p = sub.add_parser("show", help="print one trace as a typed tree")
    p.add_argument("trace_id")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-io", action="store_true", help="omit input/output previews")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("query", help="find observations, e.g. 'type=generation and usage.total>2000'")
    p.add_argument("expression")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("demo", help="run the two-service demo (agent + RAG over gRPC) and print its traces")
    p.set_defaults(func=cmd_demo)

    from . import commands

    commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] | None = None
    if "--" in argv:  # everything after -- is the program to run (run, replay)
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1:]
    args = parser.parse_args(argv)
    if command is not None:
        args.command = command
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"autotrace: {exc}", file=sys.stderr)
        return 2
