"""A small pool of daemon threads for export I/O (daemon, so a hung endpoint never blocks exit)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from .._internal import guarded_failure


class WorkerPool:
    """Runs submitted callables on ``size`` daemon threads."""

    def __init__(self, size: int, name: str = "autotrace-export") -> None:
        self.size = size
        self.name = name
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception as exc:
                guarded_failure("worker", exc)

    def stop(self, timeout: float) -> None:
        """Drop jobs not started yet, let every thread finish its current job and exit; waits at
        most ``timeout`` overall (a thread stuck on a hung endpoint exits when its job returns)."""
        try:
            while True:
                self._jobs.get_nowait()
        except queue.Empty:
            pass
        for _ in self._threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def respawn(self) -> WorkerPool:
        """A new pool of the same shape (after ``fork`` the old threads do not exist in the child)."""
        return WorkerPool(self.size, self.name)
