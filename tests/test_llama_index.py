"""LlamaIndex auto-instrumentation with real llama-index-core pipelines (MockLLM, MockEmbedding)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse
from llama_index.core.llms.mock import MockLLM
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.tools import FunctionTool

import autotrace
from autotrace import bounds
from autotrace.integrations.llama_index import INTEGRATION
from autotrace.observation import STREAM_CLOSED
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.llama_doubles import FakeLLM, Flaky, OpenAIBacked, Scripted, indexed

pytestmark = pytest.mark.integrations("llama_index", "openai")


def assert_nothing_held() -> None:
    tracker = INTEGRATION.tracker
    assert tracker is not None
    assert not (tracker.open or tracker.streams or tracker.delegates or tracker.skipped)


QUERY_TREE = [("chain", "RetrieverQueryEngine.query", [
    ("retriever", "VectorIndexRetriever.retrieve", [("embedding", "MockEmbedding.get_query_embedding", [])]),
    ("chain", "CompactAndRefine.synthesize", [("generation", "MockLLM.complete", [])]),
])]


@pytest.fixture
def index() -> Iterator[VectorStoreIndex]:
    yield from indexed("Orders ship in 24 hours.", "Refunds take five days.")


def test_query_engine_tree_and_fields(index: VectorStoreIndex, traced: Traced) -> None:
    engine = index.as_query_engine(similarity_top_k=2)
    response = engine.query("when do orders ship?")
    records = traced.records()
    assert shape(records) == QUERY_TREE
    by_type = {r["type"]: r for r in records}
    retriever = by_type["retriever"]
    nodes = response.source_nodes
    assert retriever["input"] == "when do orders ship?"
    assert retriever["doc_count"] == len(nodes) == 2
    assert retriever["metadata"]["scores"] == [n.score for n in nodes]
    assert [d["id"] for d in retriever["output"]] == [n.node.node_id for n in nodes]
    gen = by_type["generation"]
    assert gen["output"] == str(response) and "when do orders ship?" in gen["input"]
    assert by_type["embedding"]["metadata"]["dimensions"] == 8
    assert INTEGRATION.tracker is not None and not INTEGRATION.tracker.open


def test_async_query(index: VectorStoreIndex, traced: Traced) -> None:
    asyncio.run(index.as_query_engine().aquery("refund time?"))
    assert shape(traced.records()) == [("chain", "RetrieverQueryEngine.aquery", [
        ("retriever", "VectorIndexRetriever.aretrieve", [("embedding", "MockEmbedding.aget_query_embedding", [])]),
        ("chain", "CompactAndRefine.asynthesize", [("generation", "MockLLM.acomplete", [])]),
    ])]


def test_streaming_generation_records_first_token_and_ends_with_the_stream(index: VectorStoreIndex,
                                                                           traced: Traced) -> None:
    response = index.as_query_engine(streaming=True).query("stream it")
    text = "".join(response.response_gen)
    records = traced.records()
    gen = next(r for r in records if r["type"] == "generation")
    assert gen["name"] == "MockLLM.stream_complete" and gen["output"] == text
    assert gen["completion_start_time"] is not None
    assert_nothing_held()


def test_a_long_stream_is_held_only_to_the_value_limit(tmp_path: Path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("llama_index",),
                      max_value_bytes=1024)
    text = ""
    for i, response in enumerate(MockLLM(max_tokens=600).stream_complete("p")):
        text = response.text
        if i == 500:  # while it runs: the text so far cut to the limit, and at most one batch after it
            (held,) = INTEGRATION.tracker.streams.values()
            assert len(held.deltas[0]) <= 1024 + bounds.REDACTION_MARGIN + 1 and len(held.deltas) < 64
    assert len(text) > 2 * 1024
    (record,) = Traced(tmp_path / "t.db").records()
    assert record["name"] == "MockLLM.stream_complete"
    assert record["output"] == bounds.truncate(text, 1024)  # the whole text, cut and marked at the limit
    assert_nothing_held()


def test_nesting_under_an_outer_observation_and_errors(index: VectorStoreIndex, traced: Traced) -> None:
    class Broken(BaseRetriever):
        def _retrieve(self, query_bundle: Any) -> list[Any]:
            raise LookupError("index offline")

    with autotrace.start_chain("request") as outer, pytest.raises(LookupError):
        Broken().retrieve("anything")
    records = traced.trace(outer.trace_id)
    assert shape(records) == [("chain", "request", [("retriever", "Broken.retrieve", [])])]
    assert records[1]["level"] == "ERROR" and "index offline" in records[1]["status_message"]


def test_tools(traced: Traced) -> None:
    def multiply(a: int, b: int) -> int:
        """Multiply two numbers."""
        return a * b

    tool = FunctionTool.from_defaults(fn=multiply)
    assert tool.call(a=6, b=7).raw_output == 42
    (record,) = traced.records()
    assert (record["type"], record["name"], record["metadata"]["method"]) == ("tool", "multiply", "FunctionTool.call")
    assert record["metadata"]["tool_name"] == "multiply" and record["output"] == "42"
    assert record["input"] == {"a": 6, "b": 7}


def test_llama_index_calling_openai_records_one_generation(traced: Traced) -> None:
    with FakeOpenAI() as fake:
        llm = OpenAIBacked(base_url=fake.base_url)
        assert llm.complete("ping").text == "echo: ping"
        assert len(fake.requests) == 1
    (record,) = traced.records()
    assert (record["type"], record["name"]) == ("generation", "OpenAIBacked.complete")
    assert record["usage"]["total"] > 0 and record["model"] == "gpt-4o-mini"


def test_uninstall_removes_the_handlers(index: VectorStoreIndex, traced: Traced) -> None:
    from llama_index.core.instrumentation import get_dispatcher

    handlers = len(get_dispatcher().span_handlers)
    autotrace.uninstall()
    assert len(get_dispatcher().span_handlers) == handlers - 1
    autotrace.install(local_store="on", local_store_path=traced.path.with_name("u.db"), integrations=(),
                      export_interval=0.05)
    index.as_query_engine().query("q")
    assert autotrace.flush(5) and autotrace.local_store().observations() == []


def test_react_agent_with_a_tool(traced: Traced) -> None:
    from llama_index.core.agent.workflow import ReActAgent

    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    llm = Scripted(replies=['Thought: I need to multiply.\nAction: multiply\nAction Input: {"a": 6, "b": 7}\n',
                            "Thought: I can answer.\nAnswer: 42\n"])
    agent = ReActAgent(tools=[FunctionTool.from_defaults(fn=multiply)], llm=llm, streaming=False)
    async def ask() -> Any:
        return await agent.run(user_msg="what is 6 times 7?")

    assert str(asyncio.run(ask())) == "42"
    records = traced.records()
    assert shape(records) == [("agent", "ReActAgent.run", [
        ("generation", "Scripted.achat", []), ("tool", "multiply", []), ("generation", "Scripted.achat", []),
    ])]
    tool = next(r for r in records if r["type"] == "tool")
    assert tool["output"] == "42" and tool["metadata"]["tool_name"] == "multiply"


def test_reranker_is_a_retrieval_step(index: VectorStoreIndex, traced: Traced) -> None:
    from llama_index.core.postprocessor import SimilarityPostprocessor

    engine = index.as_query_engine(similarity_top_k=2,
                                   node_postprocessors=[SimilarityPostprocessor(similarity_cutoff=-1.0)])
    response = engine.query("orders")
    records = traced.records()
    rerank = next(r for r in records if r["name"] == "SimilarityPostprocessor.postprocess_nodes")
    assert rerank["type"] == "retriever" and rerank["metadata"]["operation"] == "rerank"
    assert rerank["doc_count"] == len(response.source_nodes)
    parent = next(r for r in records if r["id"] == rerank["parent_id"])
    assert parent["name"] == "RetrieverQueryEngine.query"


def test_react_agent_streaming_records_one_generation_per_llm_call(traced: Traced) -> None:
    """ReActAgent streams by default: CustomLLM.astream_chat runs stream_chat lazily, outside its span."""
    from llama_index.core.agent.workflow import ReActAgent

    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    replies = ['Thought: I need to multiply.\nAction: multiply\nAction Input: {"a": 6, "b": 7}\n',
               "Thought: I can answer.\nAnswer: 42\n"]
    agent = ReActAgent(tools=[FunctionTool.from_defaults(fn=multiply)], llm=Scripted(replies=list(replies)))

    async def ask() -> Any:
        return await agent.run(user_msg="what is 6 times 7?")

    assert str(asyncio.run(ask())).strip() == "42"
    records = traced.records()
    assert shape(records) == [("agent", "ReActAgent.run", [
        ("generation", "Scripted.astream_chat", []), ("tool", "multiply", []),
        ("generation", "Scripted.astream_chat", []),
    ])]
    outputs = [r["output"] for r in records if r["type"] == "generation"]
    assert outputs == [{"role": "assistant", "content": reply} for reply in replies]
    assert_nothing_held()


class Metered(FakeLLM):
    """A streaming LLM that reports token usage on its last chunk, as OpenAI's streams do."""

    model = "metered"

    def chunks(self, prompt: str) -> Iterator[CompletionResponse]:
        usage = {"usage": {"prompt_tokens": 3, "completion_tokens": 2}}
        return (chunk for chunk in [CompletionResponse(text="Hel", delta="Hel"),
                                    CompletionResponse(text="Hello", delta="lo", raw=usage)])


