"""Subcommands beyond inspection: ``run`` (zero-code activation), ``replay``, ``compare``, ``check``
and ``info``."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .render import clean, to_json

BOOTSTRAP_DIR = Path(__file__).resolve().parent / "bootstrap"


def activation_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment that makes a Python process activate autotrace at start-up."""
    env = dict(os.environ if environ is None else environ)
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(BOOTSTRAP_DIR) + (os.pathsep + existing if existing else "")
    env.pop("AUTOTRACE_ACTIVATED_PID", None)  # the launched program is the one to trace
    return env


def _program(args: argparse.Namespace, verb: str) -> list[str]:
    """The program to launch (after ``--``). ``run --db PATH -- ...`` names the store, as ``--db`` does
    after any other command (no program is called ``--db``). Neither a program nor a ``--db`` value is
    a usage error, raised by the command's parser (``args.usage_error``), as argparse reports one."""
    command = list(args.command)
    while command and (command[0] == "--db" or command[0].startswith("--db=")):
        if command[0] != "--db":
            args.db, command = command[0][len("--db="):], command[1:]
        elif len(command) < 2 or command[1].startswith("-"):  # as argparse reads it
            args.usage_error("argument --db: expected one argument")
        else:
            args.db, command = command[1], command[2:]
        if not args.db.strip():  # ``--db "$DB"`` with the variable unset: never the default store
            args.usage_error("argument --db: must not be empty")
    if command and command[0] in ("-h", "--help"):  # ``run --db PATH -h``: help, as ``run -h`` (no program is ``-h``)
        args.print_help()
        raise SystemExit(0)
    if command and command[0].startswith("-") and command[0] != "--":  # nor starts with ``-``: an unknown option
        args.usage_error(f"unrecognized arguments: {command[0]} (the program to run goes after the options, "
                         f"e.g. autotrace {verb} ... -- python app.py)")
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        args.usage_error(f"give the program to run, e.g. autotrace {verb} ... -- python app.py")
    return command


def with_db(env: dict[str, str], db: str | None) -> dict[str, str]:
    """``env`` naming ``--db`` (when given) as the local store, absolute: a program may change directory."""
    return {**env, "AUTOTRACE_LOCAL_STORE_PATH": str(Path(db).resolve())} if db else env


#: Signals Python ignores at start-up (``SIG_IGN`` survives ``exec``): the program gets them back at
#: their default, as ``subprocess`` gives them back (a shell pipeline's ``yes | head`` relies on it).
_IGNORED_BY_PYTHON = ("SIGPIPE", "SIGXFSZ")


