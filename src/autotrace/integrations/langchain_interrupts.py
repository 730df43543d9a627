"""Runs of the LangChain callback handler that LangChain starts and never ends, because the work
they belong to was interrupted: ended here, as interrupted (WARNING), so none is left open or
current where the caller goes on.

- A run whose start LangChain cancels while awaiting its other handlers (an ``astream_events``
  left early cancels the task running the chain): swept once that task is done.
- A run whose awaited start itself raised (a timeout the caller handles): ended at once.
- A run an event of which a handler with ``raise_error`` raised from (sync: LangChain calls handlers
  in turn and stops at the one that raises, then reports nothing more of the run): started here
  before it raised, or not ended because it raised first (``event_raised``).
- A chat model's or retriever's run whose async call was cancelled (``asyncio.wait_for``, a stream
  or ``astream_events`` left early): LangChain awaits the model in a ``gather`` the cancellation
  leaves, and a retriever catches only ``Exception``, so neither reports an end: ended as the
  cancellation leaves the call (``ended_if_cancelled``). A sync retrieval interrupted so (Ctrl-C
  in a notebook) too, which would stay current where the caller goes on.

LangGraph cancels a graph's running tasks with a private object as the message (an async graph
ended by a ``step_timeout``, a cancelled caller, a failed branch): recorded as a plain
``CancelledError``, not with that object's address (``langchain_graph.plain_cancellation``).
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from uuid import UUID

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace

from .._internal import guarded_failure
from ..observation import STREAM_CLOSED, describe_error
from . import langchain_graph_writes as lgw
from .base import Patcher
from .langchain_graph import CACHED, TIMED, cached_writes, plain_cancellation, timed_attempt
from .langchain_graph_policy import SPLIT, with_tracers

#: calls that report no end for their run when interrupted, wrapped once the application imports them:
#: (module, target, whether the call is awaited)
_CANCELLABLE = (("langchain_core.language_models.chat_models", "BaseChatModel.agenerate", True),
                ("langchain_core.retrievers", "BaseRetriever.ainvoke", True),
                ("langchain_core.retrievers", "BaseRetriever.invoke", False))

#: a run's events after which LangChain reports nothing more of it if one raises (``event_raised``)
_RUN_EVENTS = ("_start", "_end", "_error")
_RUN_ENDS = _RUN_EVENTS[1:]

#: traces a task that goes on after interruptions keeps to sweep at its end, the oldest forgotten first
_MAX_SWEPT_TRACES = 1_000

#: the handlers LangChain told an LLM's start, in the ``all_told`` running here
_TOLD: ContextVar[list[Any] | None] = ContextVar("autotrace_langchain_told", default=None)

#: the runs started in the model call or retrieval running in this context (``_ended_if_interrupted``,
#: ``langchain_runs.generate_ended``)
STARTED: ContextVar[list[UUID] | None] = ContextVar("autotrace_langchain_started", default=None)


def _others_first(handler: Any, args: Any, in_order: bool) -> list[Any] | None:
    """The handlers of the event ``args`` (``handle_event``'s arguments) without ``handler``, if it is
    a run's end (or failure) told to ``handler`` and to another handler that may raise (``raise_error``)
    after it: ``handler`` is then told last, so that the run ends failed whatever the handlers' order
    (a step's own handlers come after the ones it inherits). ``in_order``: handlers are told in their
    list's order (sync); async ones are told after every inline one, as autotrace's is."""
    handlers = args[0] if len(args) > 1 else None
    if (handler is None or type(handlers) is not list or len(handlers) < 2 or (in_order and handlers[-1] is handler)
            or not isinstance(args[1], str) or not args[1].endswith(_RUN_ENDS)):
        return None
    if not any(other is handler for other in handlers):
        return None
    others = [other for other in handlers if other is not handler]
    return others if any(_may_raise(other) for other in others) else None


def _may_raise(handler: Any) -> bool:
    """Whether LangChain raises what ``handler`` raises from an event: its ``raise_error``, read only
    then; one that raises when read (a property) makes that event raise too."""
    try:
        return bool(getattr(handler, "raise_error", False))
    except Exception:
        return True


def raising_event(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """LangChain's sync ``handle_event`` as it is, autotrace's handler told a run's end last
    (``_others_first``); if a handler raised from it, the run whose event it was is ended
    (``InterruptedRuns.event_raised``). ``integration.handler`` is read then."""
    handler = integration.handler
    others = _others_first(handler, args, True)
    try:
        return wrapped(*([*others, handler], *args[1:]) if others is not None else args, **kwargs)
    except BaseException as error:  # raised as it would be without autotrace
        handler = integration.handler
        if handler is not None and len(args) > 1:
            handler._guard("event_raised", handler.event_raised, args, kwargs, error)
        raise


def raising_aevent(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """LangChain's ``ahandle_event`` as it is, autotrace's handler told a run's end after the others
    (``_others_first``), and only if none raised: else the run ends as ``raising_event`` ends it."""
    told = _TOLD.get()
    if told is not None and args:  # an LLM's start (``all_told``)
        told.extend(args[0])
    handler = integration.handler
    others = _others_first(handler, args, False)
    if others is None:
        return wrapped(*args, **kwargs)
    run = handler.runs.get(kwargs.get("run_id"))
    if run is not None:  # LangChain shields a run's end from a cancelled caller: it may be interrupted first
        run.told = (args[1], args[3:], kwargs)
    return _others_then(integration, wrapped(others, *args[1:], **kwargs), args, kwargs)


async def _others_then(integration: Any, others: Awaitable[Any], args: Any, kwargs: dict[str, Any]) -> None:
    """Await the other handlers' event (``others``), then tell autotrace's handler ``args``. If the
    caller is cancelled while they are told (a timeout during a slow handler), the run has ended all
    the same: it is told as it was (a model's reply and usage kept), as it would be told first
    (``InterruptedRuns.ended_as_told``, if the interruption reaches the run before)."""
    try:
        await others
    except Exception as error:  # raised as it would be without autotrace
        handler = integration.handler
        if handler is not None:
            handler._guard("event_raised", handler.event_raised, args, kwargs, error)
        raise
    except BaseException:
        _told(integration, args, kwargs)
        raise
    _told(integration, args, kwargs)


def _told(integration: Any, args: Any, kwargs: dict[str, Any]) -> None:
    """Tell autotrace's handler, if any, the event ``args`` (``ahandle_event``'s arguments)."""
    handler = integration.handler
    if handler is not None:
        handler._guard("event_told", getattr(handler, args[1]), *args[3:], **kwargs)


async def all_told(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``AsyncCallbackManager.on_llm_start`` as it is; then, if it told autotrace's handler (inline)
    and no handler LangChain runs off the event loop (``run_inline`` False), those are told the
    prompts' starts, as LangChain tells them without autotrace's (its own skips them if any handler
    is inline): else an application's handler would see an LLM's ends and errors, not its starts."""
    told: list[Any] = []
    token = _TOLD.set(told)
    try:
        managers = await wrapped(*args, **kwargs)
    finally:
        _TOLD.reset(token)
    told_later = _skipped_starts(integration, instance, args, kwargs, told, managers)
    if told_later:  # (a handler of the application's raising here raises as LangChain's telling it would)
        from langchain_core.callbacks import manager as lcm

        skipped, serialized, rest, starts = told_later
        await asyncio.gather(*(lcm.ahandle_event(skipped, "on_llm_start", "ignore_llm", serialized, [prompt],
                                                 run_id=run_id, parent_run_id=instance.parent_run_id,
                                                 tags=instance.tags, metadata=instance.metadata, **rest)
                               for prompt, run_id in starts))
    return managers


def _skipped_starts(integration: Any, instance: Any, args: Any, kwargs: dict[str, Any], told: list[Any],
                    managers: Any) -> tuple[list[Any], Any, dict[str, Any], list[tuple[Any, Any]]] | None:
    """For ``all_told``: the non-inline handlers LangChain skipped, the event's ``serialized`` and other
    arguments, and each prompt with its run id; None if none was skipped or autotrace's handler was not
    told (then LangChain skips no one). Never raises."""
    try:
        skipped = [h for h in instance.handlers if not h.run_inline and not any(h is seen for seen in told)]
        if not skipped or not any(h is integration.handler for h in told):
            return None
        named = dict(zip(("serialized", "prompts", "run_id"), args, strict=False)) | kwargs
        rest = {key: value for key, value in named.items() if key not in ("serialized", "prompts", "run_id")}
        starts = [(prompt, run.run_id) for prompt, run in zip(named.get("prompts") or (), managers, strict=False)]
        return skipped, named.get("serialized"), rest, starts
    except Exception as exc:
        guarded_failure("langchain.llm_start_told", exc)
        return None


def note_started(run_id: UUID) -> None:
    """Note a model's or retriever's run as started in the call (``_CANCELLABLE``) running here, if any."""
    started = STARTED.get()
    if started is not None:
        started.append(run_id)


class Collecting:
    """A block whose model and retriever runs started are collected (``note_started``): ``with
    Collecting() as started:``; the collecting list set before is back after it."""

    __slots__ = ("started", "token")

    def __enter__(self) -> list[UUID]:
        self.started: list[UUID] = []
        self.token = STARTED.set(self.started)
        return self.started

    def __exit__(self, *exc_info: object) -> None:
        try:
            STARTED.reset(self.token)
        except ValueError as exc:  # another context than it was set in: left as it is
            guarded_failure("langchain.started_reset", exc)


@contextmanager
def _ended_if_interrupted(integration: Any) -> Iterator[None]:
    """Run a call (``_CANCELLABLE``) as it is; if it is cancelled or otherwise interrupted (not an
    ``Exception``), the runs it started that LangChain left open end, as interrupted.
    ``integration.handler`` is read then: it may be gone."""
    with Collecting() as started:
        try:
            yield
        except BaseException as error:  # raised as it would be without autotrace
            handler = integration.handler
            if started and handler is not None and not isinstance(error, Exception):
                handler._guard("call_interrupted", handler.call_interrupted, started, error)
            raise


async def ended_if_cancelled(integration: Any, call: Awaitable[Any]) -> Any:
    """Await ``call`` (``BaseChatModel.agenerate``, ``BaseRetriever.ainvoke``) as it is; if it is
    interrupted, the runs it started that LangChain left open end (``_ended_if_interrupted``)."""
    with _ended_if_interrupted(integration):
        return await call


class CancellablePatches:
    """``_ended_if_interrupted`` around each of ``_CANCELLABLE``, from when its module is imported
    (importing LangChain's retrievers at start-up would cost every application over 100 ms); so is
    LangGraph's split of a run's tracers from its other handlers, if it has one (``langchain_graph_policy``),
    its merge of a graph run's runtime, which makes its writer (``langchain_graph_writes``), its run
    of a node attempt with a ``timeout`` (``langchain_graph.timed_attempt``), and its writes of a task
    its cache answered (``langchain_graph.cached_writes``). ``more``: other such patches, (module,
    target, wrapper called with ``integration`` first), e.g. ``langchain_runs.LLM_GENERATE``."""

    def __init__(self, patcher: Patcher, integration: Any, more: tuple[tuple[str, str, Any], ...] = ()) -> None:
        self.patcher = patcher
        self.integration = integration
        self.more = more
        self.generation = 0  # moves on at each ``apply`` and ``remove``: an earlier retry does nothing
        self.applied = False  # between ``apply`` and ``remove``: an import hook patches only then
        #: Modules whose hook waits in wrapt's registry for their first import: one each, however many
        #: times the patches are applied and removed before it (wrapt keeps each until then).
        self.hooked: set[str] = set()
        self.waiting: list[Any] = []  # patches of a module not done importing when it was patched

    def _patches(self) -> Iterator[tuple[str, str, Any, bool]]:
        """(module, target, wrapper, whether the target may be missing) of each patch."""
        for module, target, awaited in _CANCELLABLE:
            yield module, target, self._wrapper if awaited else self._sync_wrapper, False
        langgraph = ((SPLIT, with_tracers), (lgw.MERGE, lgw.recording_merge), (lgw.START, lgw.withheld_at_start),
                     (lgw.ASTART, lgw.withheld_at_astart), (TIMED, timed_attempt), (CACHED, cached_writes))
        more = (((module, target), wrapper) for module, target, wrapper in self.more)
        for (module, target), wrapper in (*langgraph, *more):  # LangGraph's, if it has them
            yield module, target, functools.partial(wrapper, self.integration), True

    def apply(self) -> None:
        self.generation += 1
        self.applied = True
        self.waiting.clear()
        for module in dict.fromkeys(module for module, *_ in self._patches()):
            if module in self.hooked and module not in sys.modules:
                continue  # its hook, still waiting, patches it
            self.hooked.add(module)
            wrapt.register_post_import_hook(functools.partial(self._module_imported, module), module)

    def remove(self) -> None:
        self.generation += 1
        self.applied = False
        self.waiting.clear()

    def _module_imported(self, name: str, module: Any) -> None:
        """The import hook of the module ``name``: its patches, if applied then."""
        self.hooked.discard(name)
        if self.applied:
            for patched, target, wrapper, optional in self._patches():
                if patched == name:
                    self._imported(self.generation, target, wrapper, optional, module)

    def _imported(self, generation: int, target: str, wrapper: Any, optional: bool, module: Any) -> None:
        if generation != self.generation:
            return
        if getattr(module.__spec__, "_initializing", False) and not hasattr(module, target.split(".")[0]):
            # it imports LangChain before it defines ``target`` (the application imported it first):
            # patched at the next chain run's start, by when it is done (``patch_waiting``)
            self.waiting.append(functools.partial(self._imported, generation, target, wrapper, optional, module))
            return
        try:
            self.patcher.wrap(module.__name__, target, wrapper, optional)
        except Exception as exc:  # a changed library: the rest stays traced
            guarded_failure("langchain.cancellable_patch", exc)

    def patch_waiting(self) -> None:
        """Apply the patches waiting for their module's import to end (each taken once by one thread)."""
        for _ in range(len(self.waiting)):
            try:
                retry = self.waiting.pop(0)
            except IndexError:  # another thread took it
                return
            retry()

    def _wrapper(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return ended_if_cancelled(self.integration, wrapped(*args, **kwargs))

    def _sync_wrapper(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        with _ended_if_interrupted(self.integration):
            return wrapped(*args, **kwargs)


class InterruptedRuns:
    """What the handler does for runs an interruption left without an end."""

    runs: dict[UUID, Any]  # run id -> ``langchain_runs.Run``
    _sweeps: dict[asyncio.Task[Any], dict[int, str]]  # task -> trace id -> what interrupted it, swept at its end

    if TYPE_CHECKING:  # the handler's
        def _end(self, run_id: UUID, error: BaseException | str | None = None, **fields: Any) -> None: ...

        def _guard(self, where: str, fn: Any, *args: Any, **kwargs: Any) -> None: ...

    def _sweep_at_task_end(self, trace_id: int, error: BaseException) -> None:
        """A run whose start LangChain cancels while awaiting its other handlers is started here and
        never ended (an ``astream_events`` left early cancels the task running the chain so). Once
        the task the interruption happened in is done, no callback of it is left to come: then the
        runs of that trace still open after their parent ended are ended, as interrupted. A task
        that goes on (a server's, timing out call after call) holds one callback and the last
        ``_MAX_SWEPT_TRACES`` traces with what interrupted them as text: not the exception, whose
        traceback holds the interrupted calls' frames."""
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no event loop in this thread: no start callback is awaited
            return
        if task is None or task.done():
            return
        traces = self._sweeps.get(task)
        if traces is None:
            traces = self._sweeps[task] = {}
            task.add_done_callback(functools.partial(self._guard, "sweep", self._task_done))
        # as ``_end`` marks it: a stream its reader closed is interrupted as any stream
        traces[trace_id] = STREAM_CLOSED if isinstance(error, GeneratorExit) else describe_error(error)
        if len(traces) > _MAX_SWEPT_TRACES:
            del traces[next(iter(traces))]

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        traces = self._sweeps.pop(task, None)
        # one loop turn later: async generators the task dropped are closed first (their finalizers
        # are queued by now), and LangChain ends their runs itself, with what they had streamed
        if traces:
            task.get_loop().call_soon(self._guard, "sweep", self._sweep, traces)

    def _sweep(self, traces: dict[int, str]) -> None:
        for run_id, run in list(self.runs.items()):  # parents first: ending one orphans its children
            parent_run_id = run.parent_run_id
            interrupted = traces.get(run.obs.span.get_span_context().trace_id)
            # a model that has streamed waits at a yield: closing its stream ends it, with its reply
            if (interrupted is not None and parent_run_id is not None and parent_run_id not in self.runs
                    and "completion_start_time" not in run.obs.fields and not self.ended_as_told(run_id)):
                self._end(run_id, level="WARNING", status_message=interrupted)

    def ended_as_told(self, run_id: UUID) -> bool:
        """Whether the run, whose end was told while other handlers are told it first (``raising_aevent``),
        is ended as told: an interruption of its caller then comes after its end."""
        run = self.runs.get(run_id)
        told = run.told if run is not None else None
        if told is None:
            return False
        run.told = None
        getattr(self, told[0])(*told[1], **told[2])
        return True

    def event_raised(self, args: Any, kwargs: dict[str, Any], error: BaseException) -> None:
        """A handler raised ``error`` from the sync event ``args[1]`` (``handle_event``'s arguments) of
        the run ``kwargs["run_id"]``, and the caller gets it. Called after that handler, this one was
        not told the run's end (or failure): the run ends as told, marked failed with ``error``. Called
        before it, this one started a run that never runs: it fails with ``error``."""
        handlers, event = args[0], args[1]
        run = self.runs.get(kwargs.get("run_id"))  # type: ignore[arg-type]
        if run is None or not isinstance(event, str) or not event.endswith(_RUN_EVENTS) or self not in handlers:
            return
        if not isinstance(error, Exception):  # interrupted (Ctrl-C in a handler): as any interruption
            self._end(kwargs["run_id"], error)
            return
        run.handled = describe_error(error)
        if not event.endswith("_start"):
            getattr(self, event)(*args[3:], **kwargs)
        if kwargs["run_id"] in self.runs:
            self._end(kwargs["run_id"], run.handled)

    def call_interrupted(self, started: list[UUID], error: BaseException) -> None:
        """End the runs of a cancelled async model call or retrieval that are still open."""
        error = plain_cancellation(error)
        for run_id in started:
            if run_id in self.runs and not self.ended_as_told(run_id):
                self._end(run_id, error)

    def start_interrupted(self, error: BaseException, parent_run_id: UUID | None, since_ns: int) -> None:
        """An awaited start raised (a timeout cancelled it while another handler ran, in a thread or
        awaited): LangChain got no run manager, so the runs this handler started in it get no end, and
        stay current where the start ran, whatever goes on there (the caller handling the timeout).
        Those runs (current in this very context, started during the call, not its parent) end now."""
        for _ in range(len(self.runs)):  # one run a prompt
            context = otel_context.get_current()
            span = trace.get_current_span(context)
            found = next(((run_id, run) for run_id, run in reversed(list(self.runs.items())) if run.obs.span is span), None)
            if (found is None or found[1].attached is not context or found[0] == parent_run_id
                    or (getattr(span, "start_time", None) or 0) < since_ns):
                return
            self._end(found[0], error)
