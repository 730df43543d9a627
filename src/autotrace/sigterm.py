"""SIGTERM without losing spans.

Under Python's default a SIGTERM (what Kubernetes and ``docker stop`` send) ends the process at
once, without ``atexit``: the spans not yet exported are lost. When the application has not
handled SIGTERM itself, ``install()`` sets a handler that exports what is buffered (within 2 s) and
then ends the process by the same signal, with the default disposition restored, so its exit
status and everything else the sender sees stay what they were.

A handler the application (or its server) sets later replaces this one. One that calls this one as
"the previous handler" keeps control: the process is only ended here while this is the handler.
SIGTERM set back to its default later (gunicorn's ``UvicornWorker`` does so in each worker it forks,
asyncio's ``remove_signal_handler`` too) gets this handler instead: it is that default, after the export.

During the export at interpreter exit (``exiting()``) a SIGTERM waits for it, then does what it
would have done: a server stopping its workers (a ``multiprocessing`` pool's ``terminate()``) often
sends one to a worker that is already exiting, which would otherwise cut that export short (also
under the application's own handler: its ``sys.exit`` raised in the middle of the export).
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from ._internal import count, guarded_failure, log_once

#: How long a SIGTERM waits for buffered spans to be exported.
FLUSH_SECONDS = 2.0

_flush: Callable[[float], Any] | None = None
#: ``flush_on_sigterm``: set by ``watch()`` (whether or not the application has a handler of its own).
_wanted = False
#: A SIGTERM came during the export at interpreter exit.
_deferred = False
#: ``signal.signal`` before ``watch()`` wrapped it (``_keeping_the_flush``): autotrace's own calls use it.
_set_handler = signal.signal


def watch(flush: Callable[[float], Any]) -> bool:
    """Have SIGTERM run ``flush`` first, if the process has no handler of its own and this runs in
    the main thread (where Python lets handlers be set). True if the handler is (now) set."""
    global _flush, _wanted
    _wanted = True
    if not hasattr(signal, "SIGTERM") or os.name != "posix":
        return False
    _flush = flush
    if signal.signal is _set_handler:
        signal.signal = _keeping_the_flush
    if threading.current_thread() is not threading.main_thread():
        if _current() is signal.SIG_DFL:  # Python sets handlers only from the main thread
            log_once("sigterm_off_main_thread", "autotrace: install() ran outside the main thread, so an "
                     "unhandled SIGTERM ends the process without exporting buffered spans; call install() "
                     "from the main thread, or autotrace.flush() in your own shutdown")
        return False
    try:
        current = signal.getsignal(signal.SIGTERM)
        if current is _on_sigterm:
            return True
        if current is not signal.SIG_DFL:  # the application's (or its server's) own: it decides
            return False
        _set_handler(signal.SIGTERM, _on_sigterm)
        return True
    except (ValueError, OSError) as exc:  # e.g. an embedded interpreter that refuses handlers
        guarded_failure("sigterm.watch", exc)
        return False


def unwatch() -> None:
    """Give SIGTERM its default back, unless another handler has replaced this one since (at exit:
    ``exiting()``'s own, which gives the default back once the export is over)."""
    global _flush, _wanted
    _flush = None
    _wanted = False
    if signal.signal is _keeping_the_flush:  # unless another wrapper has replaced it since: it calls ours
        signal.signal = _set_handler
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            _set_handler(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError, AttributeError):
        pass


@functools.wraps(_set_handler)
def _keeping_the_flush(signalnum: Any, handler: Any) -> Any:
    """``signal.signal`` while ``flush_on_sigterm`` is on: SIGTERM's default gets ``_on_sigterm``."""
    if handler is signal.SIG_DFL and signalnum == signal.SIGTERM and _wanted and _flush is not None:
        handler = _on_sigterm
    return _set_handler(signalnum, handler)


@contextmanager
def exiting() -> Iterator[None]:
    """Around the export at interpreter exit (main thread): a SIGTERM meanwhile waits until it is
    over (its bound is the one on that export), then ends the process under this module's handler,
    or runs the application's (``flush_on_sigterm`` on). A ``SystemExit`` that one raises then is
    dropped, as Python drops it from any exit function: the process is ending already."""
    global _deferred
    handler = _current()
    waits = (callable(handler) and (_wanted or handler is _on_sigterm)
             and os.name == "posix" and threading.current_thread() is threading.main_thread())
    try:
        if waits:
            _set_handler(signal.SIGTERM, _wait_for_export)
    except (ValueError, OSError) as exc:
        waits = False
        guarded_failure("sigterm.exiting", exc)
    try:
        yield
    finally:
        deferred, _deferred = _deferred, False
        if waits and _current() is _wait_for_export:
            _set_handler(signal.SIGTERM, signal.SIG_DFL if handler is _on_sigterm else handler)
            if deferred:
                _deliver()


def _wait_for_export(signum: int, frame: FrameType | None) -> None:
    global _deferred
    _deferred = True


def _deliver() -> None:
    """The SIGTERM that came during the exit export, to the handler it would have reached."""
    try:
        signal.raise_signal(signal.SIGTERM)
    except SystemExit:
        pass


def _current() -> Any:
    try:
        return signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError, AttributeError):
        return None


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
    _set_handler(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _flush_quietly(flush: Callable[[float], Any]) -> None:
    try:
        flush(FLUSH_SECONDS)
    except Exception as exc:
        guarded_failure("sigterm.flush", exc)
