"""A LangChain run while it is live (``Run``), and how the context it made current is changed to
show its parent once it ends (``show_in_place``): LangChain ends async runs in a copy of the
context they started in, where an attach cannot be undone."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from opentelemetry.context import Context

from ..observation import Observation
from .langchain_graph_writes import Writes


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


class Run:
    """A live run. LangChain ends async runs in a copy of the context they started in (and a
    stream's consumer runs in its start context), where the attach cannot be undone; so the
    context made current is kept, and when the run releases it, it is changed in place to show
    ``outer`` (the run's parent span current), then handed to the parent run to do the same."""

    __slots__ = ("attached", "fallen", "graph", "handled", "in_graph", "obs", "outer", "parent_run_id",
                 "prompt", "session", "tags", "token", "told", "trace_tags", "writes")

    def __init__(self, obs: Observation, parent_run_id: UUID | None, outer: Context,
                 tags: list[str] | None = None, inside: bool = False) -> None:
        self.obs = obs
        self.in_graph = inside  # runs inside a LangGraph graph (``langchain_graph``)
        self.graph = False  # is a graph whose nodes have started
        #: a graph's node task: what it writes to its custom stream (``langchain_graph_writes``); None for others
        self.writes: Writes | None = None
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
        #: its end (event name, arguments, keyword arguments), while it waits for other handlers (``raising_aevent``)
        self.told: tuple[str, Any, dict[str, Any]] | None = None
