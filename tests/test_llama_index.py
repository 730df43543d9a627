"""LlamaIndex auto-instrumentation with real llama-index-core pipelines (MockLLM, MockEmbedding)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.llms.types import CompletionResponse, LLMMetadata
from llama_index.core.embeddings.mock_embed_model import MockEmbedding
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.llms.mock import MockLLM
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.tools import FunctionTool

import autotrace
from autotrace import schema
from autotrace.integrations.llama_index import INTEGRATION
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("llama_index", "openai")

QUERY_TREE = [("chain", "RetrieverQueryEngine.query", [
    ("retriever", "VectorIndexRetriever.retrieve", [("embedding", "MockEmbedding.get_query_embedding", [])]),
    ("chain", "CompactAndRefine.synthesize", [("generation", "MockLLM.complete", [])]),
])]


@pytest.fixture
def index() -> Iterator[VectorStoreIndex]:
    previous = Settings._llm, Settings._embed_model
    Settings.llm = MockLLM(max_tokens=4)
    Settings.embed_model = MockEmbedding(embed_dim=8)
    yield VectorStoreIndex.from_documents([Document(text="Orders ship in 24 hours.", doc_id="d1"),
                                           Document(text="Refunds take five days.", doc_id="d2")])
    Settings._llm, Settings._embed_model = previous


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
    assert not INTEGRATION.tracker.open and not INTEGRATION.tracker.partial


def test_a_long_stream_is_held_only_to_the_value_limit(tmp_path: Path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("llama_index",),
                      max_value_bytes=1024)
    text = ""
    for i, response in enumerate(MockLLM(max_tokens=600).stream_complete("p")):
        text = response.text
        if i == 500:  # while it runs: the text so far cut to the limit, and at most one batch after it
            (held,) = INTEGRATION.tracker.partial.values()
            assert len(held[0]) <= 1024 + 1 and len(held) < 64
    assert len(text) > 2 * 1024
    (record,) = Traced(tmp_path / "t.db").records()
    assert record["name"] == "MockLLM.stream_complete"
    assert record["output"] == schema.truncate(text, 1024)  # the whole text, cut and marked at the limit
    assert not INTEGRATION.tracker.partial


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
    assert (record["type"], record["name"]) == ("tool", "FunctionTool.call")
    assert record["metadata"]["tool_name"] == "multiply" and record["output"] == 42
    assert record["input"] == {"kwargs": {"a": 6, "b": 7}}


class OpenAIBacked(CustomLLM):
    """A minimal LlamaIndex LLM calling a real OpenAI client (llama-index-llms-openai is not installed)."""

    base_url: str

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="gpt-4o-mini")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        client = openai.OpenAI(base_url=self.base_url, api_key="k", max_retries=0)
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
        return CompletionResponse(text=reply.choices[0].message.content, raw=reply)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError


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


class Scripted(CustomLLM):
    """An LLM that answers from a script, enough to drive a real ReAct agent."""

    replies: list[str]

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="scripted", is_chat_model=False)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self.replies.pop(0))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError


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
        ("generation", "Scripted.achat", []), ("tool", "FunctionTool.acall", []), ("generation", "Scripted.achat", []),
    ])]
    tool = next(r for r in records if r["type"] == "tool")
    assert tool["output"] == 42 and tool["metadata"]["tool_name"] == "multiply"


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
