"""LlamaIndex with real llama-index-core: each tool observation is named after its tool
with the arguments the model gave (FunctionTool, QueryEngineTool, custom BaseTool and AsyncBaseTool,
ToolSpec tools, a single positional ``input``), and each agent's turn in an AgentWorkflow is an agent
observation of its own (handoffs back and forth, parallel tool calls, a failing step, a timeout, a
dispatcher shutdown)."""

import asyncio
from typing import Any

import pytest
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.tools import (
    AsyncBaseTool,
    BaseTool,
    FunctionTool,
    QueryEngineTool,
    ToolMetadata,
    ToolOutput,
)
from llama_index.core.tools.calling import acall_tool, call_tool
from llama_index.core.tools.tool_spec.base import BaseToolSpec

from autotrace.integrations.llama_index import INTEGRATION
from tests.helpers import Traced, shape
from tests.llama_doubles import calls, lookup, price, scripted
from tests.test_llama_index_chat_and_workflow_agents import by_trace

pytestmark = pytest.mark.integrations("llama_index")

GENERATION = ("generation", "MockFunctionCallingLLM.astream_chat", [])
SHUTDOWN = "LlamaIndex dispatcher shut down before the span ended"


def assert_nothing_held() -> None:
    tracker = INTEGRATION.tracker
    assert tracker is not None
    assert not (tracker.open or tracker.streams or tracker.delegates or tracker.skipped or tracker.chats
                or tracker.agents or tracker.tool_steps or tracker.turns)


class Docs(CustomQueryEngine):
    def custom_query(self, query_str: str) -> str:
        return f"about {query_str}"


class Forecast(BaseTool):
    """A sync tool implementing only ``__call__`` (its one parameter: ``input``)."""

    @property
    def metadata(self) -> ToolMetadata:
        return ToolMetadata(name="forecast", description="tomorrow's weather")

    def __call__(self, input: Any) -> ToolOutput:
        return ToolOutput(content=f"rain in {input}", tool_name="forecast", raw_input={"input": input},
                          raw_output="rain")


class Weather(AsyncBaseTool):
    @property
    def metadata(self) -> ToolMetadata:
        return ToolMetadata(name="weather", description="the weather in a city")

    def call(self, *args: Any, **kwargs: Any) -> ToolOutput:
        return ToolOutput(content=f"sunny {args} {kwargs}", tool_name="weather", raw_input=kwargs, raw_output="")

    async def acall(self, *args: Any, **kwargs: Any) -> ToolOutput:
        return self.call(*args, **kwargs)


class Maths(BaseToolSpec):
    spec_functions = ["add"]

    def add(self, a: int, b: int) -> int:
        """Add two numbers."""
        return a + b