def test_custom_llm_async_streams_record_one_generation_each(traced: Traced) -> None:
    llm = Metered()

    async def run() -> str:
        with autotrace.start_chain("request") as outer:
            first = await llm.astream_complete("hi")  # both open before either is read
            second = await llm.astream_chat([ChatMessage(role="user", content="hi")])
            assert "".join([r.delta for r in llm.stream_complete("sync")]) == "Hello"  # the same LLM, meanwhile
            assert [r.delta async for r in second] == ["Hel", "lo"]
            assert [r.delta async for r in first] == ["Hel", "lo"]
        return outer.trace_id

    records = traced.trace(asyncio.run(run()))
    assert shape(records) == [("chain", "request", [
        ("generation", "Metered.astream_complete", []), ("generation", "Metered.astream_chat", []),
        ("generation", "Metered.stream_complete", []),
    ])]
    by_name = {r["name"]: r for r in records}
    usage = {"input": 3, "output": 2, "total": 5}
    assert by_name["Metered.astream_complete"]["input"] == "hi"
    assert by_name["Metered.astream_complete"]["output"] == "Hello"
    assert by_name["Metered.astream_chat"]["input"] == [{"role": "user", "content": "hi"}]
    assert by_name["Metered.astream_chat"]["output"] == {"role": "assistant", "content": "Hello"}
    assert by_name["Metered.stream_complete"]["input"] == "sync"
    assert all(r["usage"] == usage and r["completion_start_time"] for r in records if r["type"] == "generation")
    assert_nothing_held()


