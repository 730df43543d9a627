"""The llama_index integration on the oldest claimed llama-index-core (0.12.0) and on the newest: a
chat engine's streaming reply, written before the caller reads it, ends its chain with the reply's
text. (0.12.0's writer leaves ``response`` unset until the caller has read the stream.)"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import autotrace
from tests.helpers import Traced, shape

SimpleChatEngine = pytest.importorskip("llama_index.core.chat_engine").SimpleChatEngine
MockLLM = pytest.importorskip("llama_index.core.llms.mock").MockLLM

pytestmark = pytest.mark.integrations("llama_index")


def _ended_chain() -> list[dict[str, Any]]:
    """The chains recorded so far (the store's reads flush first)."""
    assert autotrace.flush(10.0)
    store = autotrace.local_store()
    assert store is not None
    return [r for r in store.observations() if r["type"] == "chain"]


def _wait_for_chain() -> None:
    deadline = time.monotonic() + 10
    while not _ended_chain():
        assert time.monotonic() < deadline, "the chat's chain never ended"
        time.sleep(0.01)


def test_a_streamed_chat_reply_written_before_it_is_read_is_the_chain_s_output(traced: Traced) -> None:
    reply = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=4)).stream_chat("hello")
    _wait_for_chain()  # the writer has ended: nothing read yet
    text = "".join(reply.response_gen)
    records = traced.records()
    assert shape(records) == [("chain", "SimpleChatEngine.stream_chat", [("generation", "MockLLM.stream_chat", [])])]
    assert text.strip() == "text text text text"
    assert (records[0]["output"], records[0]["level"]) == ("text text text text", "DEFAULT")


def test_an_async_streamed_chat_reply_written_before_it_is_read_is_the_chain_s_output(traced: Traced) -> None:
    async def scenario() -> str:
        reply = await SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=4)).astream_chat("hello")
        deadline = time.monotonic() + 10
        while not _ended_chain():  # the writer's task runs while this one sleeps
            assert time.monotonic() < deadline, "the chat's chain never ended"
            await asyncio.sleep(0.01)
        return "".join([token async for token in reply.async_response_gen()])

    text = asyncio.run(scenario())
    records = traced.records()
    assert shape(records) == [("chain", "SimpleChatEngine.astream_chat",
                               [("generation", "MockLLM.astream_chat", [])])]
    assert text.strip() == "text text text text"
    assert (records[0]["output"], records[0]["level"]) == ("text text text text", "DEFAULT")


@pytest.mark.parametrize("method", ["stream_chat", "astream_chat"])
def test_a_context_chat_engine_s_streamed_reply_is_the_chain_s_output(traced: Traced, method: str) -> None:
    """0.12.0's context chat engines start no writer: the caller reads the LLM's stream itself."""
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.embeddings.mock_embed_model import MockEmbedding

    index = VectorStoreIndex.from_documents([Document(text="Orders ship in 24 hours.")],
                                            embed_model=MockEmbedding(embed_dim=8))
    engine = index.as_chat_engine(chat_mode="context", llm=MockLLM(max_tokens=4),
                                  embed_model=MockEmbedding(embed_dim=8))

    async def read_async() -> str:
        reply = await engine.astream_chat("hello")
        return "".join([token async for token in reply.async_response_gen()])

    text = "".join(engine.stream_chat("hello").response_gen) if method == "stream_chat" else asyncio.run(read_async())
    records = [r for r in traced.records() if r["name"] != "MockEmbedding.get_text_embedding_batch"]  # the index
    a = "a" if method == "astream_chat" else ""
    assert shape(records) == [("chain", f"ContextChatEngine.{method}", [
        ("retriever", f"VectorIndexRetriever.{a}retrieve", [("embedding", f"MockEmbedding.{a}get_query_embedding", [])]),
        ("chain", f"CompactAndRefine.{a}synthesize", [("generation", f"MockLLM.{a}stream_complete", [])]),
    ])]
    assert text.strip() == "text text text text"
    assert [(r["output"], r["level"]) for r in records if r["type"] in ("chain", "generation")] == [(text, "DEFAULT")] * 3
