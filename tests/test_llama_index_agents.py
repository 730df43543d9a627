"""LlamaIndex agents, audited as a Langfuse user reads them, with real llama-index-core agents driven
by scripted function-calling LLMs: FunctionAgent and ReActAgent over several steps, an agent
workflow handing off, streamed events, failing and made-up tools, a conversation given as history,
a context reused for a second turn, and a run cancelled in a tool step."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, LLMMetadata
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import AsyncBaseTool, BaseTool, ToolMetadata, ToolOutput
from llama_index.core.workflow import Context

from autotrace.integrations.llama_index import INTEGRATION
from tests.helpers import Traced, shape
from tests.llama_doubles import (
    Scripted,
    billing_desk,
    broken,
    called,
    calls,
    lookup,
    price,
    run_reading_events,
    scripted,
)
from tests.test_llama_index_chat_and_workflow_agents import by_trace

pytestmark = pytest.mark.integrations("llama_index")

USAGE = {"input": 10, "output": 2, "total": 12}


def assert_nothing_held() -> None:
    tracker = INTEGRATION.tracker
    assert tracker is not None
    assert not (tracker.open or tracker.streams or tracker.delegates or tracker.skipped or tracker.chats
                or tracker.agents or tracker.tool_steps)


class Metered(MockFunctionCallingLLM):
    """A function-calling chat model answering with ``replies`` in turn, reporting its usage."""

    replies: list[ChatMessage] = []

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="metered-1", is_function_calling_model=True, is_chat_model=True)

    @llm_chat_callback()
    async def achat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        return ChatResponse(message=self.replies.pop(0), raw={"usage": {"prompt_tokens": 10, "completion_tokens": 2}})

    @llm_chat_callback()
    async def astream_chat(self, messages: Any, **kwargs: Any) -> AsyncIterator[ChatResponse]:
        reply = self.replies.pop(0)

        async def chunks() -> AsyncIterator[ChatResponse]:
            text = reply.content or ""
            yield ChatResponse(message=ChatMessage(role="assistant", content=text[:2]), delta=text[:2])
            yield ChatResponse(message=reply, delta=text[2:], raw={"usage": {"prompt_tokens": 10,
                                                                              "completion_tokens": 2}})

        return chunks()


def tools_of(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["name"], r["metadata"]["tool_name"], r["metadata"].get("tool_call_id"), r["input"], r["output"],
             r["level"]) for r in records if r["type"] == "tool"]


@pytest.mark.parametrize("streaming", [True, False])
def test_a_function_agent_s_run_names_its_agent_and_links_each_tool_to_its_call(traced: Traced,
                                                                                streaming: bool) -> None:
    """LLM -> tool -> LLM -> tool -> LLM: the agent observation did not say which agent ran (every
    FunctionAgent is ``FunctionAgent.run``), and nothing tied a tool to the call that asked for it."""
    llm = Metered(replies=[calls("lookup", order_id="o1"), calls("price", order_id="o1"),
                           ChatMessage(role="assistant", content="o1 shipped, 5")])
    agent = FunctionAgent(name="orders", tools=[lookup, price], llm=llm, streaming=streaming)

    async def run() -> str:
        return str(await agent.run(user_msg="check o1"))

    assert asyncio.run(run()) == "o1 shipped, 5"
    records = traced.records()
    generation = ("generation", f"Metered.{'astream_chat' if streaming else 'achat'}", [])
    assert shape(records) == [("agent", "FunctionAgent.run", [
        generation, ("tool", "lookup", []), generation, ("tool", "price", []), generation])]
    run_, *steps = records
    assert (run_["input"], run_["output"], run_["level"], run_["metadata"]["agent_name"]) == (
        "check o1", "o1 shipped, 5", "DEFAULT", "orders")
    generations = [r for r in steps if r["type"] == "generation"]
    assert [(r["model"], r["usage"], r["metadata"]["agent_name"]) for r in generations] == [
        ("metered-1", USAGE, "orders")] * 3
    assert [r["output"] for r in generations] == [called("lookup", order_id="o1"), called("price", order_id="o1"),
                                                  {"role": "assistant", "content": "o1 shipped, 5"}]
    assert tools_of(records) == [
        ("lookup", "lookup", "c-lookup", {"order_id": "o1"}, "o1 shipped", "DEFAULT"),
        ("price", "price", "c-price", {"order_id": "o1"}, "o1 costs 5", "DEFAULT")]
    assert_nothing_held()


def test_a_react_agent_s_streamed_events_with_two_tools_and_a_failing_one(traced: Traced) -> None:
    replies = ['Thought: look.\nAction: lookup\nAction Input: {"order_id": "o1"}\n',
               'Thought: price.\nAction: price\nAction Input: {"order_id": "o1"}\n',
               'Thought: check.\nAction: broken\nAction Input: {"order_id": "o1"}\n',
               "Thought: I can answer.\nAnswer: o1 shipped, 5\n"]
    agent = ReActAgent(name="react", tools=[lookup, price, broken], llm=Scripted(replies=replies))
    answer, kinds = run_reading_events(agent, "check o1")
    assert (answer, kinds.count("ToolCallResult"), kinds[-1]) == ("o1 shipped, 5", 3, "StopEvent")
    records = traced.records()
    generation = ("generation", "Scripted.astream_chat", [])
    assert shape(records) == [("agent", "ReActAgent.run", [
        generation, ("tool", "lookup", []), generation, ("tool", "price", []),
        generation, ("tool", "broken", []), generation])]
    assert (records[0]["output"], records[0]["metadata"]["agent_name"]) == ("o1 shipped, 5", "react")
    assert [(name, out, level) for _, name, _, _, out, level in tools_of(records)] == [
        ("lookup", "o1 shipped", "DEFAULT"), ("price", "o1 costs 5", "DEFAULT"), ("broken", None, "ERROR")]
    failed = next(r for r in records if r["level"] == "ERROR")
    assert failed["status_message"] == "ValueError: no o1"
    assert all(r["metadata"].get("tool_call_id") for r in records if r["type"] == "tool")
    assert_nothing_held()


def test_an_agent_workflow_s_handoff_is_a_tool_call_of_the_agent_handing_off(traced: Traced) -> None:
    workflow = billing_desk(calls("lookup", order_id="o1"), ChatMessage(role="assistant", content="ok"), tools=[lookup])

    async def run() -> str:
        return str(await workflow.run(user_msg="refund o1"))

    assert asyncio.run(run()) == "ok"
    records = traced.records()
    generation = ("generation", "MockFunctionCallingLLM.astream_chat", [])
    assert shape(records) == [("agent", "AgentWorkflow.run", [
        ("agent", "triage", [generation, ("tool", "handoff", [])]),
        ("agent", "billing", [generation, ("tool", "lookup", []), generation])])]
    assert "agent_name" not in records[0]["metadata"]  # the workflow runs several agents
    assert [(r["type"], r["metadata"]["agent_name"]) for r in records[1:]] == [
        ("agent", "triage"), ("generation", "triage"), ("tool", "triage"), ("agent", "billing"),
        ("generation", "billing"), ("tool", "billing"), ("generation", "billing")]
    handoff, looked_up = tools_of(records)
    assert handoff[1:4] == ("handoff", "c-handoff", {"to_agent": "billing", "reason": "a refund"})
    assert handoff[4].startswith("Agent billing is now handling the request")
    assert looked_up == ("lookup", "lookup", "c-lookup", {"order_id": "o1"}, "o1 shipped", "DEFAULT")
    assert_nothing_held()


class Weather(AsyncBaseTool):
    """A tool whose ``acall`` delegates to its ``call`` (both instrumented by LlamaIndex)."""

    @property
    def metadata(self) -> ToolMetadata:
        return ToolMetadata(name="weather", description="the weather in a city")

    def call(self, input: Any = None, **kwargs: Any) -> ToolOutput:
        return ToolOutput(content=f"sunny in {kwargs['city']}", tool_name="weather", raw_input=kwargs, raw_output="")

    async def acall(self, input: Any = None, **kwargs: Any) -> ToolOutput:
        return self.call(input, **kwargs)


class Forecast(BaseTool):
    """A sync tool: an agent adapts it (``BaseToolAsyncAdapter``), whose ``acall`` takes only ``input``."""

    @property
    def metadata(self) -> ToolMetadata:
        return ToolMetadata(name="forecast", description="tomorrow's weather")

    def __call__(self, input: Any) -> ToolOutput:
        return ToolOutput(content="rain", tool_name="forecast", raw_input={}, raw_output="rain")


def test_a_tool_delegating_to_its_own_call_is_one_tool_call(traced: Traced) -> None:
    """``Weather.acall`` calling ``self.call`` was recorded as two tools, one inside the other."""
    agent = FunctionAgent(tools=[Weather()], llm=scripted(calls("weather", city="Oslo"),
                                                          ChatMessage(role="assistant", content="sunny")))

    async def run() -> str:
        return str(await agent.run(user_msg="weather in Oslo?"))

    assert asyncio.run(run()) == "sunny"
    records = traced.records()
    generation = ("generation", "MockFunctionCallingLLM.astream_chat", [])
    assert shape(records) == [("agent", "FunctionAgent.run", [generation, ("tool", "weather", []), generation])]
    assert tools_of(records) == [("weather", "weather", "c-weather", {"city": "Oslo"}, "sunny in Oslo", "DEFAULT")]
    assert_nothing_held()


MADE_UP = "Tool lookupp not found. Please select a tool that is available."


def test_a_tool_call_the_agent_could_not_run_is_a_failed_tool_call(traced: Traced) -> None:
    """A tool the model made up (FunctionAgent, agent workflow), or one that failed before its span
    started (an adapted sync tool, called with keywords its ``acall`` does not take): the agent told
    the model so, and the trace had no tool call at all between the two generations."""
    made_up = calls("lookupp", order_id="o1")
    runs = (FunctionAgent(name="solo", tools=[lookup], llm=scripted(made_up, ChatMessage(role="assistant", content="a"))),
            billing_desk(made_up, ChatMessage(role="assistant", content="b"), tools=[lookup]),
            FunctionAgent(name="adapted", tools=[Forecast()],
                          llm=scripted(calls("forecast", city="Oslo"), ChatMessage(role="assistant", content="c"))))

    async def run() -> list[str]:
        return [str(await agent.run(user_msg=f"ask {i}")) for i, agent in enumerate(runs)]

    assert asyncio.run(run()) == ["a", "b", "c"]
    solo, workflow, adapted = by_trace(traced.records()).values()
    generation = ("generation", "MockFunctionCallingLLM.astream_chat", [])
    assert shape(solo) == [("agent", "FunctionAgent.run", [generation, ("tool", "lookupp", []), generation])]
    assert shape(workflow) == [("agent", "AgentWorkflow.run", [
        ("agent", "triage", [generation, ("tool", "handoff", [])]),
        ("agent", "billing", [generation, ("tool", "lookupp", []), generation])])]
    assert shape(adapted) == [("agent", "FunctionAgent.run", [generation, ("tool", "forecast", []), generation])]
    failed = [r for trace in (solo, workflow, adapted) for r in trace
              if r["metadata"].get("method", "").endswith(".call_tool")]
    assert [(r["name"], r["metadata"]["method"], r["metadata"]["tool_call_id"], r["metadata"]["agent_name"],
             r["input"], r["output"], r["level"], r["status_message"]) for r in failed] == [
        ("lookupp", "BaseWorkflowAgent.call_tool", "c-lookupp", "solo", {"order_id": "o1"}, MADE_UP, "ERROR",
         MADE_UP),
        ("lookupp", "AgentWorkflow.call_tool", "c-lookupp", "billing", {"order_id": "o1"}, MADE_UP, "ERROR", MADE_UP),
        ("forecast", "BaseWorkflowAgent.call_tool", "c-forecast", "adapted", {"city": "Oslo"},
         "missing a required argument: 'input'", "ERROR", "missing a required argument: 'input'")]
    assert all(r["level"] == "DEFAULT" for trace in (solo, workflow, adapted) for r in trace if r not in failed)
    assert_nothing_held()


def test_a_run_given_a_conversation_records_it_as_it_was_given(traced: Traced) -> None:
    """A run given ``chat_history`` (no ``user_msg``) recorded its start event's fields: the raw
    messages, None fields, and the agent's own reply (its memory appends to that list)."""
    agent = FunctionAgent(tools=[], llm=scripted(ChatMessage(role="assistant", content="hi")))
    history = [ChatMessage(role="system", content="be nice"), ChatMessage(role="user", content="hello there")]

    async def run() -> str:
        return str(await agent.run(chat_history=history))

    assert asyncio.run(run()) == "hi"
    records = traced.records()
    assert shape(records) == [("agent", "FunctionAgent.run", [("generation", "MockFunctionCallingLLM.astream_chat",
                                                               [])])]
    assert (records[0]["input"], records[0]["output"]) == (
        [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hello there"}], "hi")
    assert_nothing_held()


def test_a_context_reused_for_a_second_turn_is_a_second_trace(traced: Traced) -> None:
    agent = FunctionAgent(name="orders", tools=[lookup], llm=scripted(
        calls("lookup", order_id="o1"), ChatMessage(role="assistant", content="shipped"),
        ChatMessage(role="assistant", content="you asked about o1")))

    async def run() -> list[str]:
        ctx = Context(agent)
        return [str(await agent.run(user_msg=message, ctx=ctx)) for message in ("check o1", "what did I ask?")]

    with pytest.warns(Warning, match="unserializable key: memory"):  # LlamaIndex's, on the context's reuse
        assert asyncio.run(run()) == ["shipped", "you asked about o1"]
    first, second = by_trace(traced.records()).values()
    generation = ("generation", "MockFunctionCallingLLM.astream_chat", [])
    assert shape(first) == [("agent", "FunctionAgent.run", [generation, ("tool", "lookup", []), generation])]
    assert shape(second) == [("agent", "FunctionAgent.run", [generation])]
    assert [(t[0]["input"], t[0]["output"]) for t in (first, second)] == [
        ("check o1", "shipped"), ("what did I ask?", "you asked about o1")]
    assert_nothing_held()


def test_an_agent_workflow_cancelled_in_a_tool_step_ends_everything(traced: Traced) -> None:
    async def run() -> str:
        started, never = asyncio.Event(), asyncio.Event()

        async def slow(order_id: str) -> str:
            """Looks an order up, slowly."""
            started.set()
            await never.wait()
            return "late"

        triage = FunctionAgent(name="triage", description="routes", can_handoff_to=["billing"],
                               llm=scripted(calls("handoff", to_agent="billing", reason="slow")))
        billing = FunctionAgent(name="billing", description="looks up", tools=[slow],
                                llm=scripted(calls("slow", order_id="o1")))
        handler = AgentWorkflow(agents=[triage, billing], root_agent="triage").run(user_msg="o1?")
        async for event in handler.stream_events():
            if type(event).__name__ == "ToolCall" and event.tool_name == "slow":
                await started.wait()
                await handler.cancel_run()
                break
        try:
            await handler
        except Exception as exc:
            return type(exc).__name__
        return "finished"

    assert asyncio.run(run()) == "WorkflowCancelledByUser"
    records = traced.records()
    generation = ("generation", "MockFunctionCallingLLM.astream_chat", [])
    assert shape(records) == [("agent", "AgentWorkflow.run", [
        ("agent", "triage", [generation, ("tool", "handoff", [])]),
        ("agent", "billing", [generation, ("tool", "slow", [])])])]
    assert [(r["name"], r["level"]) for r in records if r["level"] != "DEFAULT"] == [
        ("AgentWorkflow.run", "WARNING"), ("billing", "WARNING"), ("slow", "WARNING")]
    assert tools_of(records)[-1][1:4] == ("slow", "c-slow", {"order_id": "o1"})
    assert_nothing_held()
