"""A small pool of daemon threads for export I/O (daemon, so a hung endpoint never blocks exit).

``size`` threads run from the first job on: a process given no export work (a pre-fork server's
master) has none when it forks; where none can start (at exit on Python 3.12), the span pipeline
runs the jobs (``run_stranded``). A thread whose job has run for ``_STUCK_AFTER`` seconds (an
endpoint that hangs until the export timeout) is stuck: while jobs wait, each stuck thread is
replaced by an extra one, up to ``max_size`` threads, so other destinations keep flowing. Threads
that are merely busy are not replaced: a burst of healthy exports waits its turn instead of opening
ever more connections. An extra thread ends after ``_EXTRA_IDLE`` seconds without work.

Jobs of one ``lane`` (the exports to one host: the Langfuse every tenant shares) run on at most
``lane_limit`` threads, all but ``size`` of ``max_size``, the others of that lane waiting apart: a
host that hangs never holds the threads the local store, credentials lookups and other hosts'
exports go on with.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

from opentelemetry.context import (
    _SUPPRESS_INSTRUMENTATION_KEY,
    Context,
    attach,
    create_key,
    detach,
    get_value,
    set_value,
)

from .._internal import count, guarded_failure, log_once

#: Seconds an extra thread waits for work before it ends.
_EXTRA_IDLE = 5.0
#: Seconds after which a running job's thread counts as stuck.
_STUCK_AFTER = 1.0
#: ``max_size`` when not given: this many times ``size``.
_BURST = 8
#: Marks autotrace's own export threads (``own_thread``), and their context.
_own = threading.local()
_OWN_CONTEXT = create_key("autotrace-export-thread")
#: Pools holding jobs that no thread of theirs can run: the interpreter refused to start one.
_stranded: set[WorkerPool] = set()
if hasattr(os, "register_at_fork"):  # a parent's jobs are never the child's to run
    os.register_at_fork(after_in_child=_stranded.clear)


def _marked() -> Context:
    """The calling context, marked as autotrace's own and with instrumentation suppressed."""
    return set_value(_OWN_CONTEXT, True, set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))


def own_thread() -> None:
    """Mark the calling thread, for its lifetime, as one of autotrace's export threads (the
    pipeline's, an export worker): the user code run there (a redaction hook, a credentials
    resolver) is not traced. OpenTelemetry instrumentations see instrumentation suppressed; the
    spans of those that do not look (autotrace's own) are left out by the pipeline. The mark is
    in the thread's context too: work the hook hands to another thread with its context
    (``asyncio.to_thread``, an executor running ``copy_context().run``) is the hook's as well."""
    _own.marked = True
    attach(_marked())


@contextmanager
def as_own_thread() -> Iterator[None]:
    """Run a block on the calling thread as on one of autotrace's export threads (``own_thread``):
    a flush's drain where no pipeline thread could start runs redaction hooks and exports there."""
    if on_own_thread():
        yield
        return
    _own.marked = True
    token = attach(_marked())
    try:
        yield
    finally:
        detach(token)
        _own.marked = False


def survive(where: str, exc: BaseException) -> None:
    """Count and log an exception raised on an export thread (by autotrace, or by the user code run
    there: a redaction hook, a credentials resolver), which goes on. Not only an ``Exception``:
    asyncio's ``CancelledError``, gevent's ``Timeout`` and ``SystemExit`` are not one, and let through
    they end the thread for good, and every tenant's export with it. The main thread's
    ``KeyboardInterrupt`` (Ctrl-C while it does the export work at interpreter exit) is raised again,
    uncounted: no internal error, and said once by the exit handler (``exit_export_interrupted``)."""
    if isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
        raise exc
    guarded_failure(where, exc)


def on_own_thread() -> bool:
    """Whether the calling thread is one of autotrace's export threads (``own_thread``), or runs
    in a context handed on from one."""
    return getattr(_own, "marked", False) or get_value(_OWN_CONTEXT) is True


class _Lane:
    """The jobs of one lane: those waiting, whether one is queued for a thread, how many run."""

    __slots__ = ("queued", "running", "waiting")

    def __init__(self) -> None:
        self.waiting: deque[Callable[[], None]] = deque()
        self.queued = False
        self.running = 0


