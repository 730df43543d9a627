"""LlamaIndex with real llama-index-core: calls cancelled or timed out. A chat engine's
streaming reply whose writer is cancelled (its event loop ending), an agent's tool step cancelled with
its run before its tool ran, and the async entry points (query engines plain and streamed, retrievers,
OpenAI embeddings on a loopback server, ingestion) cancelled mid-call: each observation ends once,
interrupted (WARNING) where the cancellation reached it, with what it had."""

import asyncio
import gc
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.embeddings.mock_embed_model import MockEmbedding
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.mock import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.objects import ObjectRetriever, SimpleToolNodeMapping
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.core.tools import FunctionTool
from llama_index.embeddings.openai import OpenAIEmbedding

import autotrace
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.llama_doubles import FakeLLM, calls, scripted
from tests.test_llama_index_chat_and_workflow_agents import assert_nothing_held, by_trace

pytestmark = pytest.mark.integrations("llama_index")

CANCELLED = "CancelledError"
ASSISTANT_ONE = {"role": "assistant", "content": "one "}


class Hanging(FakeLLM):
    """A model that answers "one " then never goes on (``entered`` set once it hangs)."""

    model = "hanging"
    entered: Any = None

    async def _hang(self) -> None:
        self.entered.set()
        await asyncio.Event().wait()

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        await self._hang()
        return CompletionResponse(text="never")

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> AsyncIterator[CompletionResponse]:
        async def chunks() -> AsyncIterator[CompletionResponse]:
            yield CompletionResponse(text="one ", delta="one ")
            await self._hang()
            yield CompletionResponse(text="one two", delta="two")

        return chunks()

    @llm_chat_callback()
    async def astream_chat(self, messages: Any, **kwargs: Any) -> AsyncIterator[ChatResponse]:
        async def chunks() -> AsyncIterator[ChatResponse]:
            yield ChatResponse(message=ChatMessage(role="assistant", content="one "), delta="one ")
            await self._hang()
            yield ChatResponse(message=ChatMessage(role="assistant", content="one two"), delta="two")

        return chunks()


async def cancelled_when(entered: asyncio.Event, call: Any) -> None:
    """Run ``call`` in a task, cancel it once ``entered`` is set; the cancellation reaches the caller."""
    task = asyncio.ensure_future(call)
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def levels(records: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(r["name"], r["level"], r["status_message"]) for r in records]


def test_a_chat_reply_whose_writer_is_cancelled_is_interrupted_with_the_text_read(traced: Traced) -> None:
    """A chat engine's streaming reply is written by a task of its own; cancelled (here: the event
    loop ending while the model hangs), the reply records no error, so its chain ended DEFAULT with
    no output, under an interrupted generation."""

    async def run() -> str:
        with autotrace.tenant("acme"):
            engine = SimpleChatEngine.from_defaults(llm=Hanging(entered=asyncio.Event()))
            reply = await engine.astream_chat("hi")
        tokens = reply.async_response_gen()
        return await tokens.__anext__()  # then asyncio.run cancels the writer, still waiting for the model

    assert asyncio.run(run()) == "one "
    gc.collect()
    records = traced.records()
    assert shape(records) == [("chain", "SimpleChatEngine.astream_chat", [("generation", "Hanging.astream_chat", [])])]
    chain, generation = records
    assert levels(records) == [("SimpleChatEngine.astream_chat", "WARNING", CANCELLED),
                               ("Hanging.astream_chat", "WARNING", CANCELLED)]
    assert (chain["input"], chain["output"], generation["output"]) == ("hi", "one ", ASSISTANT_ONE)
    assert {r["tenant"] for r in records} == {"acme"}
    assert_nothing_held()


async def slow_lookup(order_id: str) -> str:
    """Look an order up."""
    return f"{order_id} shipped"


class Gate(BaseRetriever):
    """Finds the tool at once the first time (the agent's step), then never again (its tool step)."""

    def __init__(self, tool: FunctionTool, mapping: SimpleToolNodeMapping, entered: asyncio.Event) -> None:
        super().__init__()
        self.tool, self.mapping, self.entered, self.calls = tool, mapping, entered, 0

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        raise NotImplementedError

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        self.calls += 1
        if self.calls > 1:
            self.entered.set()
            await asyncio.Event().wait()
        return [NodeWithScore(node=self.mapping.to_node(self.tool), score=1.0)]


def test_a_tool_step_cancelled_before_its_tool_ran_is_interrupted(traced: Traced) -> None:
    """An agent looking its tools up (``tool_retriever``) in its ``call_tool`` step when the run is
    cancelled (its task, or ``handler.cancel_run()``): the step returns None, and the tool call it
    handled was recorded as a DEFAULT tool, as if it had run and answered nothing."""
    from workflows.errors import WorkflowCancelledByUser

    def agent(entered: asyncio.Event) -> FunctionAgent:
        tool = FunctionTool.from_defaults(async_fn=slow_lookup)
        mapping = SimpleToolNodeMapping.from_objects([tool])
        return FunctionAgent(tool_retriever=ObjectRetriever(retriever=Gate(tool, mapping, entered),
                                                            object_node_mapping=mapping),
                             llm=scripted(calls("slow_lookup", order_id="o1")))

    async def run() -> None:
        entered = asyncio.Event()
        handler = agent(entered).run(user_msg="where is o1")

        async def result() -> Any:
            return await handler

        await cancelled_when(entered, result())
        entered = asyncio.Event()
        handler = agent(entered).run(user_msg="where is o1")
        await entered.wait()
        await handler.cancel_run()
        with pytest.raises(WorkflowCancelledByUser):
            await handler

    asyncio.run(run())
    by_task, by_user = by_trace(traced.records()).values()
    for records in (by_task, by_user):
        assert shape(records) == [("agent", "FunctionAgent.run", [
            ("retriever", "Gate.aretrieve", []), ("generation", "MockFunctionCallingLLM.astream_chat", []),
            ("tool", "slow_lookup", []), ("retriever", "Gate.aretrieve", [])])]
        tool = records[3]
        assert (tool["input"], tool["output"], tool["metadata"]["tool_call_id"]) == ({"order_id": "o1"}, None,
                                                                                     "c-slow_lookup")
        assert [r["level"] for r in records] == ["WARNING", "DEFAULT", "DEFAULT", "WARNING", "WARNING"]
    # the run's task cancelled: the run ends first, and the call with it (as it ended); LlamaIndex leaves the
    # step's task pending, to be destroyed (GeneratorExit) or cancelled as the loop closes
    assert [r["status_message"] for r in by_task[:4]] == [CANCELLED, None, None, CANCELLED]
    assert by_task[4]["status_message"] in ("GeneratorExit", CANCELLED)
    # cancel_run(): LlamaIndex cancels the step first, which returns None
    assert [r["status_message"] for r in by_user] == ["workflow cancelled by user", None, None, "step cancelled",
                                                      CANCELLED]
    assert_nothing_held()


