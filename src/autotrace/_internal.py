"""Shared plumbing: the package logger, log-once, and the counters behind ``autotrace.stats()``."""

from __future__ import annotations

import logging
import threading
from collections import Counter

logger = logging.getLogger("autotrace")

_lock = threading.Lock()
_counters: Counter[str] = Counter()
_logged: set[str] = set()
_MAX_LOG_KEYS = 1024


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to the counter ``name``."""
    with _lock:
        _counters[name] += n


def stats() -> dict[str, int]:
    """A snapshot of every counter: spans exported, dropped (by reason), failures, truncations."""
    with _lock:
        return dict(_counters)


def reset_stats() -> None:
    """Zero every counter (tests and benchmarks)."""
    with _lock:
        _counters.clear()
        _logged.clear()


def log_once(key: str, message: str, *args: object, level: int = logging.WARNING, exc_info: bool = False) -> None:
    """Log ``message`` the first time ``key`` is seen; later calls are silent (the caller counts)."""
    with _lock:
        if key in _logged or len(_logged) >= _MAX_LOG_KEYS:
            return
        _logged.add(key)
    logger.log(level, message, *args, exc_info=exc_info)


def guarded_failure(where: str, exc: BaseException) -> None:
    """Record an internal failure that must not reach the host application."""
    count(f"internal_errors.{where}")
    log_once(
        f"internal:{where}:{type(exc).__name__}",
        "autotrace: internal error in %s (%s: %s); tracing continues",
        where,
        type(exc).__name__,
        exc,
    )
