"""Runs of the LangChain callback handler that LangChain starts and never ends, because the work
they belong to was interrupted: ended here, as interrupted (WARNING), so none is left open or
current where the caller goes on.

- A run whose start LangChain cancels while awaiting its other handlers (an ``astream_events``
  left early cancels the task running the chain): swept once that task is done.
- A run whose awaited start itself raised (a timeout the caller handles): ended at once.
- A chat model's or retriever's run whose async call was cancelled (``asyncio.wait_for``, a stream
  or ``astream_events`` left early): LangChain awaits the model in a ``gather`` the cancellation
  leaves, and a retriever catches only ``Exception``, so neither reports an end: ended as the
  cancellation leaves the call (``ended_if_cancelled``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from uuid import UUID

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace

from .._internal import guarded_failure
from .base import Patcher

#: async calls that report no end for their run when cancelled, wrapped once the application imports them
_CANCELLABLE = (("langchain_core.language_models.chat_models", "BaseChatModel.agenerate"),
                ("langchain_core.retrievers", "BaseRetriever.ainvoke"))

#: the runs started in the async model call or retrieval running in this context (``ended_if_cancelled``)
_STARTED: ContextVar[list[UUID] | None] = ContextVar("autotrace_langchain_started", default=None)


def note_started(run_id: UUID) -> None:
    """Note a model's or retriever's run as started in the async call running here, if any."""
    started = _STARTED.get()
    if started is not None:
        started.append(run_id)


async def ended_if_cancelled(integration: Any, call: Awaitable[Any]) -> Any:
    """Await ``call`` (``BaseChatModel.agenerate``, ``BaseRetriever.ainvoke``) as it is; if it is
    cancelled or otherwise interrupted (not an ``Exception``), the runs it started that LangChain left
    open end, as interrupted. ``integration.handler`` is read then: it may be gone."""
    started: list[UUID] = []
    token = _STARTED.set(started)
    try:
        return await call
    except BaseException as error:  # raised as it would be without autotrace
        handler = integration.handler
        if started and handler is not None and not isinstance(error, Exception):
            handler._guard("call_interrupted", handler.call_interrupted, started, error)
        raise
    finally:
        try:
            _STARTED.reset(token)
        except ValueError as exc:  # another context than it was set in: left as it is
            guarded_failure("langchain.started_reset", exc)


class CancellablePatches:
    """``ended_if_cancelled`` around each of ``_CANCELLABLE``, from when its module is imported
    (importing LangChain's retrievers at start-up would cost every application over 100 ms)."""

    def __init__(self, patcher: Patcher, integration: Any) -> None:
        self.patcher = patcher
        self.integration = integration
        self.generation = 0  # moves on at each ``apply`` and ``remove``: an earlier hook does nothing

    def apply(self) -> None:
        self.generation += 1
        for module, target in _CANCELLABLE:
            wrapt.register_post_import_hook(functools.partial(self._imported, self.generation, target), module)

    def remove(self) -> None:
        self.generation += 1

    def _imported(self, generation: int, target: str, module: Any) -> None:
        if generation == self.generation:
            try:
                self.patcher.wrap(module.__name__, target, self._wrapper)
            except Exception as exc:  # a changed library: the rest stays traced
                guarded_failure("langchain.cancellable_patch", exc)

    def _wrapper(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return ended_if_cancelled(self.integration, wrapped(*args, **kwargs))


class InterruptedRuns:
    """What the handler does for runs an interruption left without an end."""

    runs: dict[UUID, Any]  # run id -> ``langchain._Run``
    _sweeps: set[tuple[asyncio.Task[Any], int]]  # (task, trace id) swept when the task ends

    if TYPE_CHECKING:  # the handler's
        def _end(self, run_id: UUID, error: BaseException | str | None = None, **fields: Any) -> None: ...

        def _guard(self, where: str, fn: Any, *args: Any, **kwargs: Any) -> None: ...

    def _sweep_at_task_end(self, trace_id: int, error: BaseException) -> None:
        """A run whose start LangChain cancels while awaiting its other handlers is started here and
        never ended (an ``astream_events`` left early cancels the task running the chain so). Once
        the task the interruption happened in is done, no callback of it is left to come: then the
        runs of that trace still open after their parent ended are ended, as interrupted."""
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no event loop in this thread: no start callback is awaited
            return
        if task is None or task.done() or (task, trace_id) in self._sweeps:
            return
        self._sweeps.add((task, trace_id))
        task.add_done_callback(functools.partial(self._guard, "sweep", self._task_done, trace_id, error))

    def _task_done(self, trace_id: int, error: BaseException, task: asyncio.Task[Any]) -> None:
        self._sweeps.discard((task, trace_id))
        # one loop turn later: async generators the task dropped are closed first (their finalizers
        # are queued by now), and LangChain ends their runs itself, with what they had streamed
        task.get_loop().call_soon(self._guard, "sweep", self._sweep, trace_id, error)

    def _sweep(self, trace_id: int, error: BaseException) -> None:
        for run_id, run in list(self.runs.items()):  # parents first: ending one orphans its children
            parent_run_id = run.parent_run_id
            # a model that has streamed waits at a yield: closing its stream ends it, with its reply
            if (parent_run_id is not None and parent_run_id not in self.runs
                    and run.obs.span.get_span_context().trace_id == trace_id
                    and "completion_start_time" not in run.obs.fields):
                self._end(run_id, error)

    def call_interrupted(self, started: list[UUID], error: BaseException) -> None:
        """End the runs of a cancelled async model call or retrieval that are still open."""
        for run_id in started:
            if run_id in self.runs:
                self._end(run_id, error)

    def start_interrupted(self, error: BaseException, parent_run_id: UUID | None, since_ns: int) -> None:
        """An awaited start raised (a timeout cancelled it while another handler ran, in a thread or
        awaited): LangChain got no run manager, so the runs this handler started in it get no end, and
        stay current where the start ran, whatever goes on there (the caller handling the timeout).
        Those runs (current in this very context, started during the call, not its parent) end now."""
        for _ in range(len(self.runs)):  # one run a prompt
            context = otel_context.get_current()
            span = trace.get_current_span(context)
            found = next(((run_id, run) for run_id, run in reversed(self.runs.items()) if run.obs.span is span), None)
            if (found is None or found[1].attached is not context or found[0] == parent_run_id
                    or (getattr(span, "start_time", None) or 0) < since_ns):
                return
            self._end(found[0], error)
