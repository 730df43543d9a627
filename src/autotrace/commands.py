"""Subcommands beyond inspection: ``run`` (zero-code activation); replay and compare register here."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

BOOTSTRAP_DIR = Path(__file__).resolve().parent / "bootstrap"


def activation_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment that makes a Python process activate autotrace at start-up."""
    env = dict(os.environ if environ is None else environ)
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(BOOTSTRAP_DIR) + (os.pathsep + existing if existing else "")
    env.pop("AUTOTRACE_ACTIVATED_PID", None)  # the launched program is the one to trace
    return env


def cmd_run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("autotrace run: give the command to run, e.g. autotrace run -- python app.py", file=sys.stderr)
        return 2
    try:
        os.execvpe(command[0], command, activation_env())
    except OSError as exc:
        print(f"autotrace run: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # not reached


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the feature subcommands to the CLI parser."""
    p = sub.add_parser("run", help="run a Python program with autotrace activated (configured by environment)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- python app.py ...")
    p.set_defaults(func=cmd_run)