def _tell(message: str) -> None:
    """One line on stderr for ``run``, whose stdout is the program's: never there (``print`` to a
    closed stderr, which Python makes None, writes to stdout), and never failing the launch."""
    if sys.stderr is not None:
        try:
            print(message, file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass


def cmd_run(args: argparse.Namespace) -> int:
    from .config import absolute_path_variables

    command = _program(args, "run")
    env = activation_env()
    env = with_db({**env, **absolute_path_variables(env)}, args.db)
    if not command[0]:  # as a shell says it (``execve`` would raise a ValueError here)
        _tell("autotrace run: cannot run '': No such file or directory")
        return 127
    from .diagnostics import unactivated_by

    if (why := unactivated_by(command)) is not None:  # Python would not read the bootstrap: never silently
        _tell(f"autotrace run: {why}")
    numbers = [getattr(signal, name) for name in _IGNORED_BY_PYTHON if hasattr(signal, name)]
    previous = [(number, signal.signal(number, signal.SIG_DFL)) for number in numbers]
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:  # as a shell says it: 127 not found, 126 found but not executable
        for number, handler in previous:  # this process goes on, as Python set it up
            signal.signal(number, handler)
        _tell(f"autotrace run: cannot run {command[0]!r}: {exc.strerror}")
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return 0  # not reached


def cmd_replay(args: argparse.Namespace) -> int:
    from .cli import open_store, out  # as the other commands: a missing store is reported, never created
    from .replay import REPLAY_FILE_ENV, first_difference, parse_overrides, side_by_side, taken_note

    command = _program(args, "replay")
    store = open_store(args.db)
    path = store.path
    records = store.trace(args.trace_id)
    if not records:
        print(f"autotrace replay: no trace {args.trace_id} in {path}", file=sys.stderr)
        return 1
    try:
        target = _target(records, args.at)
        overrides = parse_overrides(args.set or [], args.messages_file)
        _check_overrides(target, overrides)
    except (ValueError, OSError) as exc:
        print(f"autotrace replay: {exc}", file=sys.stderr)
        return 2
    env = _replay_env()
    if (off := _tracing_off(env)) is not None:  # the program would run every call live, untraced
        print(f"autotrace replay: autotrace is disabled ({off}): a replay needs tracing on to freeze the calls "
              f"before --at; nothing was run", file=sys.stderr)
        return 2
    original = records[0]["trace_id"]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec:
        reached = f"{spec.name}.reached"  # the program creates it when the chosen observation starts
        json.dump({"records": records, "at": target["id"], "overrides": overrides, "reached_file": reached}, spec,
                  default=str)
    # absolute, as for ``run``: the program may change directory before it opens the store
    env.update({REPLAY_FILE_ENV: spec.name, "AUTOTRACE_LOCAL_STORE": "on",
                "AUTOTRACE_LOCAL_STORE_PATH": str(path.resolve())})
    started = time.time_ns()
    try:
        code = subprocess.run(command, env=env, check=False).returncode
    except OSError as exc:  # no such program, not executable: said as ``run`` says it
        print(f"autotrace replay: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126
    finally:
        os.unlink(spec.name)
        was_reached, unapplied = taken_note(reached)
    # only a replay started by this run counts, never an earlier replay of the same trace
    replay_id = store.first_replay(original, started)
    if replay_id is None:
        print(f"autotrace replay: the program (exit code {code}) recorded no replay trace of {original}",
              file=sys.stderr)
        return code or 1
    replayed = store.trace(replay_id)
    difference = first_difference(records, replayed)
    out(f"{side_by_side(records, replayed)}\n\nreplay {replay_id} of {original}\n"
        + (f"first difference: {clean(difference)}" if difference else "no difference"))
    if not was_reached:  # its overrides never applied: the replay tried nothing, never a silent pass
        print(f"autotrace replay: the program never reached the chosen observation {target['id']} "
              f"({target.get('type')} {clean(repr(target.get('name')))}): nothing ran with the overrides",
              file=sys.stderr)
        return code or 1
    if unapplied:  # it ran as recorded: no model request of it took the overrides (only OpenAI's can)
        print(f"autotrace replay: the chosen generation {target['id']} ({clean(repr(target.get('name')))}) made "
              f"no OpenAI request to send the overrides with: it ran without them", file=sys.stderr)
        return code or 1
    return code


def _replay_env() -> dict[str, str]:
    """The replayed program's environment: activated, with every trace recorded. A sampler configured for
    production (``OTEL_TRACES_SAMPLER=traceidratio``) would leave the replay's trace out, and a replay
    whose calls are not recorded cannot match them to the recording (``ReplayStop``)."""
    env = activation_env()
    env["OTEL_TRACES_SAMPLER"] = "always_on"
    env.pop("OTEL_TRACES_SAMPLER_ARG", None)
    return env


def _tracing_off(env: dict[str, str]) -> str | None:
    """The variable that turns autotrace off in ``env`` (None: it is on)."""
    from .config import load_settings, setting_source

    if load_settings(env=env).enabled:
        return None
    return setting_source("enabled", {}, env) or "AUTOTRACE_ENABLED"


def _target(records: list[dict[str, Any]], at: str) -> dict[str, Any]:
    """The one observation of the trace whose id starts with ``at``; ``ValueError`` naming the trace's
    generations (what ``--at`` usually picks) when there is none or several."""
    prefix = at.strip().lower()
    matches = [r for r in records if prefix and r["id"].startswith(prefix)]
    if len(matches) == 1:
        return matches[0]
    generations = ", ".join(f"{r['id']} ({clean(str(r['name']))})" for r in records if r.get("type") == "generation")
    found = f"matches {len(matches)} observations" if matches else "matches no observation"
    raise ValueError(f"--at {at!r} {found} of trace {records[0]['trace_id']}; its generations: "
                     f"{generations or 'none'}")


def _check_overrides(target: dict[str, Any], overrides: dict[str, Any]) -> None:
    """``--set`` and ``--messages-file`` change a generation's model call: on any other observation they
    would be ignored without a word, so they are refused."""
    if overrides and target.get("type") != "generation":
        raise ValueError(f"--at {target['id']} is a {target.get('type')} ({clean(str(target.get('name')))}); "
                         f"--set and --messages-file apply to a generation")


def cmd_compare(args: argparse.Namespace) -> int:
    from .cli import CliError, open_store, out
    from .compare import compare_versions, render_comparison, stored

    store = open_store(args.db)
    generations = store.iter_observations(kind="generation")  # streamed: the store may not fit in memory
    found: dict[str, set[str]] = {}
    report = compare_versions(generations, store.scores(), args.prompt, args.a, args.b, args.alpha, found)
    missing = [v for v, n in ((report["a"], report["count_a"]), (report["b"], report["count_b"])) if not n]
    error = None
    if missing:  # a mistyped prompt or version compares nothing: never a silent pass of a CI gate
        error = CliError("no_data", f"no generations of prompt {args.prompt!r} version {' or '.join(missing)} "
                                    f"in {store.path}")
        report["error"] = error.as_dict()  # with --json: the report, and the error as every command gives it
    out(json.dumps(report, indent=2) if args.json else render_comparison(report))  # json.dumps: ASCII
    if error is not None:  # what there is first, so the error stays the last line, as every command ends
        out(f"autotrace compare: {clean(stored(found, args.prompt))}", sys.stderr)
        out(f"autotrace compare: {clean(error.message)}", sys.stderr)
        return error.code
    return 1 if report["regressions"] and args.fail_on_regression else 0


#: Tenants ``check`` lists from the credentials when none is named, at most (the rest are counted).
MAX_LISTED_TENANTS = 100


def cmd_check(args: argparse.Namespace) -> int:
    """Try the default keys and each tenant's against their Langfuse, as exports would."""
    from .cli import CliError, out
    from .config import load_settings, setting_source
    from .export.connections import ConnectionPool
    from .export.credentials import Credentials, LookupFailed
    from .export.key_check import OUTCOMES, check_all, files_to_report, sharing_a_project, tenants_to_check
    from .export.tls import export_context
    from .install import credentials_resolver

    env = with_db(dict(os.environ), args.db)
    settings = load_settings(env=env)
    if not settings.enabled:  # named by the variable that turns it off: nothing is traced or kept
        raise CliError("no_data", f"nothing to check: autotrace is disabled "
                                  f"({setting_source('enabled', {}, env)}), so nothing is exported or stored")
    if not settings.langfuse_enabled:
        kept = f"to the local store at {settings.local_store_path}" if settings.local_store_enabled else "nowhere"
        raise CliError("no_data", "nothing to check: no Langfuse is configured; set LANGFUSE_HOST and the keys "
                                  f"(traces go {kept} meanwhile)")
    resolver = credentials_resolver(settings)
    named: list[tuple[str, Credentials | LookupFailed | None]] = []
    if settings.public_key and settings.secret_key and not args.tenant:
        named.append(("default", Credentials(settings.public_key, settings.secret_key)))
    tenants, left_out = tenants_to_check(resolver, args.tenant or [], MAX_LISTED_TENANTS)
    named.extend((tenant, _looked_up(resolver, tenant)) for tenant in tenants)
    named.extend(files_to_report(resolver) if not args.tenant else ())
    if not named:
        raise CliError("no_data", "nothing to check: no default keys (LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY) "
                                  "and no tenant keys found; name tenants with --tenant")
    pool = ConnectionPool(max_idle=8, make_tls=lambda: export_context(settings))
    try:
        checks = check_all(named, settings.langfuse_host, args.timeout or settings.export_timeout, pool)
    finally:
        pool.close()
    tally = {outcome: sum(c.outcome == outcome for c in checks) for outcome in OUTCOMES}
    summary = ", ".join(f"{n} {outcome}" for outcome, n in tally.items() if n)
    if left_out:
        summary += f"; {left_out} more tenants not checked (name them with --tenant)"
    shared = sharing_a_project(checks)
    if args.json:
        out(to_json({"checks": [c.as_dict() for c in checks], "not_checked": left_out, "shared_projects": shared,
                     "ok": tally["ok"] == len(checks)}), as_json=True)
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            out(clean(f"{c.outcome:<11} {c.name:<{width}}  {c.describe()}"))
        for names in shared:
            out(clean(f"warning: {', '.join(names)} send to the same Langfuse project: each tenant's traces "
                      "belong in a project of its own"))
        out(clean(summary))
    return 0 if tally["ok"] == len(checks) else 1


def _looked_up(resolver: Any, tenant: str) -> Any:
    """``resolver``'s keys for ``tenant`` (None: none), or the ``LookupFailed`` it raised; any other
    error of a resolver of the user's is that tenant's failed check (named by its type alone: its
    message may hold a secret), never the end of the others'."""
    from .export.credentials import LookupFailed

    if resolver is None:
        return None
    try:
        return resolver.resolve(tenant)
    except LookupFailed as exc:
        return exc
    except Exception as exc:
        return LookupFailed(f"the resolver raised {type(exc).__name__}")


def cmd_info(args: argparse.Namespace) -> int:
    """What ``install()`` would do here; exit 1 when something would go untraced or unsent."""
    from .cli import out
    from .diagnostics import report

    found = report(with_db(dict(os.environ), args.db), try_patching=not args.no_import)  # as ``run`` would
    for setting in found["settings"] if args.db else ():
        if setting["variable"] == "AUTOTRACE_LOCAL_STORE_PATH":
            setting["variable"] = "--db"
    if args.json:
        out(to_json(found), as_json=True)
    else:
        for line in render_info(found):
            out(clean(line))
    return 1 if found["problems"] else 0


def render_info(found: dict[str, Any]) -> list[str]:
    """``autotrace info``'s text: a line per fact, an integration per line, then the settings the
    environment gives and the problems."""
    lines = [f"autotrace {found['version']} on Python {found['python']}"]
    if not found["enabled"]:
        source = next((s["variable"] for s in found.get("settings", ()) if s["setting"] == "enabled"), None)
        return [*lines, f"tracing       off ({source or 'AUTOTRACE_ENABLED or OTEL_SDK_DISABLED'})", *_problems(found)]
    export = found["export"]
    if export["langfuse"]:
        lines.append(f"export        Langfuse at {export['langfuse']}, "
                     + (f"via proxy {export['proxy']}" if export["proxy"] else "direct"))
        tenants = ", ".join(export["tenants"]) + (f" and {export['more_tenants']} more" if export["more_tenants"] else "")
        lines.append(f"keys          default: {export['default_keys'] or 'none'} (a span without a tenant: "
                     f"{export['unknown_tenant']}); tenants listed: {tenants or 'none'}")
    lines.append(f"local store   {export['local_store'] or 'off'}")
    lines.append(f"redaction     {found['redaction']}; content {'captured' if found['capture_content'] else 'not captured'}")
    lines.append("integrations  (each patches its library when the application first imports it)")
    width = max((len(i["name"]) for i in found["integrations"]), default=0)
    for item in found["integrations"]:
        library = f"{item['library']} {item['version']}" if item["version"] else ""
        detail = f"{library}: {item['detail']}" if library and item["status"] in ("ready", "partial", "found") \
            else item["detail"]
        lines.append(f"  {item['name']:<{width}}  {item['status']:<11}  {detail}")
    if found["settings"]:
        lines.append("from the environment")
        width = max(len(s["setting"]) for s in found["settings"])
        lines += [f"  {s['setting']:<{width}}  {s['value']}  ({s['variable']})" for s in found["settings"]]
    return [*lines, *_problems(found)]


def _problems(found: dict[str, Any]) -> list[str]:
    problems = found["problems"]
    return ["problems", *(f"  {problem}" for problem in problems)] if problems else ["no problems found"]


def _seconds(text: str) -> float:
    """A timeout: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0 to 600, got {text!r}")
    return value


def _alpha(text: str) -> float:
    """A significance level: a number in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the feature subcommands to the CLI parser."""
    p = sub.add_parser("run", help="run a Python program with autotrace activated (configured by environment)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- python app.py ...")
    p.set_defaults(func=cmd_run, usage_error=p.error, print_help=p.print_help)

    p = sub.add_parser("replay", help="re-run a program, frozen up to one generation that runs with overrides",
                       usage="%(prog)s [-h] --at AT [--set KEY=VALUE] [--messages-file FILE] trace_id -- PROGRAM "
                       "[ARGS ...]", epilog="e.g. autotrace replay 3f2a9c --at 8b1e0d --set model=gpt-4o -- python app.py")
    p.add_argument("trace_id", help="the recorded trace (id or a unique prefix)")
    p.add_argument("--at", required=True, help="id (or prefix) of the generation to run live")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="model=... or a model parameter")
    p.add_argument("--messages-file", metavar="FILE", help="JSON list of messages replacing the generation's input")
    p.set_defaults(command=[])
    p.set_defaults(func=cmd_replay, usage_error=p.error, print_help=p.print_help)

    p = sub.add_parser("compare", help="compare two versions of a prompt over the local store")
    p.add_argument("--prompt", required=True, help="the prompt name its generations record")
    p.add_argument("a", help="version A, the baseline")
    p.add_argument("b", help="version B, checked for regressions against A")
    p.add_argument("--alpha", type=_alpha, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--fail-on-regression", action="store_true", help="exit 1 when a regression is flagged")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("check", help="try the configured Langfuse keys (default and per tenant) as exports would",
                       description="Sends each key pair an export request holding no span, through the same proxy "
                       "and TLS settings as exports, and names the project the keys belong to. Without --tenant: "
                       "the default keys and every tenant the credentials file or AUTOTRACE_TENANT_* variables list "
                       f"(the first {MAX_LISTED_TENANTS}). Exit 1 if any check fails.")
    p.add_argument("--tenant", action="append", metavar="NAME", help="check this tenant's keys (repeatable)")
    p.add_argument("--timeout", type=_seconds, help="seconds per request (default: export_timeout)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("info", help="what autotrace would do here: export, keys, integrations, settings, problems",
                       description="Reads the settings as install() would and tries each installed integration's "
                       "patches on its library (imported here, then restored), to find patch points a library "
                       "upgrade removed. Nothing is exported. Exit 1 if a problem is found.")
    p.add_argument("--no-import", action="store_true", help="do not import the instrumented libraries (faster; "
                   "patch points are not tried)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)
