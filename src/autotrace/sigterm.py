"""SIGTERM without losing spans.

Under Python's default a SIGTERM (what Kubernetes and ``docker stop`` send) ends the process at
once, without ``atexit``: the spans not yet exported are lost. When the application has not
handled SIGTERM itself, ``install()`` sets a handler that exports what is buffered (within 2 s) and
then ends the process by the same signal, with the default disposition restored, so its exit
status and everything else the sender sees stay what they were.

A handler the application (or its server) sets later replaces this one. One that calls this one as
"the previous handler" keeps control: the process is only ended here while this is the handler.

During the export at interpreter exit (``exiting()``) a SIGTERM waits for it, then ends the process
as it would have: a server stopping its workers (a ``multiprocessing`` pool's ``terminate()``) often
sends one to a worker that is already exiting, which would otherwise cut that export short.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from ._internal import count, guarded_failure

#: How long a SIGTERM waits for buffered spans to be exported.
FLUSH_SECONDS = 2.0

_flush: Callable[[float], Any] | None = None
#: True while the export at interpreter exit runs; ``_deferred``: a SIGTERM came meanwhile.
_exiting = False
_deferred = False


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
    if _exiting or threading.current_thread() is not threading.main_thread():
        return  # at exit: ``exiting()`` gives the default back once the export is over
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError, AttributeError):
        pass


@contextmanager
def exiting() -> Iterator[None]:
    """Around the export at interpreter exit (main thread): a SIGTERM meanwhile ends the process
    once it is over (its bound is the one on that export), instead of at once."""
    global _exiting, _deferred
    ours = threading.current_thread() is threading.main_thread() and _is_ours()
    _exiting = ours
    try:
        yield
    finally:
        _exiting = False
        deferred, _deferred = _deferred, False
        if ours and _is_ours():  # else a later handler that called this one decides
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if deferred:
                os.kill(os.getpid(), signal.SIGTERM)


def _is_ours() -> bool:
    try:
        return signal.getsignal(signal.SIGTERM) is _on_sigterm
    except (ValueError, OSError, AttributeError):
        return False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Export what is buffered, within ``FLUSH_SECONDS``, then end as the default would have.

    The flush runs in a thread of its own that this one waits for with a bound: the signal can
    arrive while this thread holds a lock the export needs, which must cost spans, never a hang."""
    global _deferred
    if _exiting:  # the exit export is under way on this very thread: ``exiting()`` ends the process
        _deferred = True
        return
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
