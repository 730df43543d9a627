"""LlamaIndex with real llama-index-core: a workflow run cancelled by its caller
(``handler.cancel_run()``), a step waiting for a human (``ctx.wait_for_event``), an agent's events
streamed with sync, async, failing and ``return_direct`` tools, and concurrent queries through a
node postprocessor in threads."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.postprocessor import SimilarityPostprocessor
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import Context, HumanResponseEvent, InputRequiredEvent

from tests.helpers import Traced, shape
from tests.llama_doubles import (
    FakeLLM,
    broken,
    called,
    calls,
    indexed,
    lookup,
    run_reading_events,
    scripted,
)
from tests.test_llama_index_chat_and_workflow_agents import assert_nothing_held, by_trace

pytestmark = pytest.mark.integrations("llama_index")

CANCELLED = "workflow cancelled by user"
FUNCTION_STREAM = "MockFunctionCallingLLM.astream_chat"


class Hanging(MockFunctionCallingLLM):
    """Streams "one " then waits for ``release``, which never comes: the run is cancelled meanwhile."""

    release: Any = None

    @llm_chat_callback()
    async def astream_chat(self, messages: Any, **kwargs: Any) -> AsyncIterator[ChatResponse]:
        async def chunks() -> AsyncIterator[ChatResponse]:
            yield ChatResponse(message=ChatMessage(role="assistant", content="one "), delta="one ")
            await self.release.wait()
            yield ChatResponse(message=ChatMessage(role="assistant", content="one two"), delta="two")

        return chunks()


async def cancel_at(handler: Any, kind: str, ready: asyncio.Event | None = None) -> None:
    """Read the run's events until one of type ``kind`` (and ``ready``), then cancel the run."""
    async for event in handler.stream_events():
        if type(event).__name__ == kind:
            if ready is not None:
                await ready.wait()
            await handler.cancel_run()
            break


def test_a_run_cancelled_by_its_caller_is_interrupted_not_done(traced: Traced) -> None:
    """``cancel_run()`` makes the run exit its span with no error (as if it had returned None): the
    agent was recorded DEFAULT, as a run that finished with no answer."""
    from workflows.errors import WorkflowCancelledByUser

    async def run() -> list[str]:
        started, never = asyncio.Event(), asyncio.Event()

        async def slow(order_id: str) -> str:
            """Looks an order up, slowly."""
            started.set()
            await never.wait()
            return "late"

        raised = []
        runs = ((FunctionAgent(tools=[slow], llm=scripted(calls("slow", order_id="o1"))), "ToolCall", started),
                (FunctionAgent(tools=[], llm=Hanging(release=never)), "AgentStream", None))
        for agent, kind, ready in runs:
            handler = agent.run(user_msg="check o1")
            await cancel_at(handler, kind, ready)
            with pytest.raises(WorkflowCancelledByUser) as caught:  # the caller's error, unchanged
                await handler
            raised.append(type(caught.value).__name__)
        return raised

    assert asyncio.run(run()) == ["WorkflowCancelledByUser"] * 2
    in_tool, in_stream = by_trace(traced.records()).values()
    assert shape(in_tool) == [("agent", "FunctionAgent.run", [("generation", FUNCTION_STREAM, []),
                                                             ("tool", "slow", [])])]
    assert shape(in_stream) == [("agent", "FunctionAgent.run", [("generation", "Hanging.astream_chat", [])])]
    for records in (in_tool, in_stream):
        assert (records[0]["level"], records[0]["status_message"], records[0]["input"], records[0]["output"]) == (
            "WARNING", CANCELLED, "check o1", None)
    generation, tool = in_tool[1:]
    assert (generation["level"], generation["output"]) == ("DEFAULT", called("slow", order_id="o1"))
    assert (tool["level"], tool["output"], tool["input"]) == ("WARNING", None, {"order_id": "o1"})
    assert tool["status_message"].startswith("CancelledError")
    streamed = in_stream[1]  # cancelled mid-stream: what the agent had received
    assert (streamed["level"], streamed["output"]) == ("WARNING", {"role": "assistant", "content": "one "})
    assert streamed["status_message"].startswith("CancelledError")
    assert_nothing_held()


async def ask(ctx: Context, question: str) -> str:
    """Ask the human."""
    reply = await ctx.wait_for_event(HumanResponseEvent, waiter_event=InputRequiredEvent(prefix=question),
                                     waiter_id=question)
    return reply.response


