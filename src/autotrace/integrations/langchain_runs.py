"""A LangChain run while it is live (``Run``), how the context it made current is changed to
show its parent once it ends (``show_in_place``): LangChain ends async runs in a copy of the
context they started in, where an attach cannot be undone; a chat model's run current while
it generates (``generating``); and the runs of a ``generate`` that raised which LangChain left open
(``generate_ended``, an LLM's ``agenerate_ended``)."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

from .._internal import count, guarded_failure
from ..observation import Observation, describe_error, make_current, restore_context
from .langchain_graph_writes import Writes
from .langchain_interrupts import STARTED, Collecting


def show_in_place(context: Context, outer: Context) -> None:
    """Make ``context`` hold what ``outer`` holds, in place, for every task or thread it is current
    in. OTel's ``Context`` refuses changes through its own methods; only contexts that a run made
    current are changed so."""
    dict.update(context, outer)
    for key in context.keys() - outer.keys():
        dict.__delitem__(context, key)


#: LangChain's name for a ``RunnableWithFallbacks`` run (unless the caller names the run)
FALLBACKS = "RunnableWithFallbacks"


def inside_steps(runs: Mapping[UUID, Run], config: Any, parent_run_id: UUID, name: str) -> UUID:
    """The parent of a run ``name`` told ``parent_run_id`` that starts in the context LangChain made
    for the steps of a ``FALLBACKS`` run (``config``: LangChain's config of that context): that run, if
    it is inside ``parent_run_id``. langchain-core 1.x's ``RunnableWithFallbacks.invoke``/``ainvoke`` run
    each runnable in that context with the config they were given, which tells their own parent (the
    outer fallbacks' parent, when fallbacks nest) and their own ``run_name`` (a renamed fallbacks run's
    runnables are told its name, by which it is known then). A LangGraph node's function gets its
    node's config so too: what it runs is told the node, and kept there."""
    steps_id = getattr(config.get("callbacks"), "parent_run_id", None) if config else None
    run = runs.get(steps_id) if steps_id is not None and steps_id != parent_run_id else None
    while run is not None and run.obs.name in (FALLBACKS, name):
        if run.parent_run_id == parent_run_id:
            return steps_id  # type: ignore[return-value]
        run = runs.get(run.parent_run_id) if run.parent_run_id is not None else None
    return parent_run_id


def generating(handler: Any, run_manager: Any) -> object | None:
    """A chat model's run (``run_manager``'s) starts generating (``BaseChatModel._generate_with_cache``):
    its span made current if it is not (the token for ``restore_context``, else None). LangChain
    starts the run of every prompt of a ``generate`` before it generates any, in one context, where
    the last one started is current: what the first one generates (its OpenAI request) was the
    last one's. A root run generating has no batch sibling left to start (``_by_span``): a root run
    started inside it (a model it wraps, called with no callbacks) nests in it. Never raises."""
    try:
        run_id = getattr(run_manager, "run_id", None)
        run = handler.runs.get(run_id) if handler is not None and run_id is not None else None
        if run is None:
            return None
        handler._by_span.pop(run.obs.span.get_span_context().span_id, None)
        return make_current(run.obs) if trace.get_current_span() is not run.obs.span else None
    except Exception as exc:
        guarded_failure("langchain.generating", exc)
        return None


def _run_manager(args: Any, kwargs: dict[str, Any]) -> Any:
    return kwargs.get("run_manager", args[2] if len(args) > 2 else None)


def generate_in_run(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``BaseChatModel._generate_with_cache`` as it is, its run current (``generating``). In a sync
    batch, its reply is kept on its run until LangChain ends it (``generate_ended``)."""
    run_manager = _run_manager(args, kwargs)
    token = generating(integration.handler, run_manager)
    try:
        result = wrapped(*args, **kwargs)
    finally:
        restore_context(token)
    started = STARTED.get()
    if started is not None and len(started) > 1:
        handler = integration.handler
        run = handler.runs.get(getattr(run_manager, "run_id", None)) if handler is not None else None
        if run is not None:
            run.reply = result
    return result


#: the status of a run of a sync batch LangChain left open: it stops at a prompt that raises
BATCH_RAISED = "interrupted: another prompt of the batch raised {}"


def generate_ended(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``BaseChatModel.generate`` (or ``BaseLLM.generate``) as it is. If it raises, LangChain has ended
    the runs of the prompts it generated up to the one that raised (or whose handler raised), not the
    others', one of which is current in the caller's context: those end as interrupted (``BATCH_RAISED``),
    a chat model's reply generated kept, and the caller's context is again the one it called in."""
    before = otel_context.get_current()
    with Collecting() as started:
        try:
            return wrapped(*args, **kwargs)
        except BaseException as error:  # raised as it would be without autotrace
            handler = integration.handler
            if started and handler is not None:
                handler._guard("batch_raised", _batch_raised, handler, started, error)
            if otel_context.get_current() is not before:
                _current_again(before)
            raise


async def agenerate_ended(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``BaseLLM.agenerate`` as it is. If it raises, the runs it started that LangChain left open end:
    it starts the prompts' runs concurrently, and if one start raises (a handler's, ``raise_error``)
    it gets no run managers for the others (``BATCH_RAISED``); if it is cancelled, as a chat model's
    (``langchain_interrupts.call_interrupted``)."""
    with Collecting() as started:
        try:
            return await wrapped(*args, **kwargs)
        except BaseException as error:  # raised as it would be without autotrace
            handler = integration.handler
            if started and handler is not None:
                if isinstance(error, Exception):
                    handler._guard("batch_raised", _batch_raised, handler, started, error)
                else:
                    handler._guard("call_interrupted", handler.call_interrupted, started, error)
            raise


def _batch_raised(handler: Any, started: list[UUID], error: BaseException) -> None:
    """End the runs of ``started`` still open, the last started (the current one) first."""
    note = BATCH_RAISED.format(describe_error(error))
    for run_id in reversed(started):
        run = handler.runs.get(run_id)
        if run is None:
            continue
        run.obs.set_level("WARNING", note)
        response = _told_reply(run.reply) if run.reply is not None else None
        if response is None:
            handler._end(run_id)
        else:
            handler._end_model(run_id, response)
        count("langchain_batch_runs_interrupted")


def _told_reply(reply: Any) -> Any:
    """A prompt's reply (``ChatResult``) as LangChain tells it at a run's end, or None if it cannot be."""
    try:
        from langchain_core.outputs import LLMResult

        return LLMResult(generations=[reply.generations], llm_output=reply.llm_output)
    except Exception as exc:  # the run still ends, without its reply
        guarded_failure("langchain.batch_reply", exc)
        return None


def _current_again(context: Context) -> None:
    """Make ``context`` current again, for good: the caller's own, current before a call that raised."""
    try:
        otel_context.attach(context)
    except Exception as exc:
        guarded_failure("langchain.current_again", exc)


async def agenerate_in_run(integration: Any, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``BaseChatModel._agenerate_with_cache`` as it is, its run current (``generating``)."""
    token = generating(integration.handler, _run_manager(args, kwargs))
    try:
        return await wrapped(*args, **kwargs)
    finally:
        restore_context(token)


#: a completion model's (legacy LLM's) ``generate`` and ``agenerate``, patched once the application imports
#: them (``langchain_interrupts.CancellablePatches``): they start every prompt's run first, as a chat model does
LLM_GENERATE = (("langchain_core.language_models.llms", "BaseLLM.generate", generate_ended),
                ("langchain_core.language_models.llms", "BaseLLM.agenerate", agenerate_ended))


def patch_chat_runs(integration: Any, chat: str) -> None:
    """Patch ``BaseChatModel`` (of the module ``chat``): its run current while it generates
    (``generate_in_run``), and the runs a sync ``generate`` that raised left open ended (``generate_ended``)."""
    for target, wrapper in (("_generate_with_cache", generate_in_run), ("_agenerate_with_cache", agenerate_in_run)):
        integration.patcher.wrap(chat, f"BaseChatModel.{target}", functools.partial(wrapper, integration),
                                 optional=True, expects=("messages", "stop", "run_manager"))
    integration.patcher.wrap(chat, "BaseChatModel.generate", functools.partial(generate_ended, integration),
                             optional=True)


class Run:
    """A live run. LangChain ends async runs in a copy of the context they started in (and a
    stream's consumer runs in its start context), where the attach cannot be undone; so the
    context made current is kept, and when the run releases it, it is changed in place to show
    ``outer`` (the run's parent span current), then handed to the parent run to do the same."""

    __slots__ = ("attached", "fallen", "graph", "handled", "in_graph", "obs", "outer", "parent_run_id",
                 "prompt", "reply", "session", "tags", "task", "token", "told", "trace_tags", "writes")

    def __init__(self, obs: Observation, parent_run_id: UUID | None, outer: Context,
                 tags: list[str] | None = None, inside: bool = False) -> None:
        self.obs = obs
        self.in_graph = inside  # runs inside a LangGraph graph (``langchain_graph``)
        self.graph = False  # is a graph whose nodes have started
        #: a graph's node task: what it writes to its custom stream (``langchain_graph_writes``); None for others
        self.writes: Writes | None = None
        self.task: str | None = None  # a node task's checkpoint namespace, its task id last (``cached_node``)
        self.session: str | None = None  # its graph's thread, as its session (``langchain_graph``)
        self.tags = tags  # all its tags, its children inherit them
        self.trace_tags: tuple[str, ...] = ()  # the trace's tags its span carries, its children's too
        self.parent_run_id = parent_run_id  # only when the parent run is recorded
        self.outer = outer  # the context the run started in, its span key set
        self.token: object | None = None
        self.attached: Context | None = None  # the context made current, until released
        #: contexts of ended descendants now showing this run, forgotten once nothing holds them
        self.fallen: weakref.WeakValueDictionary[int, Context] | None = None
        self.handled: str | None = None  # a tool's error LangChain made its result (``tool_handled``)
        self.prompt: Any = None  # a Langfuse prompt left to the next generation inside it (``link_prompt``)
        self.reply: Any = None  # a sync batch's prompt's reply, until LangChain ends the run (``generate_ended``)
        #: its end (event name, arguments, keyword arguments), while it waits for other handlers (``raising_aevent``)
        self.told: tuple[str, Any, dict[str, Any]] | None = None
