"""The ends of a process that run no ``atexit``, where what is buffered is exported all the same.

A process ``multiprocessing`` forks (``fork``, and every worker of a ``forkserver``) ends by
``os._exit``: the export runs at that process's own exit hook instead, a ``multiprocessing``
finalizer of the lowest priority (after the application's), whether the process kept its parent's
install or called ``install()`` itself. A process that replaces itself with another program
(``os.exec*``, e.g. one that re-executes itself) first exports what it has finished; one
``autotrace run`` activated keeps its bootstrap first on ``PYTHONPATH`` for the program."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ._internal import guarded_failure
from .runtime import state

#: The exit export (``install._at_exit``), given by ``install``.
_export: Callable[[], None] | None = None
_hooked = False
#: The process whose finalizer is registered: one per process (a forked child registers its own).
_registered_in = 0


def hook_forks(export: Callable[[], None]) -> None:
    """Before a ``fork``: a process ``multiprocessing`` forks from now on that is installed when it
    starts exports at its exit (hooked once per process; its forks inherit the hook). Never imports
    ``multiprocessing``: only if the application did."""
    global _export, _hooked
    _export = export
    util = sys.modules.get("multiprocessing.util")
    if _hooked or util is None:
        return
    try:
        util.register_after_fork(hook_forks, _in_forked_child)
        _hooked = True
    except Exception as exc:
        guarded_failure("multiprocessing_hook", exc)


def _in_forked_child(_: object) -> None:
    """Run by ``multiprocessing`` in a process it forked, before the target."""
    if state.settings is not None and _export is not None:
        export_at_exit(_export)


def started_by_multiprocessing() -> bool:
    """Whether ``multiprocessing`` started this process (any start method)."""
    process = sys.modules.get("multiprocessing.process")
    try:
        return process is not None and process.parent_process() is not None
    except Exception:  # a multiprocessing that differs: as if not
        return False


def export_at_exit(export: Callable[[], None]) -> None:
    """Have this process's ``multiprocessing`` exit hook run ``export`` (once per process)."""
    global _export, _registered_in
    _export = export
    util = sys.modules.get("multiprocessing.util")
    if util is None or _registered_in == os.getpid():
        return
    try:
        util.Finalize(None, export, exitpriority=-(2**31))
        _registered_in = os.getpid()
    except Exception as exc:
        guarded_failure("multiprocessing_exit", exc)


#: How long an ``os.exec*`` waits for what is buffered to be exported (as a SIGTERM does).
EXEC_FLUSH_SECONDS = 2.0
#: The ``os`` functions every ``os.exec*`` goes through (``execl``, ``execvp``, ... call them), and
#: what they were before ``flush_before_exec`` replaced them.
_EXECS = ("execv", "execve")
_replaced: dict[str, Callable[..., Any]] = {}
#: When the flush of the last ``os.exec*`` had to end (monotonic seconds), and whether it finished.
_exec_flush = (0.0, True)
#: ``autotrace run``'s bootstrap folder, in a process it activated (``keep_bootstrap_first``).
_bootstrap: str | None = None


def keep_bootstrap_first(folder: str) -> None:
    """Keep ``folder`` first on ``PYTHONPATH`` for the processes this one starts: in the environment
    they inherit (now) and in the one a program it execs gets. OpenTelemetry's ``sitecustomize``
    runs no other and puts its folder first, once it ran and in its launcher
    (``opentelemetry-instrument``): the program, or its spawned workers, ran untraced without a
    word. The bootstrap runs the ``sitecustomize`` it shadows."""
    global _bootstrap
    _bootstrap = folder
    if (path := _bootstrap_first(os.environ)) is not None:
        os.environ["PYTHONPATH"] = path


def _bootstrap_first(env: Any) -> str | None:
    """``env``'s ``PYTHONPATH`` with the bootstrap moved to the front, or None when it is not further down."""
    folder = _bootstrap
    entries = str(env.get("PYTHONPATH", "")).split(os.pathsep)
    if folder is None or folder not in entries[1:]:
        return None
    return os.pathsep.join([folder, *(entry for entry in entries if entry != folder)])


def _flush_within_bound(flush: Callable[[float], Any]) -> None:
    """``flush`` before an exec. Once one did not finish in ``EXEC_FLUSH_SECONDS`` (an export hung),
    the execs tried until that bound has passed again only have what is left of it: ``os.execvp``
    tries ``execv`` in each ``PATH`` directory, and each waited the whole bound."""
    global _exec_flush
    now = time.monotonic()
    ends, finished = _exec_flush
    if finished or now >= ends + EXEC_FLUSH_SECONDS:
        ends = now + EXEC_FLUSH_SECONDS
    if now < ends:
        _exec_flush = (ends, bool(flush(ends - now)))


def flush_before_exec(flush: Callable[[float], Any]) -> None:
    """Have every ``os.exec*`` run ``flush`` first (within ``EXEC_FLUSH_SECONDS``; it never raises)."""
    for name in _EXECS:
        original = getattr(os, name, None)
        if original is None or name in _replaced:
            continue

        @functools.wraps(original)
        def exec_after_flush(*args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            _flush_within_bound(flush)
            return _original(*_with_bootstrap_first(args, kwargs), **kwargs)

        _replaced[name] = original
        setattr(os, name, exec_after_flush)


def _with_bootstrap_first(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """An exec's arguments (``kwargs`` updated in place) with the bootstrap first on ``PYTHONPATH``:
    in the ``env`` given to ``execve``, else in this process's environment, which ``execv`` passes on."""
    try:
        if len(args) > 2 or "env" in kwargs:
            env = args[2] if len(args) > 2 else kwargs["env"]
            path = _bootstrap_first(env)
            if path is None:
                return args
            if len(args) > 2:
                return (*args[:2], {**env, "PYTHONPATH": path}, *args[3:])
            kwargs["env"] = {**env, "PYTHONPATH": path}
        elif (path := _bootstrap_first(os.environ)) is not None:
            os.environ["PYTHONPATH"] = path
    except Exception as exc:  # an environment of an odd type: the exec as the program made it
        guarded_failure("exec_bootstrap", exc)
    return args


def restore_exec() -> None:
    """Give ``os`` its functions back, unless another wrapper has replaced ours since (it keeps
    calling ours, whose flush does nothing once uninstalled)."""
    for name, original in list(_replaced.items()):
        if getattr(getattr(os, name, None), "__wrapped__", None) is original:
            setattr(os, name, original)
        del _replaced[name]