def test_a_tool_waiting_for_a_human_is_suspended_not_failed(traced: Traced) -> None:
    """``ctx.wait_for_event`` raises WaitingForEvent out of the tool until the answer comes, then the
    step runs again: the first call was recorded as a failed tool (ERROR)."""
    agent = FunctionAgent(tools=[ask], llm=scripted(calls("ask", question="ship it?"),
                                                    ChatMessage(role="assistant", content="shipped")))

    async def run() -> tuple[str, list[str]]:
        handler = agent.run(user_msg="ship o1", ctx=Context(agent))
        prompts = []
        async for event in handler.stream_events():
            if isinstance(event, InputRequiredEvent):
                prompts.append(event.prefix)
                handler.ctx.send_event(HumanResponseEvent(response="yes"))
        return str(await handler), prompts

    assert asyncio.run(run()) == ("shipped", ["ship it?"])
    records = traced.records()
    assert shape(records) == [("agent", "FunctionAgent.run", [
        ("generation", FUNCTION_STREAM, []), ("tool", "ask", []), ("tool", "ask", []),
        ("generation", FUNCTION_STREAM, [])])]
    waiting, answered = (r for r in records if r["type"] == "tool")
    assert [(r["level"], r["status_message"], r["input"], r["output"]) for r in (waiting, answered)] == [
        ("DEFAULT", "suspended: waiting for HumanResponseEvent, run again when it arrives",
         {"question": "ship it?"}, None),
        ("DEFAULT", None, {"question": "ship it?"}, "yes")]
    assert all(r["level"] == "DEFAULT" for r in records)
    assert (records[0]["input"], records[0]["output"]) == ("ship o1", "shipped")
    assert_nothing_held()


async def alookup(order_id: str) -> str:
    """Look an order up, asynchronously."""
    await asyncio.sleep(0)
    return f"{order_id} paid"


def test_streamed_agent_events_with_sync_async_failing_and_direct_tools(traced: Traced) -> None:
    direct = FunctionTool.from_defaults(fn=lookup, name="direct", return_direct=True)
    agent = FunctionAgent(tools=[lookup, alookup, broken, direct], llm=scripted(
        calls("lookup", order_id="o1"), calls("alookup", order_id="o2"), calls("broken", order_id="o3"),
        calls("direct", order_id="o4")))
    answer, kinds = run_reading_events(agent, "check orders")
    assert (answer, kinds.count("ToolCallResult"), kinds[-1]) == ("o4 shipped", 4, "StopEvent")
    records = traced.records()
    assert shape(records) == [("agent", "FunctionAgent.run", [
        step for name in ("lookup", "alookup", "broken", "direct")
        for step in (("generation", FUNCTION_STREAM, []), ("tool", name, []))])]
    tools = [(r["metadata"]["tool_name"], r["level"], r["status_message"], r["output"])
             for r in records if r["type"] == "tool"]
    assert tools == [("lookup", "DEFAULT", None, "o1 shipped"), ("alookup", "DEFAULT", None, "o2 paid"),
                     ("broken", "ERROR", "ValueError: no o3", None), ("direct", "DEFAULT", None, "o4 shipped")]
    assert (records[0]["level"], records[0]["output"]) == ("DEFAULT", "o4 shipped")  # the direct tool's answer
    assert_nothing_held()


class Slow(FakeLLM):
    """Answers with the end of its prompt after a pause, so that concurrent queries overlap."""

    model = "slow"

    def answer(self, prompt: str) -> CompletionResponse:
        time.sleep(0.05)
        return CompletionResponse(text=prompt.rsplit("Query: ", 1)[-1].split("\n")[0])


@pytest.fixture
def slow_index() -> Iterator[VectorStoreIndex]:
    yield from indexed("Orders ship in 24 hours.", llm=Slow())


def test_queries_in_threads_through_a_postprocessor_never_cross(slow_index: VectorStoreIndex, traced: Traced) -> None:
    engine = slow_index.as_query_engine(node_postprocessors=[SimilarityPostprocessor(similarity_cutoff=0.5)])
    barrier, answers = threading.Barrier(3, timeout=10), {}

    def one(i: int) -> None:
        barrier.wait()
        answers[i] = str(engine.query(f"question {i}"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {i: f"question {i}" for i in range(3)}
    traces = [t for t in by_trace(traced.records()).values() if t[0]["type"] == "chain"]
    assert len(traces) == 3
    for records in traces:
        assert shape(records) == [("chain", "RetrieverQueryEngine.query", [
            ("retriever", "VectorIndexRetriever.retrieve", [("embedding", "MockEmbedding.get_query_embedding", [])]),
            ("retriever", "SimilarityPostprocessor.postprocess_nodes", []),
            ("chain", "CompactAndRefine.synthesize", [("generation", "Slow.complete", [])])])]
        question = records[0]["input"]
        assert [r["output"] for r in records if r["type"] in ("chain", "generation")] == [question] * 3
        reranked = next(r for r in records if r["name"] == "SimilarityPostprocessor.postprocess_nodes")
        assert (reranked["metadata"]["operation"], reranked["metadata"]["doc_count"]) == ("rerank", 1)
        assert reranked["output"][0]["content"] == "Orders ship in 24 hours."
    assert_nothing_held()