def test_each_tool_is_named_after_itself_with_the_arguments_the_model_gave(traced: Traced) -> None:
    """Every tool was ``<Class>.<method>`` (a column of identical ``FunctionTool.acall`` rows), its
    keyword arguments wrapped (``{"kwargs": {...}}``), a lone positional one as ``{"args": [...]}``, and
    a custom BaseTool called (sync) through ``__call__`` was not recorded at all."""
    docs = QueryEngineTool.from_defaults(Docs(), name="docs", description="answers from the docs")
    found = FunctionTool.from_defaults(lookup)
    (add,) = Maths().to_tool_list()

    async def run() -> list[str]:
        return [str(out) for out in (
            await acall_tool(docs, {"input": "refunds"}),  # one parameter: LlamaIndex passes it positionally
            await docs.acall(input="returns"),
            call_tool(found, {"order_id": "o1"}),  # FunctionTool.__call__ -> call: one tool
            call_tool(Forecast(), {"input": "Oslo"}),  # BaseTool.__call__
            await acall_tool(Forecast(), {"input": "Bergen"}),  # the agents' async adapter
            await Weather().acall(city="Oslo"),
            await Weather().acall("Oslo", "Bergen", unit="C"),  # positional ones its schema cannot name
            await add.acall(a=1, b=2))]

    assert asyncio.run(run()) == ["about refunds", "about returns", "o1 shipped", "rain in Oslo", "rain in Bergen",
                                  "sunny () {'city': 'Oslo'}", "sunny ('Oslo', 'Bergen') {'unit': 'C'}", "3"]
    records = traced.records()
    assert shape(records) == [
        ("tool", "docs", [("chain", "Docs.aquery", [])]), ("tool", "docs", [("chain", "Docs.aquery", [])]),
        ("tool", "lookup", []), ("tool", "forecast", []), ("tool", "forecast", []), ("tool", "weather", []),
        ("tool", "weather", []), ("tool", "add", [])]
    tools = [(r["name"], r["metadata"]["tool_name"], r["metadata"]["method"], r["input"])
             for r in records if r["type"] == "tool"]
    assert tools == [
        ("docs", "docs", "QueryEngineTool.acall", {"input": "refunds"}),
        ("docs", "docs", "QueryEngineTool.acall", {"input": "returns"}),
        ("lookup", "lookup", "FunctionTool.__call__", {"order_id": "o1"}),
        ("forecast", "forecast", "Forecast.__call__", {"input": "Oslo"}),
        ("forecast", "forecast", "BaseToolAsyncAdapter.acall", {"input": "Bergen"}),
        ("weather", "weather", "Weather.acall", {"city": "Oslo"}),
        ("weather", "weather", "Weather.acall", {"unit": "C", "args": ["Oslo", "Bergen"]}),
        ("add", "add", "FunctionTool.acall", {"a": 1, "b": 2})]
    assert all(r["level"] == "DEFAULT" for r in records)
    assert_nothing_held()


def two_calls(*names: str) -> ChatMessage:
    """A reply asking for several tool calls at once."""
    return ChatMessage(role="assistant", blocks=[
        ToolCallBlock(tool_call_id=f"c-{name}", tool_name=name, tool_kwargs={"order_id": "o1"}) for name in names])


def test_each_agent_s_turn_in_an_agent_workflow_is_an_agent_holding_its_steps(traced: Traced) -> None:
    """triage -> billing (two tools at once) -> triage: every generation and tool was flat under
    ``AgentWorkflow.run``; each turn is now an agent named after its agent, a handoff ending it."""
    triage = FunctionAgent(name="triage", description="routes", can_handoff_to=["billing"], llm=scripted(
        calls("handoff", to_agent="billing", reason="a refund"), ChatMessage(role="assistant", content="done")))
    billing = FunctionAgent(name="billing", description="bills", tools=[lookup, price], can_handoff_to=["triage"],
                            llm=scripted(two_calls("lookup", "price"),
                                         calls("handoff", to_agent="triage", reason="billed")))
    workflow = AgentWorkflow(agents=[triage, billing], root_agent="triage")

    async def run() -> str:
        return str(await workflow.run(user_msg="refund o1"))

    assert asyncio.run(run()) == "done"
    records = traced.records()
    assert shape(records) == [("agent", "AgentWorkflow.run", [
        ("agent", "triage", [GENERATION, ("tool", "handoff", [])]),
        ("agent", "billing", [GENERATION, ("tool", "lookup", []), ("tool", "price", []), GENERATION,
                              ("tool", "handoff", [])]),
        ("agent", "triage", [GENERATION])])]
    turns = [r for r in records[1:] if r["type"] == "agent"]
    assert [(r["metadata"]["agent_name"], r["level"], r.get("output")) for r in turns] == [
        ("triage", "DEFAULT", None), ("billing", "DEFAULT", None), ("triage", "DEFAULT", "done")]
    assert [(r["name"], r["metadata"]["agent_name"], r["input"]) for r in records if r["type"] == "tool"] == [
        ("handoff", "triage", {"to_agent": "billing", "reason": "a refund"}),
        ("lookup", "billing", {"order_id": "o1"}), ("price", "billing", {"order_id": "o1"}),
        ("handoff", "billing", {"to_agent": "triage", "reason": "billed"})]
    assert (records[0]["input"], records[0]["output"]) == ("refund o1", "done")
    assert_nothing_held()


