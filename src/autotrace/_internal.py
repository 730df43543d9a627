"""Shared plumbing: the package logger, log-once, the counters behind ``autotrace.stats()``, and the
one ``os.fork`` registration every fork-aware object shares (``follow_fork``)."""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import Counter
from typing import Any

logger = logging.getLogger("autotrace")

_lock = threading.Lock()
_counters: Counter[str] = Counter()
_logged: set[str] = set()
_MAX_LOG_KEYS = 1024
#: Logged once when ``_MAX_LOG_KEYS`` different warnings have been logged: later ones are not.
_SILENCED = "\0silenced"
_SILENCED_MESSAGE = ("autotrace: %d different warnings logged; later new ones are not logged, only counted "
                     "(autotrace.stats())")
#: Keys remembered at most, those past ``_MAX_LOG_KEYS`` not logged but still seen once (a caller
#: counting what is new, such as each mistyped variable, counts it once); past this, always new.
_MAX_REMEMBERED_KEYS = 16_384
#: Counter names made with a key (``count_keyed``: one per tenant's destination, say); past this
#: many, a new key's counts go to ``<name>.other``. Other counter names are a fixed set.
_MAX_KEYED_COUNTERS = 4096
_keyed_names = 0
_resets = 0  #: times ``reset_stats()`` zeroed the counters (``stats_metrics`` counts on from there)
#: ``log_once_per``: keys logged per kind of warning (one per failing destination, say); past this
#: many, one line says later ones are only counted. Kinds are a fixed set in the code.
_MAX_KEYS_PER_KIND = 16
_logged_per_kind: dict[str, set[str]] = {}


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to the counter ``name``."""
    with _lock:
        _counters[name] += n


def count_keyed(name: str, key: str, n: int = 1) -> None:
    """Add ``n`` to the counter ``name`` and to ``<name>.<key>``; keyed names are bounded
    (``_MAX_KEYED_COUNTERS``), so a key from outside (a tenant) cannot grow the counters forever."""
    global _keyed_names
    keyed = f"{name}.{key}"
    with _lock:
        _counters[name] += n
        if keyed not in _counters:
            if _keyed_names >= _MAX_KEYED_COUNTERS:
                keyed = f"{name}.other"
            else:
                _keyed_names += 1
        _counters[keyed] += n


def stats() -> dict[str, int]:
    """A snapshot of every counter: spans exported, dropped (by reason), failures, truncations."""
    with _lock:
        return dict(_counters)


def stats_and_resets() -> tuple[dict[str, int], int]:
    """``stats()`` and how many times ``reset_stats()`` has zeroed them, read together."""
    with _lock:
        return dict(_counters), _resets


def reset_stats() -> None:
    """Zero every counter (tests and benchmarks)."""
    global _keyed_names, _resets
    with _lock:
        _resets += 1
        _counters.clear()
        _logged.clear()
        _logged_per_kind.clear()
        _keyed_names = 0


def log_once(key: str, message: str, *args: object, level: int = logging.WARNING, exc_info: bool = False) -> bool:
    """Log ``message`` the first time ``key`` is seen; later calls are silent (the caller counts).
    True when ``key`` was new (past the log budget, a new key is not logged, only counted)."""
    with _lock:
        if key in _logged:
            return False
        if len(_logged) >= _MAX_LOG_KEYS:  # said once, then only counted
            if len(_logged) < _MAX_REMEMBERED_KEYS:
                _logged.add(key)
            if _SILENCED in _logged:
                return True
            _logged.add(_SILENCED)
            message, args, level, exc_info = _SILENCED_MESSAGE, (_MAX_LOG_KEYS,), logging.WARNING, False
        else:
            _logged.add(key)
    logger.log(level, message, *args, exc_info=exc_info)
    return True


def log_once_per(kind: str, key: str, message: str, *args: object) -> None:
    """``log_once`` for a warning that repeats per key from outside (a tenant's destination): each of
    the first ``_MAX_KEYS_PER_KIND`` keys of ``kind`` is logged once, then one line says the others
    are only counted. An outage of a thousand tenants thus logs a few lines, not a thousand, and
    leaves ``log_once``'s budget to the other warnings."""
    with _lock:
        seen = _logged_per_kind.setdefault(kind, set())
        if key in seen or len(seen) > _MAX_KEYS_PER_KIND:
            return
        seen.add(key)
        if len(seen) > _MAX_KEYS_PER_KIND:
            message, args = ("autotrace: %d destinations logged %r warnings; later ones are only counted "
                             "(autotrace.stats())"), (_MAX_KEYS_PER_KIND, kind)
    logger.log(logging.WARNING, message, *args)


def guarded_failure(where: str, exc: BaseException, key: str | None = None) -> None:
    """Record an internal failure that must not reach the host application (``key``: which of
    many, such as a tenant's destination, counted as ``count_keyed`` does)."""
    if key is None:
        count(f"internal_errors.{where}")
    else:
        count_keyed(f"internal_errors.{where}", key)
    log_once(
        f"internal:{where}:{type(exc).__name__}",
        "autotrace: internal error in %s (%s raised at %s); tracing continues",
        where if key is None else f"{where} ({key})",
        type(exc).__name__,
        raised_at(exc),
    )


def raised_at(exc: BaseException) -> str:
    """Where ``exc`` was raised (``file.py:line in function``, its traceback's last frame): what an
    internal error's log line tells in place of its message, which may quote the application's data
    (a ``KeyError`` its key, a validation error the value it refused)."""
    frame = exc.__traceback__
    if frame is None:
        return "an unknown place"
    while frame.tb_next is not None:
        frame = frame.tb_next
    code = frame.tb_frame.f_code
    return f"{os.path.basename(code.co_filename)}:{frame.tb_lineno} in {code.co_name}"


#: Objects told about ``os.fork`` (held weakly: following a fork never keeps one alive).
_fork_followers: weakref.WeakSet[Any] = weakref.WeakSet()


def follow_fork(follower: Any) -> None:
    """Call ``follower``'s ``_before_fork``, ``_after_fork_in_parent`` and ``_after_fork_in_child``
    (each optional) around every ``os.fork``. One process-wide registration serves every follower:
    ``os.register_at_fork`` cannot be undone, so registering per object would grow for good."""
    _fork_followers.add(follower)


def _tell_followers(method: str) -> None:
    for follower in list(_fork_followers):
        handler = getattr(follower, method, None)
        if handler is None:
            continue
        try:
            handler()
        except Exception:  # as os.register_at_fork treats a raising handler: the others still run
            pass  # (nothing is logged or counted here: in a child the locks to do so may be held)


#: Whether ``_before_fork`` holds the counters' lock (see there).
_held_for_fork = False


def _before_fork() -> None:
    """The followers first (they may count), then the counters' lock, so that the parent's counters
    are whole. Waited for briefly: a fork from a signal handler that interrupted this very thread
    inside ``count`` would otherwise wait for good; the child gets a fresh lock either way."""
    global _held_for_fork
    _tell_followers("_before_fork")
    _held_for_fork = _lock.acquire(timeout=1.0)


def _after_fork_in_parent() -> None:
    global _held_for_fork
    if _held_for_fork:
        _held_for_fork = False
        _lock.release()
    _tell_followers("_after_fork_in_parent")


def _after_fork_in_child() -> None:
    """A lock of its own: the parent's may have been held by a thread the child does not have.
    Counters of its own too: a forked worker's ``stats()`` (and its metrics, which a metrics backend
    adds up across workers) would count again what the parent had counted before the fork."""
    global _lock, _held_for_fork, _keyed_names
    _lock, _held_for_fork = threading.Lock(), False
    _counters.clear()
    _keyed_names = 0
    _tell_followers("_after_fork_in_child")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
