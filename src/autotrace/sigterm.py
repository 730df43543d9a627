"""SIGTERM without losing spans.

Under Python's default a SIGTERM (what Kubernetes and ``docker stop`` send) ends the process at
once, without ``atexit``: the spans not yet exported are lost. When the application has not
handled SIGTERM itself, ``install()`` sets a handler that exports what is buffered (within 2 s) and
then ends the process by the same signal, with the default disposition restored, so its exit
status and everything else the sender sees stay what they were.

A handler the application (or its server) sets later replaces this one. One that calls this one as
"the previous handler" keeps control: the process is only ended here while this is the handler.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from ._internal import count, guarded_failure

#: How long a SIGTERM waits for buffered spans to be exported.
FLUSH_SECONDS = 2.0

_flush: Callable[[float], Any] | None = None


def watch(flush: Callable[[float], Any]) -> bool:
    """Have SIGTERM run ``flush`` first, if the process has no handler of its own and this runs in
    the main thread (where Python lets handlers be set). True if the handler is (now) set."""
    global _flush
    if not hasattr(signal, "SIGTERM") or os.name != "posix":
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        current = signal.getsignal(signal.SIGTERM)
        if current is _on_sigterm:
            _flush = flush
            return True
        if current is not signal.SIG_DFL:  # the application's (or its server's) own: it decides
            return False
        _flush = flush
        signal.signal(signal.SIGTERM, _on_sigterm)
        return True
    except (ValueError, OSError) as exc:  # e.g. an embedded interpreter that refuses handlers
        guarded_failure("sigterm.watch", exc)
        return False


def unwatch() -> None:
    """Give SIGTERM its default back, unless another handler has replaced this one since."""
    global _flush
    _flush = None
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError, AttributeError):
        pass


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Export what is buffered, within ``FLUSH_SECONDS``, then end as the default would have.

    The flush runs in a thread of its own that this one waits for with a bound: the signal can
    arrive while this thread holds a lock the export needs, which must cost spans, never a hang."""
    flush = _flush
    if flush is not None:
        count("sigterm_flushes")
        worker = threading.Thread(target=_flush_quietly, args=(flush,), name="autotrace-sigterm", daemon=True)
        try:
            worker.start()
            worker.join(FLUSH_SECONDS + 0.5)
        except Exception as exc:  # no thread could start: end without the flush
            guarded_failure("sigterm.flush", exc)
    if signal.getsignal(signum) is not _on_sigterm:
        return  # a later handler called this one as its predecessor: ending the process is its call
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _flush_quietly(flush: Callable[[float], Any]) -> None:
    try:
        flush(FLUSH_SECONDS)
    except Exception as exc:
        guarded_failure("sigterm.flush", exc)
