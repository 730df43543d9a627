"""LlamaIndex with real llama-index-core: usage an OpenAI call gives the generation that owns it, tool
calls that report their failure as their output (as exported), and a retriever's ``top_k``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse

import autotrace
from autotrace.testing.fake_openai import FakeOpenAI
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import Traced, install_default_tenant, shape
from tests.llama_doubles import OpenAIBacked, calls, indexed, lookup, scripted
from tests.test_llama_index_edges import FailingTool

pytestmark = pytest.mark.integrations("llama_index", "openai")


class StreamsUsage(OpenAIBacked):
    """As llama-index-llms-openai streams: usage asked for, each chunk's ``raw`` the API's chunk."""

    def chunks(self, prompt: str) -> Iterator[CompletionResponse]:
        stream = self._client().chat.completions.create(model=self.model, stream=True,
                                                        stream_options={"include_usage": True},
                                                        messages=[{"role": "user", "content": prompt}])
        text = ""
        for chunk in stream:
            delta = (chunk.choices[0].delta.content or "") if chunk.choices else ""
            text += delta
            yield CompletionResponse(text=text, delta=delta, raw=chunk)


@pytest.mark.parametrize("streamed", [False, True])
def test_usage_details_of_the_owned_openai_call_are_kept(traced: Traced, streamed: bool) -> None:
    """The OpenAI call a LlamaIndex LLM makes gives its generation exact usage (cached and reasoning
    tokens): the LLM's own reading of its ``raw`` reply, with fewer details, does not replace it."""
    with FakeOpenAI() as fake:
        fake.script(reply="hi there", usage=(100, 20), cached_tokens=60, reasoning_tokens=5, chunks=2)
        llm = StreamsUsage(base_url=fake.base_url)
        text = "".join(c.delta or "" for c in llm.stream_complete("ping")) if streamed else llm.complete("ping").text
    assert text == "hi there"
    records = traced.records()
    name = f"StreamsUsage.{'stream_complete' if streamed else 'complete'}"
    assert shape(records) == [("generation", name, [])]
    assert records[0]["usage"] == {"input": 100, "output": 20, "total": 120, "input_cached_tokens": 60,
                                   "output_reasoning_tokens": 5}


def test_a_tool_output_reporting_an_error_is_exported_as_a_failed_span(rx: OtlpReceiver) -> None:
    """A ToolOutput with ``is_error`` (a tool's own, or the one an agent makes for a tool the model made
    up) failed the tool call: ERROR as Langfuse reads it and as an OTLP span status (DESIGN: errors)."""
    install_default_tenant(rx, "llama", integrations=("llama_index",))
    try:
        assert FailingTool()("o-1").is_error
        agent = FunctionAgent(name="solo", tools=[lookup], llm=scripted(
            calls("lookupp", order_id="o1"), ChatMessage(role="assistant", content="sorry")))

        async def run() -> str:
            return str(await agent.run(user_msg="o1?"))

        assert asyncio.run(run()) == "sorry"
        assert autotrace.flush(10.0)
        spans = rx.wait_for_spans(5)
    finally:
        autotrace.uninstall()
    tools = [s for s in spans if s.attributes["langfuse.observation.type"] == "tool"]
    made_up = "Tool lookupp not found. Please select a tool that is available."
    assert [(s.name, s.attributes["langfuse.observation.level"], s.attributes["langfuse.observation.status_message"],
             s.status_code, s.status_message) for s in tools] == [
        ("lookup", "ERROR", "order service unavailable", 2, "order service unavailable"),
        ("lookupp", "ERROR", made_up, 2, made_up)]


@pytest.fixture
def index() -> Iterator[VectorStoreIndex]:
    yield from indexed("Orders ship in 24 hours.", "Refunds take five days.", "Returns are free.")


def test_a_retriever_records_how_many_documents_it_was_asked_for(index: VectorStoreIndex, traced: Traced) -> None:
    """``top_k`` (DESIGN: retriever fields) is the retriever's ``similarity_top_k``: a default index,
    with LlamaIndex's own vector store, has no store integration to give it."""
    nodes = index.as_retriever(similarity_top_k=2).retrieve("orders?")
    asyncio.run(index.as_query_engine(similarity_top_k=1).aquery("refunds?"))
    records = [r for r in traced.records() if r["type"] == "retriever"]
    assert [(r["name"], r["top_k"], r["doc_count"]) for r in records] == [
        ("VectorIndexRetriever.retrieve", 2, len(nodes)), ("VectorIndexRetriever.aretrieve", 1, 1)]
