"""LlamaIndex agents: which agent took each step of a run, its turns, and the tool calls it handles.

An agent (or agent workflow) runs a ``call_tool`` step per tool call the model asked for, and the
tool's own ``acall`` span starts under it: that tool observation records the call's id
(``metadata.tool_call_id``, as in the generation's ``tool_calls``). A step that ran no recorded
tool (a tool the model made up, or one whose ``acall`` LlamaIndex does not instrument) records
the call itself when it ends, with the result the agent gave the model (ERROR if it is an error).

In an ``AgentWorkflow`` (several agents), each agent's turn is an ``agent`` observation named
after it, under the run, holding its generations and tools: a turn starts with the first
``run_agent_step`` of an agent and ends when another agent steps (after a handoff) or the run
ends (as the run ended: its reply, error, cancellation). The workflow runs its steps one event
after another (``run_agent_step``, then its ``call_tool`` steps, whose results are gathered before
the next ``run_agent_step``), so the observations that start in between are that agent's.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from ... import recorder
from ...observation import Observation, ObservationType

_TURNS = itertools.count()
_OUTLIVED = "interrupted: its run ended before it"


class ToolStep:
    """A ``call_tool`` step still running: the call it handles, and where its tool belongs."""

    __slots__ = ("agent", "ancestor", "call", "cancelled", "ran", "start_ns")

    def __init__(self, call: Any, ancestor: str, agent: str | None) -> None:
        self.call, self.ancestor, self.agent = call, ancestor, agent
        self.start_ns, self.ran = time.time_ns(), False
        self.cancelled: str | None = None  # why the step was cancelled (it then returns None)


def multi_agent(instance: Any) -> bool:
    """Whether an agent observation's instance is an ``AgentWorkflow`` (runs agents in turns)."""
    return _is_agent_workflow(type(instance))


@functools.lru_cache(maxsize=64)
def _is_agent_workflow(cls: type) -> bool:
    return any(base.__name__ == "AgentWorkflow" for base in cls.__mro__)