def test_async_entry_points_cancelled_mid_call_end_interrupted_once(traced: Traced) -> None:
    """Guards for what already held: a query engine's ``aquery`` (plain, and streamed then read in
    part), a retriever, OpenAI embeddings (their request held by a loopback server) and an ingestion
    pipeline, each cancelled mid-call: WARNING where the cancellation reached, DEFAULT what
    had finished, the partial text kept, nothing held, the cancellation raised unchanged."""
    previous = Settings._llm, Settings._embed_model
    Settings.llm, Settings.embed_model = MockLLM(max_tokens=4), MockEmbedding(embed_dim=8)
    try:
        index = VectorStoreIndex.from_documents([Document(text="Orders ship in 24 hours.", doc_id="d1")])
    finally:
        Settings._llm, Settings._embed_model = previous

    async def run(fake: FakeOpenAI) -> None:
        entered = asyncio.Event()
        llm = Hanging(entered=entered)
        await cancelled_when(entered, index.as_query_engine(llm=llm).aquery("plain"))
        entered.clear()
        streamed = await index.as_query_engine(llm=llm, streaming=True).aquery("streamed")
        tokens: list[str] = []

        async def read() -> None:
            async for token in streamed.async_response_gen():
                tokens.append(token)

        await cancelled_when(entered, read())
        assert tokens == ["one "]
        embed = OpenAIEmbedding(api_base=fake.base_url, api_key="k", max_retries=0)
        for call in (index.as_retriever(embed_model=embed).aretrieve("retrieved"),
                     embed.aget_text_embedding_batch(["a", "b"]),
                     IngestionPipeline(transformations=[SentenceSplitter(), embed]).arun(
                         documents=[Document(text="one document")])):
            arrived.clear()
            await cancelled_when(arrived, call)  # once its request reached the server, which holds it

    loop: asyncio.AbstractEventLoop | None = None
    arrived, release, handlers = asyncio.Event(), threading.Event(), list[threading.Thread]()

    def hold(body: Any) -> None:
        """Answer only once released: the caller is cancelled meanwhile."""
        handlers.append(threading.current_thread())
        assert loop is not None
        loop.call_soon_threadsafe(arrived.set)
        release.wait(10)

    async def main(fake: FakeOpenAI) -> None:
        nonlocal loop
        loop = asyncio.get_running_loop()
        await run(fake)

    with FakeOpenAI(responder=hold) as fake:
        try:
            asyncio.run(main(fake))
        finally:
            release.set()
            for handler in handlers:  # each answers a caller that left: done before the test ends
                handler.join(10)
    gc.collect()
    records = [r for r in traced.records() if r["name"] != "MockEmbedding.get_text_embedding_batch"]  # the index's
    retrieval = ("retriever", "VectorIndexRetriever.aretrieve", [("embedding", "MockEmbedding.aget_query_embedding", [])])
    assert shape(records) == [
        ("chain", "RetrieverQueryEngine.aquery", [
            retrieval, ("chain", "CompactAndRefine.asynthesize", [("generation", "Hanging.acomplete", [])])]),
        ("chain", "RetrieverQueryEngine.aquery", [
            retrieval, ("chain", "CompactAndRefine.asynthesize", [("generation", "Hanging.astream_complete", [])])]),
        ("retriever", "VectorIndexRetriever.aretrieve", [("embedding", "OpenAIEmbedding.aget_query_embedding", [])]),
        ("embedding", "OpenAIEmbedding.aget_text_embedding_batch", []),
        ("chain", "IngestionPipeline.arun", [("embedding", "OpenAIEmbedding.aget_text_embedding_batch", [])])]
    assert [(r["level"], r["status_message"]) for r in records] == [
        ("WARNING", CANCELLED), ("DEFAULT", None), ("DEFAULT", None), ("WARNING", CANCELLED), ("WARNING", CANCELLED),
        ("WARNING", CANCELLED), ("DEFAULT", None), ("DEFAULT", None), ("WARNING", CANCELLED), ("WARNING", CANCELLED),
        ] + [("WARNING", CANCELLED)] * 5
    assert [r["output"] for r in records if r["type"] not in ("retriever", "embedding")] == [
        None, None, None, "one ", "one ", "one ", None]  # the streamed query's chains: the text read
    assert [r["input"] for r in records[-3:]] == [["a", "b"], {"documents": 1, "nodes": 0}, ["one document"]]
    assert_nothing_held()
