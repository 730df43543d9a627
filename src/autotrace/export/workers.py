"""A small pool of daemon threads for export I/O (daemon, so a hung endpoint never blocks exit).

``size`` threads always run. When a job arrives and none of them is free (say every one waits on
a hung endpoint until the export timeout), an extra thread starts, up to ``max_size``, so other
destinations keep flowing; an extra thread ends after ``_EXTRA_IDLE`` seconds without work.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from .._internal import count, guarded_failure, log_once

#: Seconds an extra thread waits for work before it ends.
_EXTRA_IDLE = 5.0
#: ``max_size`` when not given: this many times ``size``.
_BURST = 8


class WorkerPool:
    """Runs submitted callables on ``size`` (up to ``max_size`` when busy) daemon threads."""

    def __init__(self, size: int, name: str = "autotrace-export", max_size: int | None = None) -> None:
        self.size = size
        self.name = name
        self.max_size = max(size, max_size if max_size is not None else size * _BURST)
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        #: Threads waiting for work minus jobs queued (negative: jobs are waiting for a thread).
        self._free = 0
        self._threads: set[threading.Thread] = set()
        self._started = 0
        self._stopped = False
        with self._lock:
            for _ in range(size):
                self._spawn(core=True)

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

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._free -= 1
            self._jobs.put(job)
            if self._free < 0 and not self._stopped:
                if len(self._threads) < self.max_size:
                    self._spawn(core=False)
                else:
                    count("export_workers_busy")
                    log_once("workers_busy", "autotrace: all %d export threads are busy (hung endpoints?); "
                             "exports wait for a free one", self.max_size)

    def _run(self, core: bool) -> None:
        wait = None if core else _EXTRA_IDLE
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
            try:
                job()
            except Exception as exc:
                guarded_failure("worker", exc)
            finally:
                with self._lock:
                    self._free += 1

    def stop(self, timeout: float) -> None:
        """Drop jobs not started yet, let every thread finish its current job and exit; waits at
        most ``timeout`` overall (a thread stuck on a hung endpoint exits when its job returns)."""
        with self._lock:
            self._stopped = True
            threads = list(self._threads)
            try:
                while True:
                    self._jobs.get_nowait()
            except queue.Empty:
                pass
            for _ in threads:
                self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def respawn(self) -> WorkerPool:
        """A new pool of the same shape (after ``fork`` the old threads do not exist in the child)."""
        return WorkerPool(self.size, self.name, self.max_size)
