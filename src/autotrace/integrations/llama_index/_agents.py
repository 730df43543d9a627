"""LlamaIndex agents: which agent took each step of a run, and the tool calls their steps handle.

An agent (or agent workflow) runs a ``call_tool`` step per tool call the model asked for, and the
tool's own ``acall`` span starts under it: that tool observation records the call's id
(``metadata.tool_call_id``, as in the generation's ``tool_calls``). A step that ran no recorded
tool (a tool the model made up, or one whose ``acall`` LlamaIndex does not instrument) records
the call itself when it ends, with the result the agent gave the model (ERROR if it is an error).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from ... import recorder
from ...observation import Observation, ObservationType


class ToolStep:
    """A ``call_tool`` step still running: the call it handles, and where its tool belongs."""

    __slots__ = ("agent", "ancestor", "call", "ran", "start_ns")

    def __init__(self, call: Any, ancestor: str, agent: str | None) -> None:
        self.call, self.ancestor, self.agent = call, ancestor, agent
        self.start_ns, self.ran = time.time_ns(), False


class AgentSteps:
    """The agent half of the LlamaIndex tracker, which provides ``open`` (LlamaIndex span id ->
    open observation), ``_bound`` and ``_ended`` (records how a call ended on its observation)."""

    open: OrderedDict[str, tuple[Observation, Any]]
    agents: OrderedDict[str, str]  # a workflow run -> the agent that stepped last
    tool_steps: OrderedDict[str, ToolStep]  # a running ``call_tool`` step's span -> its call
    _bound: Callable[[OrderedDict[Any, Any]], None]
    _ended: Callable[[Observation, Any, BaseException | None, Any], None]

    def _agent_step(self, id_: str, method: str, ancestor: str, arguments: dict[str, Any]) -> None:
        """Note what a skipped agent step means for the observations that follow it."""
        if method == "run_agent_step":
            self._agent_stepped(ancestor, arguments)
        elif method == "call_tool" and type(arguments.get("ev")).__name__ == "ToolCall":
            self.tool_steps[id_] = ToolStep(arguments["ev"], ancestor, self.agents.get(ancestor))
            self._bound(self.tool_steps)

    def _agent_stepped(self, run_id: str, arguments: dict[str, Any]) -> None:
        """A multi-agent workflow's step ran one agent: the LLM calls and tool calls of the run that
        follow are that agent's (its tool calls run in steps of their own, after it, before any other
        agent steps)."""
        name = getattr(arguments.get("ev"), "current_agent_name", None)
        if isinstance(name, str):
            self.agents[run_id] = name
            self._bound(self.agents)

    def _tool_started(self, parent_id: str | None, obs: Observation) -> None:
        """A tool observation starting under a ``call_tool`` step: it records the call's id."""
        step = self.tool_steps.get(parent_id) if parent_id is not None else None
        if step is not None:
            step.ran = True
            obs.update(metadata={"tool_call_id": getattr(step.call, "tool_id", None)})

    def _tool_step_done(self, id_: str, result: Any, error: BaseException | None) -> None:
        """A ``call_tool`` step ended: if it ran no recorded tool, record the call it handled."""
        step = self.tool_steps.pop(id_, None)
        if step is None or step.ran or step.ancestor not in self.open:
            return
        call, name = step.call, id_.split("-", 1)[0]  # the step's span name: ``BaseWorkflowAgent.call_tool``
        obs = recorder.start(ObservationType.TOOL, name, start_time=step.start_ns,
                             parent=trace.set_span_in_context(self.open[step.ancestor][0].span))
        obs.update(tool_name=getattr(call, "tool_name", None), arguments={"kwargs": getattr(call, "tool_kwargs", None)},
                   metadata={"tool_call_id": getattr(call, "tool_id", None), "agent_name": step.agent})
        self._ended(obs, getattr(result, "tool_output", None), error, None)