class AgentSteps:
    """The agent half of the LlamaIndex tracker, which provides ``open`` (LlamaIndex span id ->
    open observation), ``_bound`` and ``_ended`` (records how a call ended on its observation)."""

    open: OrderedDict[str, tuple[Observation, Any]]
    agents: OrderedDict[str, str]  # a workflow run -> the agent that stepped last
    tool_steps: OrderedDict[str, ToolStep]  # a running ``call_tool`` step's span -> its call
    turns: OrderedDict[str, str | None]  # an AgentWorkflow's run -> the key (in ``open``) of its current turn
    _bound: Callable[[OrderedDict[Any, Any]], None]
    _ended: Callable[[Observation, Any, BaseException | None, Any], None]

    def _agent_step(self, id_: str, method: str, ancestor: str, arguments: dict[str, Any]) -> None:
        """Note what a skipped agent step means for the observations that follow it."""
        if method == "run_agent_step":
            self._agent_stepped(ancestor, arguments)
        elif method == "call_tool" and type(arguments.get("ev")).__name__ == "ToolCall":
            owner = (self.turns.get(ancestor) if self.turns else None) or ancestor
            self.tool_steps[id_] = ToolStep(arguments["ev"], owner, self.agents.get(ancestor))
            self._bound(self.tool_steps)

    def _agent_stepped(self, run_id: str, arguments: dict[str, Any]) -> None:
        """A multi-agent workflow's step ran one agent: the LLM calls and tool calls of the run that
        follow are that agent's (its tool calls run in steps of their own, after it, before any other
        agent steps)."""
        name = getattr(arguments.get("ev"), "current_agent_name", None)
        if isinstance(name, str):
            self.agents[run_id] = name
            self._bound(self.agents)
            if self.turns and run_id in self.turns:
                self._turn(run_id, name)

    def _turns_start(self, run_id: str) -> None:
        """An AgentWorkflow's run started: its agents' turns are recorded under it."""
        self.turns[run_id] = None
        self._bound(self.turns)

    def _turn(self, run_id: str, name: str) -> None:
        """Agent ``name`` steps in run ``run_id``: its turn goes on, or ends the other's and starts."""
        current = self.open.get(self.turns[run_id] or "")
        if current is not None and current[0].name == name:
            return
        self._turn_over(run_id, None, None)
        run = self.open.get(run_id)
        if run is None:
            return
        obs = recorder.start_with(ObservationType.AGENT, name, "llama_index.turn",
                                  parent=trace.set_span_in_context(run[0].span), metadata={"agent_name": name})
        key = f"{run_id}/turn-{next(_TURNS)}"
        self.open[key] = (obs, None)  # never current: its steps run in tasks of their own
        self._bound(self.open)
        self.turns[run_id] = key

    def _turn_over(self, run_id: str, result: Any, error: BaseException | None) -> None:
        """End run ``run_id``'s current turn, if any, with what ended it (the run's own ending)."""
        entry = self.open.pop(self.turns.get(run_id) or "", None)
        self.turns[run_id] = None
        if entry is None:
            return
        try:
            run = self.open.get(run_id)
            level = run[0].fields.get("level") if run is not None else None
            if error is None and level == "WARNING":  # the run cancelled by its caller
                entry[0].set_level("WARNING", run[0].fields.get("status_message"))  # type: ignore[index]
        finally:
            self._ended(entry[0], result, error, None)

    def _turns_end(self, run_id: str, result: Any, error: BaseException | None) -> None:
        """An AgentWorkflow's run ended: so does the turn of the agent that ran last."""
        try:
            self._turn_over(run_id, result, error)
        finally:
            del self.turns[run_id]

    def _steps_outlived(self, run_id: str, error: BaseException | None) -> None:
        """Run ``run_id`` ends with ``call_tool`` steps still running (a cancelled run exits before its
        steps are cancelled): the calls no tool ran end now, interrupted, while the run is open."""
        owners = {run_id, self.turns.get(run_id)} if self.turns else {run_id}
        # a copy: other threads' runs add and remove steps meanwhile (no lock: a step is one thread's)
        outlived = [(id_, step) for id_, step in list(self.tool_steps.items()) if step.ancestor in owners]
        if not outlived:
            return
        run = self.open[run_id][0].fields
        status = run.get("status_message") if run.get("level") == "WARNING" else None  # cancel_run()'s reason
        for id_, step in outlived:
            step.cancelled = step.cancelled or status or _OUTLIVED
            self._tool_step_done(id_, None, error)

    def _tool_started(self, parent_id: str | None, obs: Observation) -> None:
        """A tool observation starting under a ``call_tool`` step: it records the call's id."""
        step = self.tool_steps.get(parent_id) if parent_id is not None else None
        if step is not None:
            step.ran = True
            obs.update(metadata={"tool_call_id": getattr(step.call, "tool_id", None)})

    def _tool_step_done(self, id_: str, result: Any, error: BaseException | None) -> None:
        """A ``call_tool`` step ended: if it ran no recorded tool, record the call it handled (named
        after the tool the model asked for, with the arguments it gave); a step cancelled before its
        tool ran (with its run, e.g. while it looked its tools up) is interrupted: WARNING."""
        step = self.tool_steps.pop(id_, None)
        if step is None or step.ran or step.ancestor not in self.open:
            return
        call = step.call
        name = getattr(call, "tool_name", None)
        name = name if isinstance(name, str) and name else "unknown tool"
        obs = recorder.start(ObservationType.TOOL, name, start_time=step.start_ns,
                             parent=trace.set_span_in_context(self.open[step.ancestor][0].span))
        try:
            method = id_.split("-", 1)[0]  # the step's span name: ``AgentWorkflow.call_tool``
            obs.update(tool_name=name, arguments=getattr(call, "tool_kwargs", None),
                       metadata={"tool_call_id": getattr(call, "tool_id", None), "agent_name": step.agent,
                                 "method": method})
            if step.cancelled is not None and error is None:
                obs.set_level("WARNING", step.cancelled)
        finally:  # fields that cannot be recorded still end it
            self._ended(obs, getattr(result, "tool_output", None), error, None)
