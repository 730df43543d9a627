"""LlamaIndex with real llama-index-core: an ingestion pipeline's run is a chain over
its transformations, a FunctionTool's workflow Context stays out of the tool's recorded input, and
an agent workflow's generations and tools name the agent that ran them."""

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from llama_index.core import Document
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.embeddings.mock_embed_model import MockEmbedding
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import BaseNode, TextNode, TransformComponent
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import Context

from autotrace.integrations.llama_index import INTEGRATION
from tests.helpers import Traced, shape
from tests.llama_doubles import billing_desk, calls, scripted
from tests.test_llama_index_chat_and_workflow_agents import assert_nothing_held, by_trace, refund, remember
from tests.test_llama_index_edges import in_chain

pytestmark = pytest.mark.integrations("llama_index")

DOCUMENTS = [Document(text="Orders ship in 24 hours. " * 40, doc_id="d1"), Document(text="Refunds.", doc_id="d2")]


def pipeline(*extra: TransformComponent) -> IngestionPipeline:
    return IngestionPipeline(transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0), *extra,
                                              MockEmbedding(embed_dim=8)])


class Rejecting(TransformComponent):
    """A transformation that fails on every batch."""

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        raise ValueError("bad chunk")

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        raise ValueError("bad chunk")


def test_an_ingestion_pipeline_run_is_one_chain_over_its_embeddings(traced: Traced) -> None:
    """``IngestionPipeline.run/arun`` were not recorded: their embedding batches had no parent
    saying "ingestion" (the chain records counts, not the nodes themselves)."""
    extra = [TextNode(text="Refunds take 5 days.", id_="n1")]
    nodes, records = in_chain("sync", lambda: pipeline().run(documents=DOCUMENTS, nodes=extra), traced)
    async_nodes, async_records = in_chain(
        "async", lambda: asyncio.run(pipeline().arun(documents=DOCUMENTS, nodes=extra)), traced)
    assert len(nodes) == len(async_nodes) == 7
    assert shape(records) == [("chain", "IngestionPipeline.run", [
        ("embedding", "MockEmbedding.get_text_embedding_batch", [])])]
    assert shape(async_records) == [("chain", "IngestionPipeline.arun", [
        ("embedding", "MockEmbedding.aget_text_embedding_batch", [])])]
    for chain, embedding in (records, async_records):
        assert (chain["input"], chain["output"], chain["level"]) == ({"documents": 2, "nodes": 1}, {"nodes": 7},
                                                                     "DEFAULT")
        assert chain["metadata"]["transformations"] == ["SentenceSplitter", "MockEmbedding"]
        assert (embedding["parent_id"], embedding["metadata"]["input_count"]) == (chain["id"], 7)
    assert_nothing_held()


def test_a_pipeline_s_own_documents_are_counted_and_a_failing_run_records_its_error(traced: Traced) -> None:
    own = IngestionPipeline(transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0)], documents=DOCUMENTS)
    nodes, records = in_chain("own", own.run, traced)
    assert shape(records) == [("chain", "IngestionPipeline.run", [])]
    assert (records[0]["input"], records[0]["output"]) == ({"documents": 2, "nodes": 0}, {"nodes": len(nodes)})

    for name, run in (("sync", lambda: pipeline(Rejecting()).run(documents=DOCUMENTS)),
                      ("async", lambda: asyncio.run(pipeline(Rejecting()).arun(documents=DOCUMENTS)))):
        with pytest.raises(ValueError, match=r"^bad chunk$"):  # the caller's error, unchanged
            in_chain(name, run, traced)
    failed = [r for r in traced.records() if r["name"].startswith("IngestionPipeline.") and r["level"] == "ERROR"]
    assert [(r["name"], r["status_message"], r["output"]) for r in failed] == [
        ("IngestionPipeline.run", "ValueError: bad chunk", None),
        ("IngestionPipeline.arun", "ValueError: bad chunk", None)]
    assert_nothing_held()


def note_size(ctx: Context, note: str) -> str:
    """How long a note is."""
    return f"{len(note)} characters"


def test_a_function_tool_s_workflow_context_is_left_out_of_its_input(traced: Traced) -> None:
    """The Context a FunctionTool is handed was recorded (as its repr) in the tool's input."""
    agent = FunctionAgent(tools=[remember], llm=scripted(calls("remember", note="vip"),
                                                         ChatMessage(role="assistant", content="done")))
    sized = FunctionTool.from_defaults(note_size)

    async def run() -> tuple[str, Any, str]:
        ctx = Context(agent)
        answer = str(await agent.run(user_msg="remember vip", ctx=ctx))
        return answer, await ctx.store.get("notes"), sized.call(ctx=ctx, note="abc").content

    assert asyncio.run(run()) == ("done", ["vip"], "3 characters")
    tools = [r for r in traced.records() if r["type"] == "tool"]
    assert [(r["name"], r["metadata"]["tool_name"], r["input"], r["output"]) for r in tools] == [
        ("remember", "remember", {"note": "vip"}, "noted vip"),
        ("note_size", "note_size", {"note": "abc"}, "3 characters")]
    assert "Context" not in str(tools)
    assert_nothing_held()


def handing_off(streaming: bool) -> AgentWorkflow:
    """triage hands off to billing, which refunds and answers."""
    return billing_desk(calls("refund", order_id="o1"), ChatMessage(role="assistant", content="ok"), tools=[refund],
                        streaming=streaming)


def answering(name: str) -> AgentWorkflow:
    """One agent that answers at once."""
    agent = FunctionAgent(name=name, description="answers", llm=scripted(ChatMessage(role="assistant", content=name)))
    return AgentWorkflow(agents=[agent], root_agent=name)


@pytest.mark.parametrize("streaming", [True, False])
def test_an_agent_workflow_s_generations_and_tools_name_the_agent_that_ran_them(traced: Traced,
                                                                                streaming: bool) -> None:
    """Every step of a multi-agent workflow was recorded under its run with nothing saying which
    agent took it; concurrent runs each keep their own agents."""

    async def run() -> list[str]:
        runs = (handing_off(streaming).run(user_msg="refund o1"), answering("solo").run(user_msg="hi"))
        return [str(answer) for answer in await asyncio.gather(*runs)]

    assert asyncio.run(run()) == ["ok", "solo"]
    generation = f"MockFunctionCallingLLM.{'astream_chat' if streaming else 'achat'}"
    steps = {trace[0]["input"]: [(r["type"], r["name"], r["metadata"].get("agent_name")) for r in trace]
             for trace in by_trace(traced.records()).values()}
    assert steps == {
        "refund o1": [("agent", "AgentWorkflow.run", None), ("agent", "triage", "triage"),
                      ("generation", generation, "triage"), ("tool", "handoff", "triage"),
                      ("agent", "billing", "billing"), ("generation", generation, "billing"),
                      ("tool", "refund", "billing"), ("generation", generation, "billing")],
        "hi": [("agent", "AgentWorkflow.run", None), ("agent", "solo", "solo"),
               ("generation", "MockFunctionCallingLLM.astream_chat", "solo")]}
    assert INTEGRATION.tracker is not None and not INTEGRATION.tracker.agents
    assert_nothing_held()