class WorkerPool:
    """Runs submitted callables on ``size`` daemon threads, and on extra ones (up to ``max_size``)
    in place of threads stuck on one job while others wait."""

    def __init__(self, size: int, name: str = "autotrace-export", max_size: int | None = None) -> None:
        self.size = size
        self.name = name
        self.max_size = max(size, max_size if max_size is not None else size * _BURST)
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        #: Threads waiting for work minus jobs queued (negative: jobs are waiting for a thread).
        self._free = 0
        self._threads: set[threading.Thread] = set()
        #: When each thread running a job started it (by thread identity).
        self._running: dict[int, float] = {}
        self._recheck: threading.Timer | None = None
        self._started = 0
        self._stopped = False
        self._core = False  # the ``size`` core threads have been started (by the first job)
        #: Jobs of one lane running at most (``submit``), and the lanes with jobs.
        self.lane_limit = max(size, self.max_size - size)
        self._lanes: dict[Hashable, _Lane] = {}

    def _spawn(self, core: bool) -> bool:
        """Start one thread (lock held); False when the interpreter refuses (at exit)."""
        thread = threading.Thread(target=self._run, args=(core,), name=f"{self.name}-{self._started}", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            return False
        self._started += 1
        self._threads.add(thread)
        self._free += 1
        return True

    def submit(self, job: Callable[[], None], lane: Hashable | None = None) -> None:
        """Run ``job`` on a thread. Jobs of one ``lane`` wait apart (in order), one at a time
        queued for a thread, and at most ``lane_limit`` running."""
        with self._lock:
            if lane is None:
                self._put(job)
                return
            entry = self._lanes.get(lane)
            if entry is None:
                entry = self._lanes[lane] = _Lane()
            entry.waiting.append(job)
            self._next_of(lane, entry)

    def _next_of(self, lane: Hashable, entry: _Lane, grow: bool = True) -> None:
        """Queue the next job waiting in ``lane`` unless one is queued already or the lane runs its
        most (lock held); forget the lane once it has nothing."""
        if not entry.queued and entry.waiting and entry.running < self.lane_limit and not self._stopped:
            entry.queued = True
            self._put(functools.partial(self._in_lane, lane, entry, entry.waiting.popleft()), grow)
        elif not (entry.queued or entry.waiting or entry.running):
            self._lanes.pop(lane, None)

    def _in_lane(self, lane: Hashable, entry: _Lane, job: Callable[[], None]) -> None:
        """Run a job of ``lane``: the lane's next one is queued as it starts and as it ends."""
        with self._lock:
            entry.queued = False
            entry.running += 1
            self._next_of(lane, entry)
        try:
            job()
        finally:
            with self._lock:
                entry.running -= 1
                self._next_of(lane, entry, grow=False)  # (this thread is about to be free)

    def _put(self, job: Callable[[], None], grow: bool = True) -> None:
        """Queue ``job`` for a thread, starting threads as needed (lock held); not ``grow``: queued
        by a thread about to be free for it."""
        if not self._core and not self._stopped:
            self._core = True
            for _ in range(self.size):
                self._spawn(core=True)
        self._free -= 1
        self._jobs.put(job)
        if grow:
            self._grow()
        if not self._threads and not self._stopped:  # none could start (at exit on Python 3.12)
            _stranded.add(self)

    def _run_stranded(self) -> None:
        """Run on the calling thread the jobs waiting while this pool has no thread."""
        while True:
            with self._lock:
                if self._threads or self._stopped:
                    return
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    return
                self._free += 1
            if job is None:
                continue
            try:
                job()
            except BaseException as exc:  # (not only Exception: see ``survive``)
                survive("worker", exc)

    def _grow(self) -> None:
        """While jobs wait (lock held): replace stuck threads, else look again once the busy ones
        could count as stuck."""
        if self._free >= 0 or self._stopped:
            return
        now = time.monotonic()
        stuck = sum(1 for started in self._running.values() if now - started >= _STUCK_AFTER)
        allowed = min(self.max_size, self.size + stuck)
        while self._free < 0 and len(self._threads) < allowed and self._spawn(core=False):
            pass
        if self._free >= 0:
            return
        if len(self._threads) >= self.max_size:
            count("export_workers_busy")
            log_once("workers_busy", "autotrace: all %d export threads are stuck on slow endpoints; "
                     "exports wait for a free one", self.max_size)
        elif self._recheck is None and self._threads:  # (none: the next job tries to start one)
            self._recheck = threading.Timer(_STUCK_AFTER, self._look_again)
            self._recheck.daemon = True
            try:
                self._recheck.start()
            except RuntimeError:  # at interpreter exit
                self._recheck = None

    def _look_again(self) -> None:
        with self._lock:
            self._recheck = None
            self._grow()

    def _run(self, core: bool) -> None:
        own_thread()
        wait = None if core else _EXTRA_IDLE
        me = threading.get_ident()
        while True:
            try:
                job = self._jobs.get(timeout=wait)
            except queue.Empty:
                with self._lock:
                    if self._free > 0:  # more threads wait than jobs: this extra one ends
                        self._free -= 1
                        self._threads.discard(threading.current_thread())
                        return
                continue  # a job was queued for this thread meanwhile
            if job is None:
                return
            with self._lock:
                self._running[me] = time.monotonic()
            try:
                job()
            except BaseException as exc:  # (not only Exception: see ``survive``)
                survive("worker", exc)
            finally:
                with self._lock:
                    self._running.pop(me, None)
                    self._free += 1

    def stop(self, timeout: float) -> None:
        """Drop jobs not started yet, let every thread finish its current job and exit; waits at
        most ``timeout`` overall (a thread stuck on a hung endpoint exits when its job returns)."""
        with self._lock:
            self._stopped = True
            _stranded.discard(self)
            if self._recheck is not None:
                self._recheck.cancel()
                self._recheck = None
            threads = list(self._threads)
            self._lanes.clear()
            try:
                while True:
                    self._jobs.get_nowait()
            except queue.Empty:
                pass
            for _ in threads:
                self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():  # (a credentials resolver's uninstall)
                thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def respawn(self) -> WorkerPool:
        """A new pool of the same shape (after ``fork`` the old threads do not exist in the child)."""
        return WorkerPool(self.size, self.name, self.max_size)


def run_stranded() -> None:
    """Run, on the calling thread (the span pipeline's), the export jobs of pools that could start no
    thread: the interpreter refuses new threads at exit on Python 3.12, when a pool's first job may
    be the export at exit. A pool's jobs wait otherwise for its threads."""
    while _stranded:
        try:
            pool = _stranded.pop()
        except KeyError:  # another thread took the last one
            return
        pool._run_stranded()
