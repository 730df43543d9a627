"""A LangChain run while it is live (``Run``), and how the context it made current is changed to
show its parent once it ends (``show_in_place``): LangChain ends async runs in a copy of the
context they started in, where an attach cannot be undone."""

from __future__ import annotations

import weakref
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


class Run:
    """A live run. LangChain ends async runs in a copy of the context they started in (and a
    stream's consumer runs in its start context), where the attach cannot be undone; so the
    context made current is kept, and when the run releases it, it is changed in place to show
    ``outer`` (the run's parent span current), then handed to the parent run to do the same."""

    __slots__ = ("attached", "fallen", "graph", "handled", "in_graph", "obs", "outer", "parent_run_id",
                 "session", "tags", "token", "trace_tags", "writes")

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