class Failing(MockFunctionCallingLLM):
    """A model whose service is down."""

    async def astream_chat(self, messages: Any, **kwargs: Any) -> Any:
        raise ConnectionError("model down")


def test_an_agent_s_turn_ends_as_its_run_ends_failed_timed_out_or_shut_down(traced: Traced) -> None:
    """billing's model fails; billing's tool outlasts the run's timeout; a tool shuts the dispatcher down:
    the turn running then ends with the run (its error, or WARNING), and nothing stays open."""
    from workflows.errors import WorkflowTimeoutError

    async def never(order_id: str) -> str:
        """Waits forever."""
        await asyncio.Event().wait()
        return "late"

    def stop(order_id: str) -> str:
        """Shuts LlamaIndex's dispatcher down."""
        get_dispatcher().shutdown()
        return "stopped"

    def desk(billing_llm: Any, *tools: Any, timeout: float | None = None) -> AgentWorkflow:
        triage = FunctionAgent(name="triage", description="routes", can_handoff_to=["billing"],
                               llm=scripted(calls("handoff", to_agent="billing", reason="refund")))
        billing = FunctionAgent(name="billing", description="bills", tools=list(tools), llm=billing_llm)
        return AgentWorkflow(agents=[triage, billing], root_agent="triage", timeout=timeout)

    async def run() -> list[str]:
        outcomes = []
        for workflow in (desk(Failing()), desk(scripted(calls("never", order_id="o1")), never, timeout=0.5),
                         desk(scripted(calls("stop", order_id="o1"), ChatMessage(role="assistant", content="ok")),
                              stop)):
            try:
                outcomes.append(str(await workflow.run(user_msg="refund o1")))
            except (ConnectionError, WorkflowTimeoutError) as exc:
                outcomes.append(type(exc).__name__)
        return outcomes

    failed_run, timed_out_run, shut_down_run = asyncio.run(run())
    assert (failed_run, timed_out_run, shut_down_run) == ("ConnectionError", "WorkflowTimeoutError", "ok")
    failed, timed_out, shut_down = by_trace(traced.records()).values()
    triage = ("agent", "triage", [GENERATION, ("tool", "handoff", [])])
    assert shape(failed) == [("agent", "AgentWorkflow.run", [
        triage, ("agent", "billing", [("generation", "Failing.astream_chat", [])])])]
    assert shape(timed_out) == [("agent", "AgentWorkflow.run", [
        triage, ("agent", "billing", [GENERATION, ("tool", "never", [])])])]
    assert shape(shut_down) == [("agent", "AgentWorkflow.run", [  # the turn ended: what follows, under the run
        triage, ("agent", "billing", [GENERATION, ("tool", "stop", [])]), GENERATION])]

    def ending(trace: list[dict[str, Any]], name: str) -> tuple[str, str]:
        record = next(r for r in trace if r["name"] == name)
        return record["level"], (record["status_message"] or "").split(":")[0]

    assert [ending(failed, name) for name in ("AgentWorkflow.run", "billing", "Failing.astream_chat")] == [
        ("ERROR", "ConnectionError")] * 3
    assert [ending(timed_out, name) for name in ("AgentWorkflow.run", "billing")] == [
        ("ERROR", "WorkflowTimeoutError"), ("ERROR", "WorkflowTimeoutError")]
    assert ending(timed_out, "never")[0] == "WARNING"  # its task cancelled
    assert [ending(shut_down, name) for name in ("AgentWorkflow.run", "billing", "stop")] == [
        ("WARNING", SHUTDOWN)] * 3
    assert all(r["level"] == "DEFAULT" for trace in (failed, timed_out, shut_down) for r in trace
               if r["metadata"].get("agent_name") == "triage")
    assert_nothing_held()
