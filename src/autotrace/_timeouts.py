"""Flush and shutdown steps bounded by a timeout, never raising into the application."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ._internal import guarded_failure, log_once


def seconds(timeout: Any, where: str) -> float:
    """A flush or shutdown timeout in seconds: None, or anything that is not a number, is the
    default 5 s (else ``shutdown(None)`` raised and left the pipeline running, its spans unsent)."""
    if isinstance(timeout, int | float):  # past TIMEOUT_MAX (inf: "as long as it takes") a join raised
        return float(min(timeout, threading.TIMEOUT_MAX))
    if timeout is not None:
        log_once(f"timeout:{where}", "autotrace: %s timeout given as a %s, not a number of seconds; using 5 s",
                 where, type(timeout).__name__)
    return 5.0


def never_raising(step: Callable[[float], Any], where: str, timeout: float) -> Any:
    """``step(timeout)`` (a flush or shutdown), never raising into the application: an internal
    error (the pipeline thread changing what ``step`` reads, say) is counted, and ``step`` is tried
    again with the time left, a last time once it is up; None if it never succeeded."""
    deadline = time.monotonic() + seconds(timeout, where)
    while True:
        left = deadline - time.monotonic()
        try:
            return step(max(0.0, left))
        except Exception as exc:
            guarded_failure(where, exc)
            if not left > 0:  # that was the last try (NaN too)
                return None
            time.sleep(0.001)
