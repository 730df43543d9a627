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
tenant's), and that thread keeps nothing of it. A process pool's tasks (``ProcessPoolExecutor.submit``,
a process ``Pool``'s queue, patched alike; its callbacks as a ``ThreadPool``'s) are pickled to another
process: they carry what ``processes`` says.
A ``concurrent.futures.Future``'s done callbacks (``add_done_callback``; ``asyncio.wrap_future``'s
too) run where the future is completed: a pool's worker, a process pool's manager thread, or any
thread that sets its result, maybe in another tenant's request (a batch one request leads for all).
Each runs in the state of the code that added it, whose work it continues (none: in no tenant's),
and the completing thread keeps nothing of it.
``threading.Thread`` is left alone: a thread started during one request may outlive it, and would
record later work under its tenant. For the same reason a process pool's worker ``multiprocessing``
forks (a ``ProcessPoolExecutor``'s or a ``Pool``'s, which serves every later submitter) starts with
none of the forking thread's tracing state, as a spawned one does (``_in_started_process``): each
task brings its submitter's. A plain ``Process`` keeps it, its target being the forking request's work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace

from .. import carried
from .._internal import count, guarded_failure
from ..carried import Values, current_values
from . import processes
from .base import Integration

#: Patched when the application imports them: never imported here.
_POOLS = "multiprocessing.pool"
_PROCESS_POOL_EXECUTOR = "concurrent.futures.process"
#: Where ``multiprocessing`` keeps what runs in a process it forked, before the target.
_UTIL = "multiprocessing.util"


class _InSubmittersState(carried.Carrying):
    """A submitted callable, run with the submitter's tracing state set (``values`` None: with the
    worker's own), then the worker's put back, whatever the task changed of it (``carried.enter``)."""

    __slots__ = ("otel", "values")

    def __init__(self, fn: Any, otel: Any, values: Values | None) -> None:
        super().__init__(fn)
        self.otel, self.values = otel, values

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


#: What makes a pool's tasks carry their submitter's state, made on the submitter's thread.
Carrier = Callable[[], Callable[[Any], Any]]


def _in_thread() -> Callable[[Any], Any]:
    """A thread pool's ``Carrier``: the submitter's state, or the worker's (undone after the task)."""
    state = _submitters_state()
    return lambda fn: _InSubmittersState(fn, *state)


def carrying_submit(carry: Carrier) -> Callable[..., Any]:
    """An executor's ``submit`` wrapper whose task (``fn``) carries what ``carry`` gives:
    ``ThreadPoolExecutor``'s (the submitter's state, else the worker's, which keeps nothing of the
    task's) and ``ProcessPoolExecutor``'s (``processes.carrier``)."""

    def submit(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        task = None
        if args:
            try:
                task = carry()(args[0])
            except Exception as exc:  # the task is handed over as it is
                guarded_failure("threads", exc)
        if task is None:
            return wrapped(*args, **kwargs)  # no task (submit's own error) or a failure
        return wrapped(task, *args[1:], **kwargs)

    return submit


_submit = carrying_submit(_in_thread)


def _add_done_callback(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``Future.add_done_callback``: its callback (``fn``) runs in the adder's state, as it is."""
    if not args and len(kwargs) == 1 and "fn" in kwargs:  # given by name
        args, kwargs = (kwargs["fn"],), {}
    if args:
        try:
            callback = _InSubmittersState(args[0], otel_context.get_current(), current_values())
        except Exception as exc:  # handed over as it is
            guarded_failure("threads", exc)
        else:
            return wrapped(callback, *args[1:], **kwargs)
    return wrapped(*args, **kwargs)


class _Submitting:
    """A pool's task queue as its submitting methods see it: each ``(tasks, set_length)`` they put
    carries their state (``carry``). Anything else is the queue's own."""

    __slots__ = ("carry", "queue")

    def __init__(self, queue: Any, carry: Carrier) -> None:
        self.queue, self.carry = queue, carry

    def put(self, item: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            if type(item) is tuple and len(item) == 2:
                tasks, set_length, wrap = *item, self.carry()
                item = ([_task(task, wrap) for task in tasks] if type(tasks) is list
                        else _tasks(tasks, wrap), set_length)
        except Exception as exc:  # handed over as it is
            guarded_failure("threads", exc)
        return self.queue.put(item, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)


def _task(task: Any, wrap: Callable[[Any], Any]) -> Any:
    """A pool task, ``(job, index, fn, args, kwargs)``, with ``fn`` wrapped by ``wrap``."""
    if type(task) is tuple and len(task) == 5:
        return (task[0], task[1], wrap(task[2]), task[3], task[4])
    return task


def _tasks(tasks: Iterable[Any], wrap: Callable[[Any], Any]) -> Iterator[Any]:
    """The tasks of a ``map`` or ``imap``, made lazily on the pool's task-handler thread."""
    for task in tasks:
        try:
            task = _task(task, wrap)
        except Exception as exc:  # handed over as it is: the pool's task-handler thread must not die
            guarded_failure("threads", exc)
        yield task


def _task_queue(carry: Carrier) -> property:
    """``_taskqueue`` of a pool class while installed: the pool's queue, seen through ``_Submitting``
    once the pool is built (its handler threads, given the queue while it is built, get it bare)."""

    def get(pool: Any) -> Any:
        try:
            queue = pool.__dict__["_taskqueue"]
        except KeyError:
            raise AttributeError("_taskqueue") from None
        return queue if pool.__dict__.get("_state") == "INIT" else _Submitting(queue, carry)  # multiprocessing.pool.INIT

    def set_(pool: Any, queue: Any) -> None:
        pool.__dict__["_taskqueue"] = queue

    return property(get, set_)


#: Set on ``ThreadPool`` and on ``Pool`` (process pools) while installed; a pool made before keeps
#: its queue where they find it.
_TASK_QUEUES = {"ThreadPool": _task_queue(_in_thread), "Pool": _task_queue(processes.carrier)}


def _callbacks_wrapper(pool_class: type) -> Any:
    """``ApplyResult.__init__`` (``MapResult``'s too), on the submitter's thread: the callbacks of a
    ``pool_class`` submission (a thread or process pool's: they run on its result-handler thread, in
    this process) run in the submitter's state."""

    def result(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        wrapped(*args, **kwargs)
        try:
            callback, error_callback = instance._callback, instance._error_callback
            if (callback or error_callback) and isinstance(instance._pool, pool_class):
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
    """Patches ``ThreadPoolExecutor.submit``, ``Future.add_done_callback`` and, once imported,
    ``ProcessPoolExecutor.submit``, the task queue of ``ThreadPool`` and ``Pool`` and
    ``ApplyResult.__init__`` (for their callbacks)."""

    name = "threads"
    module = "concurrent.futures.thread"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pools_wanted = False
        self._pending: set[str] = set()  # the modules whose import hook is registered, not run yet
        self._pool_classes: list[type] = []  # those given ``_TASK_QUEUES``' property
        self._executor_patched = False
        self._fork_hooked = False  # ``_in_started_process`` registered (once per process; forks inherit it)

    def check(self) -> str | None:
        return None  # the standard library's

    def _instrument(self) -> None:
        self.patcher.wrap("concurrent.futures.thread", "ThreadPoolExecutor.submit", _submit, expects=("fn",))
        self.patcher.wrap("concurrent.futures._base", "Future.add_done_callback", _add_done_callback, expects=("fn",))
        hooks = {_POOLS: self._patch_pools, _PROCESS_POOL_EXECUTOR: self._patch_executor}
        with self._lock:  # at once if imported already; a pending one (an earlier install's) patches at the import
            self._pools_wanted = True
            hook_forks, self._fork_hooked = not self._fork_hooked, True
            wanted = [name for name in hooks if name not in self._pending]
            self._pending.update(hooks)
        if hook_forks:
            wrapt.register_post_import_hook(self._hook_forks, _UTIL)
        for name in wanted:
            wrapt.register_post_import_hook(hooks[name], name)

    def _patch_executor(self, module: Any) -> None:
        """Run in the application's import of ``concurrent.futures.process``: never raises into it."""
        with self._lock:
            self._pending.discard(_PROCESS_POOL_EXECUTOR)
            if not self._pools_wanted or self._executor_patched:
                return
            try:
                self._executor_patched = self.patcher.wrap(_PROCESS_POOL_EXECUTOR, "ProcessPoolExecutor.submit",
                                                           carrying_submit(processes.carrier), expects=("fn",))
            except Exception as exc:
                guarded_failure("threads", exc)

    def _patch_pools(self, module: Any) -> None:
        """Run in the application's import of ``multiprocessing.pool``: never raises into it."""
        with self._lock:
            self._pending.discard(_POOLS)
            if not self._pools_wanted or self._pool_classes:
                return
            try:
                classes = [getattr(module, name) for name in _TASK_QUEUES]
                for name, pool_class in zip(_TASK_QUEUES, classes, strict=True):
                    if "_taskqueue" in pool_class.__dict__:  # not the queue this knows: left alone
                        self.patcher._skipped(_POOLS, f"{name}._taskqueue", "already replaced")
                        return
                self.patcher.wrap_object(module.ApplyResult, "__init__", _callbacks_wrapper(module.Pool))
                for name, pool_class in zip(_TASK_QUEUES, classes, strict=True):
                    pool_class._taskqueue = _TASK_QUEUES[name]
                    self._pool_classes.append(pool_class)
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
            self._pools_wanted = self._executor_patched = False
            pool_classes, self._pool_classes = self._pool_classes, []
            for name, pool_class in zip(_TASK_QUEUES, pool_classes, strict=False):
                if pool_class.__dict__.get("_taskqueue") is _TASK_QUEUES[name]:
                    del pool_class._taskqueue
                else:  # replaced since by someone else: theirs stays
                    count("integration_patch_kept.threads")


INTEGRATION = ThreadsIntegration()
