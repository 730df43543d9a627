"""Fourth review of the LlamaIndex integration: what the earlier passes left wrong."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    DocumentBlock,
    ImageBlock,
    TextBlock,
)
from llama_index.core.embeddings.mock_embed_model import MockEmbedding
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.llms.mock import MockLLM
from llama_index.core.postprocessor.rankGPT_rerank import RankGPTRerank
from llama_index.core.schema import NodeWithScore, QueryBundle

import autotrace
from autotrace.integrations.llama_index import INTEGRATION
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.llama_doubles import FakeLLM, OpenAIBacked
from tests.test_llama_index_edges import ASYNC_QUERY

pytestmark = pytest.mark.integrations("llama_index")


class Permuting(FakeLLM):
    """A RankGPT reranker's LLM: puts the second passage first."""

    model = "permuting"

    def answer(self, prompt: str) -> CompletionResponse:
        return CompletionResponse(text="[2] > [1]")


class Replying(FakeLLM):
    """A chat LLM giving ``reply`` as it is (its ``raw`` as a provider's client gave it)."""

    model = "replying"
    reply: ChatResponse

    @llm_chat_callback()
    def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        return self.reply


def test_rank_gpt_s_async_rerank_is_recorded_with_its_llm_call_under_it(traced: Traced) -> None:
    """``RankGPTRerank`` overrides ``apostprocess_nodes`` itself (not only ``_apostprocess_nodes``): in
    an async query it is a rerank as in a sync one, with its chat under it. A reranker defined after
    install whose ``apostprocess_nodes`` delegates to its base's is wrapped too, and recorded once."""

    class Delegating(RankGPTRerank):
        async def apostprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None,
                                     query_str: str | None = None) -> list[NodeWithScore]:
            return await super().apostprocess_nodes(nodes, query_bundle, query_str)

    Settings.embed_model, previous = MockEmbedding(embed_dim=8), Settings._embed_model
    try:
        index = VectorStoreIndex.from_documents([Document(text="Orders ship in 24 hours.", doc_id="d1"),
                                                 Document(text="Refunds take five days.", doc_id="d2")])
        engine = index.as_query_engine(similarity_top_k=2, llm=MockLLM(max_tokens=4), node_postprocessors=[
            RankGPTRerank(llm=Permuting(), top_n=2)])
        response = asyncio.run(engine.aquery("refunds?"))
        delegated = asyncio.run(Delegating(llm=Permuting(), top_n=1).apostprocess_nodes(
            response.source_nodes, query_str="orders?"))
    finally:
        Settings._embed_model = previous
    assert len(response.source_nodes) == 2 and len(delegated) == 1
    records = [r for r in traced.records() if r["name"] != "MockEmbedding.get_text_embedding_batch"]  # the index's
    assert shape(records) == [
        ("chain", "RetrieverQueryEngine.aquery", [
            *ASYNC_QUERY,
            ("retriever", "RankGPTRerank.apostprocess_nodes", [("generation", "Permuting.achat", [])]),
            ("chain", "CompactAndRefine.asynthesize", [("generation", "MockLLM.acomplete", [])]),
        ]),
        ("retriever", "Delegating.apostprocess_nodes", [("generation", "Permuting.achat", [])]),
    ]
    reranked = records[3]
    assert (reranked["input"], reranked["metadata"]["operation"], reranked["metadata"]["doc_count"]) == (
        "refunds?", "rerank", 2)
    assert [d["content"] for d in reranked["output"]] == [n.node.get_content() for n in response.source_nodes]
    assert records[-2]["input"] == "orders?"
    tracker = INTEGRATION.tracker
    assert tracker is not None and not (tracker.open or tracker.skipped)


def test_uninstall_unwraps_the_rerankers_and_stops_wrapping_new_ones(traced: Traced) -> None:
    """After uninstall, no ``apostprocess_nodes`` is autotrace's, and a class defined then is left alone."""
    autotrace.uninstall()

    class Later(RankGPTRerank):
        async def apostprocess_nodes(self, *args: Any, **kwargs: Any) -> list[NodeWithScore]:
            return []

    for cls in (RankGPTRerank, Later):
        assert not hasattr(cls.__dict__["apostprocess_nodes"], "__wrapped__")


def test_a_message_s_media_blocks_are_noted_by_kind_and_size_never_as_bytes(traced: Traced) -> None:
    """A chat message's text is its ``content``; its images, audio and documents were dropped from the
    recorded input (a message of an image alone had no content). They are parts now, each noted: its
    inline bytes by type and size (never the bytes), a web address kept, a data URL noted."""
    image = b"\x89PNG\r\n\x1a\n" + b"x" * 3000
    message = ChatMessage(role="user", blocks=[
        TextBlock(text="what is this?"), ImageBlock(image=image), ImageBlock(url="https://example.test/a.png"),
        ImageBlock(url="data:image/png;base64," + "A" * 2000), AudioBlock(audio=b"RIFF" + b"a" * 996, format="wav"),
        DocumentBlock(data=b"%PDF-1.4" + b"d" * 100, title="terms.pdf")])
    MockLLM(max_tokens=2).chat([message, ChatMessage(role="user", blocks=[ImageBlock(image=image)])])
    generation = traced.one()
    assert generation["input"] == [
        {"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image", "image": "<image/png inline, 4012 bytes>"},  # ImageBlock holds it as base64
            {"type": "image", "url": "https://example.test/a.png"},
            {"type": "image", "url": "<image/png base64, 2022 chars>"},
            {"type": "audio", "audio": "<audio/wav inline, 1000 bytes>"},
            {"type": "document", "data": "<application/pdf inline, 144 bytes>", "title": "terms.pdf"}]},
        {"role": "user", "content": [{"type": "image", "image": "<image/png inline, 4012 bytes>"}]}]
    assert "xxxx" not in str(generation) and "AAAA" not in str(generation)


def test_usage_read_from_a_raw_reply_keeps_its_cached_and_reasoning_tokens(traced: Traced) -> None:
    """With no model call of its own recorded (the OpenAI integration off, or a client autotrace does
    not patch), a generation's usage is read from the reply's ``raw``: its cached and reasoning
    tokens were dropped. OpenAI's, and Anthropic's (whose ``input_tokens`` leave its cache out)."""
    with FakeOpenAI() as fake:
        fake.script(reply="hi", usage=(10, 3), cached_tokens=4, reasoning_tokens=2)
        OpenAIBacked(base_url=fake.base_url).complete("hello")
    anthropic = {"usage": {"input_tokens": 5, "output_tokens": 7, "cache_read_input_tokens": 20,
                           "cache_creation_input_tokens": 3}}
    Replying(reply=ChatResponse(message=ChatMessage(role="assistant", content="ok"), raw=anthropic)).chat(
        [ChatMessage(role="user", content="hello")])
    openai_usage, anthropic_usage = (r["usage"] for r in traced.records())
    assert openai_usage == {"input": 10, "output": 3, "total": 13, "input_cached_tokens": 4,
                            "output_reasoning_tokens": 2}
    assert anthropic_usage == {"input": 28, "output": 7, "total": 35, "input_cached_tokens": 20,
                               "input_cache_write_tokens": 3}
