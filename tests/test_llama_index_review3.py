"""LlamaIndex with real llama-index-core (third review): autotrace uninstalled while LlamaIndex calls
run, then installed again; a structured LLM's stream; an async query's rerankers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.embeddings.mock_embed_model import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms.mock import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from opentelemetry import trace
from pydantic import BaseModel

import autotrace
from autotrace.export.local_store import LocalStore
from autotrace.integrations.llama_index import INTEGRATION
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.llama_doubles import OpenAIBacked, indexed
from tests.test_llama_index_edges import ASYNC_QUERY, SYNC_QUERY, TEXT, Ranking

pytestmark = pytest.mark.integrations("llama_index", "openai")

UNINSTALLED = "autotrace was uninstalled before the span ended"


class Waiting(BaseRetriever):
    """A retriever that says when it runs and waits for ``go`` before answering with one node."""

    def __init__(self) -> None:
        super().__init__()
        self.running, self.go = threading.Event(), threading.Event()

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        self.running.set()
        assert self.go.wait(10)
        return [NodeWithScore(node=TextNode(text="Orders ship in 24 hours.", id_="n1"), score=1.0)]


def reinstalled(traced: Traced) -> Path:
    """autotrace installed again, into a store of its own (returned); the first store is ``traced.path``."""
    path = traced.path.with_name("again.db")
    autotrace.install(local_store="on", local_store_path=path, integrations=("llama_index", "openai"),
                      export_interval=0.05)
    return path


def stored(path: Path) -> list[dict[str, Any]]:
    assert autotrace.flush(10.0)
    return sorted(LocalStore(path, read_only=True).observations(), key=lambda r: (r["start_ns"], r["name"]))


def ours() -> int:
    """How many autotrace span handlers LlamaIndex's root dispatcher has."""
    return sum(type(h).class_name() == "AutotraceSpanHandler" for h in get_dispatcher().span_handlers)


def test_a_query_running_when_autotrace_is_uninstalled_leaves_no_span_current(traced: Traced) -> None:
    """A query in a worker thread is retrieving when another thread uninstalls autotrace, then installs
    it again. Its observations ended at the uninstall (interrupted: exported with the first install);
    what it ran after the new install is recorded by that install, in the query's trace. Its spans'
    exits still gave their context back: the worker's next request is a trace of its own (it no
    longer joins the ended query's trace)."""
    retriever = Waiting()
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(max_tokens=4))
    seen: list[Any] = []

    def worker() -> None:
        seen.append(str(engine.query("first")))
        seen.append(trace.get_current_span().get_span_context().is_valid)
        with autotrace.start_span("next request"):
            seen.append(str(engine.query("second")))

    thread = threading.Thread(target=worker)
    thread.start()
    assert retriever.running.wait(10)
    autotrace.uninstall()
    again = reinstalled(traced)
    retriever.go.set()
    thread.join(10)
    assert seen == [TEXT, False, TEXT]
    first = stored(traced.path)
    assert shape(first) == [("chain", "RetrieverQueryEngine.query", [("retriever", "Waiting.retrieve", [])])]
    assert [(r["level"], r["status_message"], r["output"]) for r in first] == [("WARNING", UNINSTALLED, None)] * 2
    records = stored(again)
    assert shape(records) == [  # the rest of the first query, in its trace; the next request, in one of its own
        ("chain", "CompactAndRefine.synthesize", [("generation", "MockLLM.complete", [])]),
        ("span", "next request", [("chain", "RetrieverQueryEngine.query", [
            ("retriever", "Waiting.retrieve", []),
            ("chain", "CompactAndRefine.synthesize", [("generation", "MockLLM.complete", [])])])])]
    late, request = records[0], next(r for r in records if r["name"] == "next request")
    assert (late["trace_id"], late["parent_id"]) == (first[0]["trace_id"], first[0]["id"])
    assert request["parent_id"] is None and request["trace_id"] != first[0]["trace_id"]
    assert ours() == 1  # the first install's handlers left once the query's spans had exited


@pytest.fixture
def index() -> Iterator[VectorStoreIndex]:
    yield from indexed("Orders ship in 24 hours.", "Refunds take five days.")


def test_a_streaming_response_read_after_autotrace_is_installed_again_is_not_joined_to_its_ended_query(
        index: VectorStoreIndex, traced: Traced) -> None:
    """A streaming query's chains, open until its response is read, end when autotrace is uninstalled
    (with the text read so far: none); the response is read after a new install: its LLM call is
    recorded by that install, on its own (not under a chain of the first install, never exported
    with it)."""
    response = index.as_query_engine(streaming=True).query("later")
    autotrace.uninstall()
    assert ours() == 0 and not INTEGRATION.patcher.active  # nothing was running: all taken out at once
    again = reinstalled(traced)
    assert "".join(response.response_gen) == TEXT
    first = stored(traced.path)
    assert shape(first) == [("chain", "RetrieverQueryEngine.query", [
        *SYNC_QUERY, ("chain", "CompactAndRefine.synthesize", [])])]
    chains = [(r["level"], r["status_message"], r["output"]) for r in first if r["type"] == "chain"]
    assert chains == [("WARNING", UNINSTALLED, "")] * 2
    (generation,) = stored(again)
    assert (generation["name"], generation["parent_id"], generation["output"]) == ("MockLLM.stream_complete", None, TEXT)


