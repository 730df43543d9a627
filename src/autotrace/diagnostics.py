"""What ``install()`` would do in this environment (``autotrace info``): where traces go and
through which proxy, whose keys, what is redacted, which integrations patch their library and
whether every patch point is still there (a library upgraded past what autotrace knows), the
settings read from the environment, and the problems found. Nothing is exported, no thread is
started, and nothing stays patched: each integration is tried on a fresh instance of its own,
then undone."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import logging
import os
import platform
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ._internal import logger
from .config import _ENV, Settings, load_settings, setting_source

#: An integration's states; the ones that leave something wanted untraced are ``PROBLEMS``.
READY, PARTIAL, FAILED, UNSUPPORTED, ABSENT, OFF, FOUND = (
    "ready", "partial", "failed", "unsupported", "absent", "off", "found")
PROBLEMS = frozenset({PARTIAL, FAILED, UNSUPPORTED})
#: Tenants named in the report at most (the rest are counted).
_SHOWN_TENANTS = 20
#: Python's options under which ``autotrace run`` cannot activate: what each leaves unread.
_UNACTIVATED = {"I": "reads no PYTHONPATH", "E": "reads no PYTHONPATH", "S": "imports no site module"}
_PYTHON = re.compile(r"(python|pypy)[0-9.]*(\.exe)?", re.IGNORECASE)


@dataclasses.dataclass
class IntegrationStatus:
    """One integration: its state, its library and version, and why (``detail``)."""

    name: str
    status: str
    library: str = ""
    version: str | None = None
    supported: str = ""
    detail: str = ""
    patched: int = 0
    not_patched: list[str] = dataclasses.field(default_factory=list)


@contextmanager
def _captured(records: list[str]) -> Iterator[None]:
    """autotrace's log lines in this block go to ``records``, not to the console."""

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage().removeprefix("autotrace: "))

    handler, propagate = Keep(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def report(env: Mapping[str, str] | None = None, try_patching: bool = True) -> dict[str, Any]:
    """The whole report as plain data (``autotrace info --json``); ``problems`` lists what would
    leave something untraced or unsent. Raises ``ConfigError`` for settings ``install()`` refuses."""
    from .install import unknown_integrations
    from .recorder import __version__

    problems: list[str] = []  # what autotrace warns of while reading the settings and the keys, first
    with _captured(problems):
        settings = load_settings(env=env)
        export, export_problems = _export(settings)
    problems += export_problems
    with _captured([]):  # a patch point that is gone is in the table: not said twice
        integrations = integration_statuses(settings, try_patching) if settings.enabled else []
    problems += [f"integration {i.name} is {i.status}: {i.detail}" for i in integrations if i.status in PROBLEMS]
    known = [i.name for i in integrations]
    if unknown := unknown_integrations(settings, set(known)) if settings.enabled else []:  # a typo: said as install() says it
        problems.append(f"no integration named {', '.join(unknown)} (known: {', '.join(known)})")
    return {
        "version": __version__, "python": platform.python_version(), "enabled": settings.enabled,
        "export": export, "redaction": _redaction(settings.redact), "capture_content": settings.capture_content,
        "integrations": [dataclasses.asdict(i) for i in integrations],
        "settings": from_environment(settings, env), "problems": problems,
    }


def from_environment(settings: Settings, env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Each setting the environment gives, with the variable it came from (secrets hidden)."""
    env = os.environ if env is None else env
    found = []
    for name in _ENV:
        variable = setting_source(name, {}, env)
        if variable is not None:
            value = getattr(settings, name)
            shown = "***" if name == "secret_key" else str(value) if not isinstance(value, tuple) else ",".join(
                map(str, value))
            found.append({"setting": name, "value": shown, "variable": variable})
    return found


def _export(settings: Settings) -> tuple[dict[str, Any], list[str]]:
    """Where spans go (Langfuse, its proxy; the local store), whose keys; and the problems."""
    from .export._store_files import writer_problem
    from .export.credentials import known_tenants
    from .export.langfuse import OTLP_PATH
    from .export.otlp_http import HttpTarget
    from .install import credentials_resolver

    problems: list[str] = []
    found: dict[str, Any] = {"langfuse": settings.langfuse_host, "proxy": None,
                             "local_store": str(settings.local_store_path) if settings.local_store_enabled else None,
                             "default_keys": settings.public_key if settings.public_key and settings.secret_key
                             else None, "unknown_tenant": settings.unknown_tenant, "tenants": [], "more_tenants": 0}
    if settings.enabled and settings.local_store_enabled and (problem := writer_problem(settings.local_store_path)):
        problems.append(f"{problem}; spans that would go there are dropped")
    if not (settings.enabled and settings.langfuse_enabled):
        return found, problems
    target = HttpTarget((settings.langfuse_host or "").rstrip("/") + OTLP_PATH, settings.export_timeout)
    target.close()  # made only to read the proxy decision exports make: nothing was opened
    if target.problem is not None:
        found["proxy"] = f"unusable: {target.problem}"
        problems.append(target.problem)
    elif target.proxy is not None:
        found["proxy"] = target.proxy.name
    tenants = known_tenants(credentials_resolver(settings))
    found["tenants"], found["more_tenants"] = tenants[:_SHOWN_TENANTS], max(0, len(tenants) - _SHOWN_TENANTS)
    if not tenants and found["default_keys"] is None:
        problems.append("no keys: neither default keys nor any tenant's are set, so nothing would be exported")
    return found, problems


def _redaction(setting: Any) -> str:
    if setting is True:
        return "all built-in detectors"
    if setting is False:
        return "off"
    if isinstance(setting, tuple):
        return ", ".join(item if isinstance(item, str) else "a hook" for item in setting)
    return "a hook"


def integration_statuses(settings: Settings, try_patching: bool = True) -> list[IntegrationStatus]:
    """Every integration autotrace knows (by entry point), as ``install()`` with ``settings`` would
    treat it; with ``try_patching``, each installed one is patched on a fresh instance (its library
    imported) and undone, to find patch points its library no longer has."""
    from .install import ENTRY_POINT_GROUP, turned_off
    from .runtime import state

    try_patching = try_patching and state.settings is None  # never under a live install's patches
    statuses = []
    for entry_point in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        name = entry_point.name
        try:  # another package's integration may be no ``Integration`` at all: that one fails, not the report
            loaded = entry_point.load()
            integration = loaded() if isinstance(loaded, type) else type(loaded)()
            library = integration.distribution  # none: the standard library's
            found = IntegrationStatus(name, READY, library or "python", integration.installed_version() if library
                                      else platform.python_version(), integration.supported)
            reason = integration.check()
        except Exception as exc:
            statuses.append(IntegrationStatus(name, FAILED, detail=f"cannot be loaded ({type(exc).__name__}: {exc})"))
            continue
        if (off := turned_off(name, settings)) is not None:
            found.status, found.detail = OFF, off
        elif reason == "not installed":
            found.status, found.detail = ABSENT, f"{integration.distribution} is not installed"
        elif reason is not None:
            found.status, found.detail = UNSUPPORTED, reason
        elif not try_patching:
            found.status, found.detail = FOUND, f"patches at the first import of {integration.module or name}"
        else:
            _try_patching(integration, found)
        statuses.append(found)
    return statuses


def _try_patching(integration: Any, found: IntegrationStatus) -> None:
    """Patch ``integration``'s library and undo it, noting how many patch points took and which did not."""
    try:
        importlib.import_module(integration.module or found.name)
        integration.instrument()
    except Exception as exc:
        found.status, found.detail = FAILED, f"patching raised {type(exc).__name__}: {exc}"
        return
    found.patched, found.not_patched = integration.patcher.applied, list(integration.patcher.skipped)
    try:
        integration.uninstrument()
    except Exception as exc:  # reported, not raised: the report is what matters here
        found.not_patched.append(f"(undoing the patches raised {type(exc).__name__})")
    patched = f"{found.patched} patch point{'' if found.patched == 1 else 's'}" if found.patched else \
        "through the library's own instrumentation hooks"
    if found.not_patched:
        found.status = PARTIAL
        found.detail = f"{patched}; not patched: {'; '.join(found.not_patched)}"
    else:
        found.detail = patched


def unactivated_by(command: Sequence[str]) -> str | None:
    """Why ``autotrace run`` cannot activate in ``command`` (``PYTHONPATH``'s ``sitecustomize``), or
    None: a Python interpreter run with ``-I``, ``-E`` or ``-S``, named in the command (also after
    ``env``) or in the ``#!`` line of the script it names (``#!/usr/bin/python3 -Es``)."""
    words = list(command)
    if not _PYTHON.fullmatch(os.path.basename(words[0])) and os.path.basename(words[0]) != "env":
        words = _shebang(words[0])
    if words and os.path.basename(words[0]) == "env":  # ``env X=1 python -E``, ``#!/usr/bin/env -S python3 -E``
        words = _after_env(words[1:])
    if not words or not _PYTHON.fullmatch(os.path.basename(words[0])):
        return None
    for letter in _options(words[1:]):
        if letter in _UNACTIVATED:
            return (f"{os.path.basename(words[0])} -{letter} {_UNACTIVATED[letter]}, so the program runs "
                    "untraced (call autotrace.install() in it instead)")
    return None


def _shebang(program: str) -> list[str]:
    """The words of the ``#!`` line of ``program`` (found on ``PATH`` as ``exec`` would), if any."""
    path = program if os.sep in program else shutil.which(program)
    try:
        with open(path or program, "rb") as file:
            line = file.readline(512)
    except OSError:
        return []
    return line[2:].decode("utf-8", "replace").split() if line.startswith(b"#!") else []


def _after_env(words: list[str]) -> list[str]:
    """The command ``env`` runs: its words after ``env``'s own options and variable assignments."""
    for index, word in enumerate(words):
        if not word.startswith("-") and "=" not in word:
            return words[index:]
    return []


def _options(arguments: Sequence[str]) -> Iterator[str]:
    """The interpreter's one-letter options, up to the program (script, ``-c`` or ``-m``)."""
    remaining = iter(arguments)
    for argument in remaining:
        if argument in ("-", "--") or not argument.startswith("-"):
            return
        if argument.startswith("--"):
            if argument == "--check-hash-based-pycs":
                next(remaining, None)
            continue
        for index, letter in enumerate(argument[1:], 1):
            if letter in "cm":
                return
            if letter in "WX":  # its value is the rest of the word, or the next word
                if index == len(argument) - 1:
                    next(remaining, None)
                break
            yield letter