def test_a_stream_failing_midway_ends_its_generation_with_the_error(traced: Traced) -> None:
    async def read_async() -> None:
        async for _ in await Flaky().astream_chat([ChatMessage(role="user", content="hi")]):
            pass

    with autotrace.start_chain("request") as outer:
        with pytest.raises(ConnectionError, match="connection reset mid-stream"):
            for _ in Flaky().stream_complete("hi"):
                pass
        with pytest.raises(ConnectionError, match="connection reset mid-stream"):
            asyncio.run(read_async())
    records = traced.trace(outer.trace_id)
    assert shape(records) == [("chain", "request", [
        ("generation", "Flaky.stream_complete", []), ("generation", "Flaky.astream_chat", []),
    ])]
    chain, sync, chat = records
    assert chain["level"] == "DEFAULT"
    for gen in (sync, chat):
        assert (gen["level"], gen["status_message"]) == ("ERROR", "ConnectionError: connection reset mid-stream")
    assert sync["output"] == "par" and chat["output"] == {"role": "assistant", "content": "par"}
    assert_nothing_held()


def test_an_abandoned_stream_ends_with_what_the_caller_received(traced: Traced) -> None:
    llm = MockLLM(max_tokens=8)
    messages = [ChatMessage(role="user", content="tell me a story")]
    with autotrace.start_chain("request") as outer:
        closed = llm.stream_chat(messages)
        assert [next(closed).delta, next(closed).delta] == ["text ", "text "]
        closed.close()  # break + close
        dropped = llm.stream_complete("a story")
        assert next(dropped).delta == "text "
        del dropped  # freed unfinished
        llm.stream_complete("never read")  # freed at once

        async def read_async() -> None:
            stream = await llm.astream_chat(messages)
            async for chunk in stream:
                assert chunk.delta == "text "
                break
            await stream.aclose()

        asyncio.run(read_async())
    records = traced.trace(outer.trace_id)
    assert shape(records) == [("chain", "request", [
        ("generation", "MockLLM.stream_chat", []), ("generation", "MockLLM.stream_complete", []),
        ("generation", "MockLLM.stream_complete", []), ("generation", "MockLLM.astream_chat", []),
    ])]
    assert [r["output"] for r in records[1:]] == [{"role": "assistant", "content": "text text "}, "text ", "",
                                                  {"role": "assistant", "content": "text "}]
    # each read in part (or not at all) by its caller: interrupted, with what it gave
    assert [(r["level"], r["status_message"]) for r in records] == [("DEFAULT", None)] + [
        ("WARNING", STREAM_CLOSED)] * 4
    assert_nothing_held()
