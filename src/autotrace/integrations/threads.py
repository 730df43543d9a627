"""Tasks handed to a thread pool run in the tracing state of the code that submitted them: the
current observation (so their spans join its trace, under it), the tenant, the trace attributes,
the content-capture setting and an active replay.

Python gives a worker thread none of the submitter's context (``asyncio.to_thread`` copies it;
``submit``, ``map`` and ``loop.run_in_executor`` do not), so parallel tool calls or retrievals run
in a pool started new, tenantless traces, which the default ``unknown_tenant="drop"`` then kept out
of every project. Only autotrace's own state is carried, for the task only: the application's other
context variables are left as they were, and a task submitted outside any traced work runs in the
worker's own state. Either way a worker thread keeps nothing of the task's: a tenant it set (a job
that calls ``set_tenant`` and ends) or a stream it left current (a generator handed back to the
submitter) would otherwise belong to every later task of that thread, whoever submitted it.

Two pools: ``concurrent.futures.ThreadPoolExecutor`` (its ``submit``; ``map`` and
``run_in_executor`` go through it) and ``multiprocessing.pool.ThreadPool`` (``multiprocessing.dummy.Pool``,
Pinecone's ``async_req`` pool). Every submitting method of the latter (``apply``, ``map``, ``starmap``,
``imap``, ``imap_unordered`` and the ``_async`` ones) puts its tasks on the pool's task queue, on the
caller's thread: that ``put`` is the one place patched, for pools made before ``install()`` too (a
``map`` task is a chunk of items: the state is set once per chunk). Its ``callback`` and
``error_callback`` run on the pool's one result-handler thread, which serves every submitter: they
run in their submitter's state too, as they continue its work (a score or a call they record is its
tenant's), and that thread keeps nothing of it. A process ``Pool`` is left alone: its tasks are
pickled to other processes.
``threading.Thread`` is left alone: a thread started during one request may outlive it, and would
record later work under its tenant. For the same reason a process pool's worker ``multiprocessing``
forks (a ``ProcessPoolExecutor``'s or a ``Pool``'s, which serves every later submitter) starts with
none of the forking thread's tracing state, as a spawned one does (``_in_started_process``); a plain
``Process`` keeps it, its target being the forking request's work.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace

from .. import carried
from .._internal import count, guarded_failure
from ..carried import Values, current_values
from .base import Integration

#: Patched when the application imports it: never imported here.
_POOLS = "multiprocessing.pool"
#: Where ``multiprocessing`` keeps what runs in a process it forked, before the target.
_UTIL = "multiprocessing.util"


class _InSubmittersState:
    """A submitted callable, run with the submitter's tracing state set (``values`` None: with the
    worker's own), then the worker's put back, whatever the task changed of it (``carried.enter``)."""

    __slots__ = ("fn", "otel", "values")

    def __init__(self, fn: Any, otel: Any, values: Values | None) -> None:
        self.fn, self.otel, self.values = fn, otel, values

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        entered = self._enter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            if entered is not None:
                try:
                    carried.leave(entered)
                except Exception as exc:  # the task's result or error stays its own
                    guarded_failure("threads", exc)

    def _enter(self) -> carried.Entered | None:
        """Set the state the task runs in; None if that failed (it runs in the worker's as it is)."""
        values, otel = self.values, self.otel
        try:
            if values is None:  # submitted outside traced work: set as they are, so that the task's changes are undone
                values, otel = current_values(), otel_context.get_current()
            return carried.enter(values, otel, "threads")
        except Exception as exc:
            guarded_failure("threads", exc)
            return None


def _submitters_state() -> tuple[Any, Values | None]:
    """The caller's OTel context and autotrace variables, or ``(None, None)`` outside traced work."""
    values = current_values()
    if any(value is not None for value in values) or trace.get_current_span().get_span_context().is_valid:
        return otel_context.get_current(), values
    return None, None


def _submit(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``ThreadPoolExecutor.submit``: the task carries the submitter's tracing state, if there is
    any, else runs in the worker's; either way the worker keeps nothing of the task's."""
    try:
        task = _InSubmittersState(args[0], *_submitters_state()) if args else None
    except Exception as exc:  # the task is handed over as it is
        guarded_failure("threads", exc)
        task = None
    if task is None:
        return wrapped(*args, **kwargs)  # no task (submit's own error) or a failure: handed over as it is
    return wrapped(task, *args[1:], **kwargs)


class _Submitting:
    """A ``ThreadPool``'s task queue as its submitting methods see it: each ``(tasks, set_length)``
    they put runs its tasks in their state. Anything else is the queue's own."""

    __slots__ = ("queue",)

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def put(self, item: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            if type(item) is tuple and len(item) == 2:
                tasks, set_length = item
                state = _submitters_state()
                item = ([_task(task, state) for task in tasks] if type(tasks) is list
                        else _tasks(tasks, state), set_length)
        except Exception as exc:  # handed over as it is
            guarded_failure("threads", exc)
        return self.queue.put(item, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)


def _task(task: Any, state: tuple[Any, Values | None]) -> Any:
    """A pool task, ``(job, index, fn, args, kwargs)``, with ``fn`` run in ``state``."""
    if type(task) is tuple and len(task) == 5:
        return (task[0], task[1], _InSubmittersState(task[2], *state), task[3], task[4])
    return task


def _tasks(tasks: Iterable[Any], state: tuple[Any, Values | None]) -> Iterator[Any]:
    """The tasks of a ``map`` or ``imap``, made lazily on the pool's task-handler thread."""
    for task in tasks:
        try:
            task = _task(task, state)
        except Exception as exc:  # handed over as it is: the pool's task-handler thread must not die
            guarded_failure("threads", exc)
        yield task


def _get_queue(pool: Any) -> Any:
    """``ThreadPool._taskqueue`` while installed: the pool's queue, seen through ``_Submitting``
    once the pool is built (its handler threads, given the queue while it is built, get it bare)."""
    try:
        queue = pool.__dict__["_taskqueue"]
    except KeyError:
        raise AttributeError("_taskqueue") from None
    return queue if pool.__dict__.get("_state") == "INIT" else _Submitting(queue)  # multiprocessing.pool.INIT


def _set_queue(pool: Any, queue: Any) -> None:
    pool.__dict__["_taskqueue"] = queue


#: Set on ``ThreadPool`` while installed; a pool made before keeps its queue where this finds it.
_TASK_QUEUE = property(_get_queue, _set_queue)


def _callbacks_wrapper(thread_pool: type) -> Any:
    """``ApplyResult.__init__`` (``MapResult``'s too), on the submitter's thread: the callbacks of a
    ``thread_pool`` submission run in the submitter's state."""

    def result(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        wrapped(*args, **kwargs)
        try:
            callback, error_callback = instance._callback, instance._error_callback
            if (callback or error_callback) and isinstance(instance._pool, thread_pool):
                state = _submitters_state()
                if callback:
                    instance._callback = _InSubmittersState(callback, *state)
                if error_callback:
                    instance._error_callback = _InSubmittersState(error_callback, *state)
        except Exception as exc:  # its callbacks run as they are
            guarded_failure("threads", exc)

    return result


#: The functions a process pool's workers run (``ProcessPoolExecutor``'s, a process ``Pool``'s).
_POOL_WORKERS = frozenset({("concurrent.futures.process", "_process_worker"), ("multiprocessing.pool", "worker")})


def _serves_a_pool(process: Any) -> bool:
    """Whether ``process`` (``multiprocessing``'s) is a process pool's worker."""
    target = getattr(process, "_target", None)
    target = getattr(target, "func", target)  # a ``functools.partial``
    return (getattr(target, "__module__", None), getattr(target, "__name__", None)) in _POOL_WORKERS


class ThreadsIntegration(Integration):
    """Patches ``ThreadPoolExecutor.submit`` and, once imported, ``ThreadPool``'s task queue and
    ``ApplyResult.__init__`` (for its callbacks)."""

    name = "threads"
    module = "concurrent.futures.thread"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pools_wanted = False
        self._hook_pending = False
        self._pool_class: type | None = None  # the ThreadPool given ``_TASK_QUEUE``
        self._fork_hooked = False  # ``_in_started_process`` registered (once per process; forks inherit it)

    def check(self) -> str | None:
        return None  # the standard library's

    def _instrument(self) -> None:
        self.patcher.wrap("concurrent.futures.thread", "ThreadPoolExecutor.submit", _submit, expects=("fn",))
        with self._lock:  # at once if imported already; a pending one (an earlier install's) patches at the import
            self._pools_wanted = True
            hook_forks, self._fork_hooked = not self._fork_hooked, True
            hook_pools, self._hook_pending = not self._hook_pending, True
        if hook_forks:
            wrapt.register_post_import_hook(self._hook_forks, _UTIL)
        if hook_pools:
            wrapt.register_post_import_hook(self._patch_pools, _POOLS)

    def _patch_pools(self, module: Any) -> None:
        """Run in the application's import of ``multiprocessing.pool``: never raises into it."""
        with self._lock:
            self._hook_pending = False
            if not self._pools_wanted or self._pool_class is not None:
                return
            try:
                pool_class = module.ThreadPool
                if "_taskqueue" in pool_class.__dict__:  # not the queue this knows: left alone
                    self.patcher._skipped(_POOLS, "ThreadPool._taskqueue", "already replaced")
                    return
                self.patcher.wrap_object(module.ApplyResult, "__init__", _callbacks_wrapper(pool_class))
                pool_class._taskqueue = _TASK_QUEUE
                self._pool_class = pool_class
            except Exception as exc:
                guarded_failure("threads", exc)

    def _hook_forks(self, module: Any) -> None:
        """Run in the application's import of ``multiprocessing.util``: never raises into it."""
        try:
            module.register_after_fork(self, ThreadsIntegration._in_started_process)
        except Exception as exc:
            guarded_failure("threads", exc)

    def _in_started_process(self) -> None:
        """In a process ``multiprocessing`` forked, before its target: a pool's worker (which serves
        every later submitter) drops the forking thread's tenant, trace attributes and current span
        (one request's), while installed; a plain ``Process`` keeps them, its one target being that
        request's work. Never raises: ``multiprocessing`` would swallow it unsaid (counted and
        logged here instead)."""
        try:
            import multiprocessing  # (imported already: this runs in a process it started)

            if self._pools_wanted and _serves_a_pool(multiprocessing.current_process()):
                carried.forget("threads")
        except Exception as exc:
            guarded_failure("threads", exc)

    def _uninstrument(self) -> None:
        with self._lock:
            self._pools_wanted = False
            pool_class, self._pool_class = self._pool_class, None
            if pool_class is None:
                return
            if pool_class.__dict__.get("_taskqueue") is _TASK_QUEUE:
                del pool_class._taskqueue
            else:  # replaced since by someone else: theirs stays
                count("integration_patch_kept.threads")


INTEGRATION = ThreadsIntegration()