class Answer(BaseModel):
    text: str


REPLY = '{"text":"hi there"}'  # as the structured LLM writes its answer: the model's, re-serialised


@pytest.mark.parametrize("method", ["stream_chat", "astream_chat"])
def test_a_structured_llm_s_stream_is_one_generation_with_its_answer_and_usage(traced: Traced, method: str) -> None:
    """``as_structured_llm(...).stream_chat`` streams partial objects (chunks without a ``delta``: each
    one's content is the whole answer so far), from its LLM's stream, started while the caller reads
    it: one model call, one generation, named after the structured LLM, whose output is its answer
    and whose usage is the model's."""
    messages = [ChatMessage(role="user", content="greet")]
    with FakeOpenAI() as fake:
        fake.script(reply='{"text": "hi there"}', usage=(10, 2), chunks=3)
        structured = OpenAIBacked(base_url=fake.base_url).as_structured_llm(Answer)

        async def read() -> list[Any]:
            return [chunk.raw async for chunk in await structured.astream_chat(messages)]

        with autotrace.start_chain("request"):
            raws = [c.raw for c in structured.stream_chat(messages)] if method == "stream_chat" else asyncio.run(read())
    assert raws[-1] == Answer(text="hi there")
    records = traced.records()
    assert shape(records) == [("chain", "request", [("generation", f"StructuredLLM.{method}", [])])]
    generation = records[1]
    assert generation["input"] == [{"role": "user", "content": "greet"}]
    assert generation["output"] == {"role": "assistant", "content": REPLY}
    assert (generation["model"], generation["usage"]) == (
        "gpt-4o-mini", {"input": 10, "output": 2, "total": 12, "input_cached_tokens": 0, "output_reasoning_tokens": 0})


def test_an_async_query_records_its_rerankers_with_the_llm_calls_they_make(traced: Traced) -> None:
    """LlamaIndex makes a postprocessor's ``_postprocess_nodes`` a span, not the ``_apostprocess_nodes``
    that ``LLMRerank`` overrides to call its LLM asynchronously: in an async query, the reranker is
    recorded as in a sync one (its LLM call under it), and a postprocessor whose async call runs its
    ``_postprocess_nodes`` (in a thread) is recorded once."""
    from llama_index.core.postprocessor import LLMRerank, SimilarityPostprocessor

    Settings.embed_model, previous = MockEmbedding(embed_dim=8), Settings._embed_model
    try:
        index = VectorStoreIndex.from_documents([Document(text="Orders ship in 24 hours.", doc_id="d1"),
                                                 Document(text="Refunds take five days.", doc_id="d2")])
        engine = index.as_query_engine(similarity_top_k=2, llm=MockLLM(max_tokens=4), node_postprocessors=[
            LLMRerank(llm=Ranking(), top_n=2, choice_batch_size=5), SimilarityPostprocessor(similarity_cutoff=5.0)])
        response = asyncio.run(engine.aquery("refunds?"))
    finally:
        Settings._embed_model = previous
    assert [(n.node.text, n.score) for n in response.source_nodes] == [("Refunds take five days.", 9.0)]
    records = [r for r in traced.records() if r["name"] != "MockEmbedding.get_text_embedding_batch"]  # the index's
    assert shape(records) == [("chain", "RetrieverQueryEngine.aquery", [
        *ASYNC_QUERY,
        ("retriever", "LLMRerank.apostprocess_nodes", [("generation", "Ranking.acomplete", [])]),
        ("retriever", "SimilarityPostprocessor.apostprocess_nodes", []),
        ("chain", "CompactAndRefine.asynthesize", [("generation", "MockLLM.acomplete", [])]),
    ])]
    reranked, filtered = (r for r in records if r["metadata"].get("operation") == "rerank")
    assert (reranked["input"], reranked["metadata"]["scores"], reranked["metadata"]["doc_count"]) == (
        "refunds?", [9.0, 3.0], 2)
    assert (filtered["input"], filtered["metadata"]["scores"], filtered["metadata"]["doc_count"]) == (
        "refunds?", [9.0], 1)
    tracker = INTEGRATION.tracker
    assert tracker is not None and not (tracker.open or tracker.skipped)
