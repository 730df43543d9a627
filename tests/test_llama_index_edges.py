"""LlamaIndex edge cases with real llama-index-core pipelines: streaming queries read lazily."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import openai
import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.llms.types import CompletionResponse
from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.embeddings.mock_embed_model import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms.mock import MockLLM
from llama_index.core.tools import BaseTool, ToolMetadata, ToolOutput

import autotrace
from autotrace.integrations.llama_index import INTEGRATION
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.llama_doubles import FakeLLM, indexed

pytestmark = pytest.mark.integrations("llama_index")
dispatcher = get_dispatcher(__name__)


@pytest.fixture
def index() -> Iterator[VectorStoreIndex]:
    yield from indexed("Orders ship in 24 hours.")


def queries(records: list[dict]) -> list[dict]:
    return [r for r in records if r["name"] != "MockEmbedding.get_text_embedding_batch"]  # the index build


def assert_nothing_held() -> None:
    tracker = INTEGRATION.tracker
    assert tracker is not None and not (tracker.open or tracker.streams or tracker.skipped)


def test_a_streaming_query_is_one_tree_with_its_generation_under_the_synthesis(index: VectorStoreIndex,
                                                                              traced: Traced) -> None:
    """The LLM of a streaming query starts when the caller reads the response, after the query returned."""
    response = index.as_query_engine(streaming=True).query("when do orders ship?")
    text = "".join(response.response_gen)

    async def read_async() -> str:
        streamed = await index.as_query_engine(streaming=True).aquery("refunds?")
        return "".join([token async for token in streamed.async_response_gen()])

    assert asyncio.run(read_async()) == text == "text text text text"
    records = queries(traced.records())
    assert shape(records) == [
        ("chain", "RetrieverQueryEngine.query", [
            ("retriever", "VectorIndexRetriever.retrieve", [("embedding", "MockEmbedding.get_query_embedding", [])]),
            ("chain", "CompactAndRefine.synthesize", [("generation", "MockLLM.stream_complete", [])]),
        ]),
        ("chain", "RetrieverQueryEngine.aquery", [
            ("retriever", "VectorIndexRetriever.aretrieve", [("embedding", "MockEmbedding.aget_query_embedding", [])]),
            ("chain", "CompactAndRefine.asynthesize", [("generation", "MockLLM.astream_complete", [])]),
        ]),
    ]
    assert len({r["trace_id"] for r in records}) == 2
    chains = [r for r in records if r["type"] == "chain"]
    assert [r["output"] for r in chains] == [text] * 4  # the streamed text, not the response object
    assert all(r["level"] == "DEFAULT" for r in records)
    assert_nothing_held()


def test_a_chat_engine_stream_nests_its_generation_under_the_synthesis(index: VectorStoreIndex,
                                                                       traced: Traced) -> None:
    """The chat engine reads the synthesis stream in a thread it starts while its own span is open."""
    streamed = index.as_chat_engine(chat_mode="context").stream_chat("hello")
    assert "".join(streamed.response_gen) == "text text text text"
    records = queries(traced.records())
    assert shape(records) == [("chain", "ContextChatEngine.stream_chat", [
        ("retriever", "VectorIndexRetriever.retrieve", [("embedding", "MockEmbedding.get_query_embedding", [])]),
        ("chain", "CompactAndRefine.synthesize", [("generation", "MockLLM.stream_complete", [])]),
    ])]
    assert_nothing_held()


def test_a_streaming_query_closed_early_or_never_read_ends_its_chains(index: VectorStoreIndex,
                                                                     traced: Traced) -> None:
    with autotrace.start_chain("request") as outer:
        closed = index.as_query_engine(streaming=True).query("closed")
        tokens = closed.response_gen
        assert next(tokens) == "text "
        tokens.close()  # break + close
        index.as_query_engine(streaming=True).query("never read")  # freed at once
        gc.collect()
    records = traced.trace(outer.trace_id)
    assert shape(records) == [("chain", "request", [
        ("chain", "RetrieverQueryEngine.query", [
            ("retriever", "VectorIndexRetriever.retrieve", [("embedding", "MockEmbedding.get_query_embedding", [])]),
            ("chain", "CompactAndRefine.synthesize", [("generation", "MockLLM.stream_complete", [])]),
        ]),
        ("chain", "RetrieverQueryEngine.query", [
            ("retriever", "VectorIndexRetriever.retrieve", [("embedding", "MockEmbedding.get_query_embedding", [])]),
            ("chain", "CompactAndRefine.synthesize", []),
        ]),
    ])]
    by_input = {r["input"]: r["output"] for r in records if r["name"] == "RetrieverQueryEngine.query"}
    assert by_input == {"closed": "text ", "never read": ""}
    # the chains ended with what was streamed, interrupted as the generation its caller closed was
    assert [r["level"] for r in records if r["type"] in ("chain", "generation")] == ["DEFAULT"] + ["WARNING"] * 5
    assert all(r["level"] == "DEFAULT" for r in records if r["type"] not in ("chain", "generation"))
    assert_nothing_held()


class Answerer(BaseQueryEngine):
    """A query engine answering with a response stream that says when it was closed."""

    def __init__(self) -> None:
        super().__init__(callback_manager=None)
        self.closed: list[str] = []

    def _get_prompt_modules(self) -> dict[str, Any]:
        return {}

    def _tokens(self) -> Iterator[str]:
        try:
            yield from ("one ", "two ")
        finally:
            self.closed.append("sync")

    async def _atokens(self) -> Any:
        try:
            for token in ("one ", "two "):
                yield token
        finally:
            self.closed.append("async")

    def _query(self, query_bundle: Any) -> StreamingResponse:
        return StreamingResponse(response_gen=self._tokens())

    async def _aquery(self, query_bundle: Any) -> AsyncStreamingResponse:
        return AsyncStreamingResponse(response_gen=self._atokens())


def test_a_response_stream_closed_early_closes_what_it_relays_before_the_close_returns(traced: Traced) -> None:
    """Closing the (relayed) response stream closes the stream it reads before returning, as closing
    it untraced does, for ``aclose`` as for ``close`` (not a step of the event loop later)."""
    answerer = Answerer()
    tokens = answerer.query("q").response_gen
    assert next(tokens) == "one "
    tokens.close()
    assert answerer.closed == ["sync"]

    async def read_one_and_close() -> list[str]:
        atokens = (await answerer.aquery("q")).response_gen
        assert await atokens.__anext__() == "one "
        await atokens.aclose()
        return list(answerer.closed)  # no step of the event loop since the close

    assert asyncio.run(read_one_and_close()) == ["sync", "async"]
    records = traced.records()
    assert [(r["name"], r["type"], r["output"], r["level"]) for r in records] == [
        ("Answerer.query", "chain", "one ", "WARNING"), ("Answerer.aquery", "chain", "one ", "WARNING")]
    assert_nothing_held()


class Metered(FakeLLM):
    """An LLM whose raw response carries usage under Anthropic / OpenAI Responses names."""

    model = "metered"

    def answer(self, prompt: str) -> CompletionResponse:
        usage = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 6}  # a provider's total wins
        return CompletionResponse(text="ok", raw={"usage": usage} if prompt == "dict" else SimpleNamespace(
            usage=SimpleNamespace(input_tokens=3, output_tokens=2)))


def test_usage_under_input_and_output_token_names(traced: Traced) -> None:
    Metered().complete("dict")
    Metered().complete("object")
    assert [r["usage"] for r in traced.records()] == [{"input": 3, "output": 2, "total": 6},
                                                      {"input": 3, "output": 2, "total": 5}]


class ArrayEmbedding(BaseEmbedding):
    """An embedding model returning numpy vectors."""

    def _get_query_embedding(self, query: str) -> Any:
        return np.ones(4)

    def _get_text_embedding(self, text: str) -> Any:
        return np.ones(4)

    async def _aget_query_embedding(self, query: str) -> Any:
        return np.ones(4)


class OddResult:
    @property
    def content(self) -> str:
        raise RuntimeError("unreadable")


class OddTool(BaseTool):
    @property
    def metadata(self) -> ToolMetadata:
        return ToolMetadata(name="odd", description="returns what cannot be read")

    def __call__(self, input: Any) -> Any:
        return self.call(input)

    @dispatcher.span
    def call(self, input: Any) -> Any:
        return OddResult()


def test_results_whose_fields_cannot_be_read_still_end_their_observations(traced: Traced) -> None:
    assert len(ArrayEmbedding().get_query_embedding("hi")) == 4
    assert MockEmbedding(embed_dim=8).get_text_embedding_batch([]) == []
    assert isinstance(OddTool()("x"), OddResult)  # the caller's result, unchanged
    records = {r["name"]: r for r in traced.records()}
    assert records["ArrayEmbedding.get_query_embedding"]["metadata"]["dimensions"] == 4
    assert records["MockEmbedding.get_text_embedding_batch"]["output"] == {"count": 0}
    assert records["odd"]["type"] == "tool"  # ended, without the result it could not read
    assert autotrace.stats().get("internal_errors.llama_index.exit_span") == 1
    assert_nothing_held()


def test_a_large_retrieval_records_at_most_100_documents(traced: Traced) -> None:
    Settings.embed_model, previous = MockEmbedding(embed_dim=8), Settings._embed_model
    try:
        documents = [Document(text=f"order {i} ships soon", doc_id=f"d{i}") for i in range(250)]
        retriever = VectorStoreIndex.from_documents(documents).as_retriever(similarity_top_k=250)
        with autotrace.start_chain("req"):
            found = retriever.retrieve("when does my order ship?")
    finally:
        Settings._embed_model = previous
    assert len(found) == 250  # the caller gets every node
    (record,) = [r for r in traced.records() if r["type"] == "retriever"]
    assert record["metadata"]["doc_count"] == 250 and record["metadata"]["documents_recorded"] == 100
    assert [d["id"] for d in record["output"]] == [n.node.node_id for n in found[:100]]
    assert autotrace.stats()["retrieval_documents_truncated"] == 150


class _LazyOpenAI(FakeLLM):
    """Streams from OpenAI the way LlamaIndex's OpenAI LLM does: the request is made inside the
    generator it returns, after its own span has exited."""

    model = "gpt-4o-mini"
    base_url: str

    def chunks(self, prompt: str) -> Iterator[CompletionResponse]:
        client = openai.OpenAI(base_url=self.base_url, api_key="k", max_retries=0)

        def gen() -> Iterator[CompletionResponse]:
            text = ""
            stream = client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                    messages=[{"role": "user", "content": prompt}])
            for chunk in stream:
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                    yield CompletionResponse(text=text, delta=chunk.choices[0].delta.content or "", raw=chunk)

        return gen()


@pytest.mark.integrations("llama_index", "openai")
def test_an_llm_that_starts_its_openai_stream_lazily_records_one_generation(traced: Traced) -> None:
    with FakeOpenAI() as fake:
        llm = _LazyOpenAI(base_url=fake.base_url)
        with autotrace.start_chain("req"):
            assert "".join(r.delta for r in llm.stream_complete("ping")) == "echo: ping"
        with autotrace.start_chain("after"):  # the stream has ended: a later call is the client's own
            openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "pong"}])
    records = traced.records()
    assert shape(records) == [("chain", "req", [("generation", "_LazyOpenAI.stream_complete", [])]),
                              ("chain", "after", [("generation", "openai.chat", [])])]
    (generation,) = [r for r in records if r["name"] == "_LazyOpenAI.stream_complete"]
    assert generation["output"] == "echo: ping"


class FailingTool(BaseTool):
    @property
    def metadata(self) -> ToolMetadata:
        return ToolMetadata(name="lookup", description="reports its failure in its output")

    def __call__(self, input: Any) -> Any:
        return self.call(input)

    @dispatcher.span
    def call(self, input: Any) -> ToolOutput:
        return ToolOutput(content="order service unavailable", tool_name="lookup", raw_input={"input": input},
                          raw_output=None, is_error=True)


def test_a_tool_output_that_reports_an_error_marks_the_tool_failed(traced: Traced) -> None:
    assert FailingTool()("o-1").is_error
    (record,) = traced.records()
    assert (record["type"], record["level"], record["status_message"], record["output"]) == (
        "tool", "ERROR", "order service unavailable", "order service unavailable")


def test_a_workflow_run_is_one_trace_and_an_agent_records_its_message_and_reply(traced: Traced) -> None:
    """A workflow's steps run in tasks of their own: without the run recorded, each LLM call was a trace
    of its own; an agent's run recorded no input and its whole stop event as output."""
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.llms.mock import MockFunctionCallingLLM
    from llama_index.core.workflow import Event, StartEvent, StopEvent, Workflow, step

    class Drafted(Event):
        text: str

    class TwoSteps(Workflow):
        @step
        async def draft(self, ev: StartEvent) -> Drafted:
            return Drafted(text=(await MockLLM().acomplete(ev.topic)).text)

        @step
        async def polish(self, ev: Drafted) -> StopEvent:
            return StopEvent(result=(await MockLLM().acomplete(ev.text + "!")).text)

    agent = FunctionAgent(tools=[], streaming=False, llm=MockFunctionCallingLLM(
        response_generator=lambda messages, **kwargs: ChatMessage(role="assistant", content="42")))

    async def run() -> tuple[Any, Any]:
        return await TwoSteps().run(topic="tides"), await agent.run(user_msg="6 times 7?")

    polished, answer = asyncio.run(run())
    assert (polished, str(answer)) == ("tides!", "42")
    records = traced.records()
    assert shape(records) == [
        ("chain", "TwoSteps.run", [("chain", "TwoSteps.draft", [("generation", "MockLLM.acomplete", [])]),
                                   ("chain", "TwoSteps.polish", [("generation", "MockLLM.acomplete", [])])]),
        ("agent", "FunctionAgent.run", [("generation", "MockFunctionCallingLLM.achat", [])]),
    ]
    runs = {r["name"]: r for r in records}
    assert (runs["TwoSteps.run"]["input"], runs["TwoSteps.run"]["output"]) == ({"topic": "tides"}, "tides!")
    assert (runs["FunctionAgent.run"]["input"], runs["FunctionAgent.run"]["output"]) == ("6 times 7?", "42")
    assert_nothing_held()


def test_tool_calls_and_keyword_prompts_are_recorded(traced: Traced) -> None:
    """A function-calling reply's tool calls (it has no text) and the id a tool result answers were
    dropped; a prompt given by keyword recorded no input."""
    from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
    from llama_index.core.llms.mock import MockFunctionCallingLLM

    call = ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_call_id="c1", tool_name="multiply",
                                                               tool_kwargs={"a": 6, "b": 7})])
    llm = MockFunctionCallingLLM(response_generator=lambda messages, **kwargs: call)
    llm.chat([ChatMessage(role="user", content="6 times 7?"), call,
              ChatMessage(role="tool", content="42", additional_kwargs={"tool_call_id": "c1"})])
    MockLLM().complete(prompt="by keyword")
    chat, complete = traced.records()
    wanted = {"role": "assistant", "content": None,
              "tool_calls": [{"id": "c1", "name": "multiply", "arguments": {"a": 6, "b": 7}}]}
    assert chat["output"] == wanted
    assert chat["input"] == [{"role": "user", "content": "6 times 7?"}, wanted,
                             {"role": "tool", "content": "42", "tool_call_id": "c1"}]
    assert complete["input"] == "by keyword"


TEXT = "text text text text"  # what MockLLM(max_tokens=4) answers
SYNC_QUERY = [("retriever", "VectorIndexRetriever.retrieve", [("embedding", "MockEmbedding.get_query_embedding", [])])]
ASYNC_QUERY = [("retriever", "VectorIndexRetriever.aretrieve",
                [("embedding", "MockEmbedding.aget_query_embedding", [])])]


def in_chain(name: str, run: Callable[[], Any], traced: Traced) -> tuple[Any, list[dict[str, Any]]]:
    """``run()``'s result and the records of its trace, under an outer chain (the root record)."""
    with autotrace.start_chain(name) as outer:
        result = run()
    return result, traced.trace(outer.trace_id)[1:]


class Selecting(FakeLLM):
    """A selector's LLM: always picks the second choice."""

    model = "selector"

    def answer(self, prompt: str) -> CompletionResponse:
        return CompletionResponse(text='[{"choice": 2, "reason": "about refunds"}]')


@pytest.fixture
def engines(index: VectorStoreIndex) -> list[Any]:
    from llama_index.core.tools import QueryEngineTool

    refunds = VectorStoreIndex.from_documents([Document(text="Refunds take five days.", doc_id="d2")])
    return [QueryEngineTool(query_engine=index.as_query_engine(), metadata=ToolMetadata(name="shipping",
                                                                                       description="shipping")),
            QueryEngineTool(query_engine=refunds.as_query_engine(), metadata=ToolMetadata(name="refunds",
                                                                                         description="refunds"))]


def query_tree(prefix: str) -> tuple[str, str, list[Any]]:
    """A retriever query engine's tree, synchronous (prefix "") or asynchronous ("a")."""
    query = ASYNC_QUERY if prefix else SYNC_QUERY
    return ("chain", f"RetrieverQueryEngine.{prefix}query", [
        *query, ("chain", f"CompactAndRefine.{prefix}synthesize", [("generation", f"MockLLM.{prefix}complete", [])])])


@pytest.mark.parametrize("prefix", ["", "a"])
def test_router_query_engine(engines: list[Any], traced: Traced, prefix: str) -> None:
    from llama_index.core.query_engine import RouterQueryEngine
    from llama_index.core.selectors import LLMSingleSelector

    router = RouterQueryEngine(selector=LLMSingleSelector.from_defaults(llm=Selecting()), query_engine_tools=engines)
    ask = router.aquery if prefix else router.query
    response, records = in_chain("request", lambda: asyncio.run(ask("refund time?")) if prefix else ask("refund time?"),
                                 traced)
    assert str(response) == TEXT
    assert shape(records) == [("chain", f"RouterQueryEngine.{prefix}query", [
        ("generation", f"Selecting.{prefix}complete", []), query_tree(prefix)])]
    assert records[1]["output"] == '[{"choice": 2, "reason": "about refunds"}]'  # the JSON text, kept as text
    retriever = records[3]
    assert (retriever["input"], [d["content"] for d in retriever["output"]]) == ("refund time?",
                                                                                ["Refunds take five days."])
    assert (records[0]["input"], records[0]["output"]) == ("refund time?", TEXT)
    assert_nothing_held()


@pytest.mark.parametrize(("prefix", "use_async"), [("", False), ("", True), ("a", True)])
def test_sub_question_query_engine_puts_each_sub_query_under_it(engines: list[Any], traced: Traced, prefix: str,
                                                                use_async: bool) -> None:
    """Sub-queries run in parallel (asyncio.gather) when use_async: each keeps its own retrieval and answer."""
    from llama_index.core.query_engine import SubQuestionQueryEngine
    from llama_index.core.question_gen.types import BaseQuestionGenerator, SubQuestion

    class TwoQuestions(BaseQuestionGenerator):
        def _get_prompts(self) -> dict[str, Any]:
            return {}

        def _update_prompts(self, prompts: Any) -> None:
            pass

        def generate(self, tools: Any, query: Any) -> list[SubQuestion]:
            return [SubQuestion(sub_question="ship time?", tool_name="shipping"),
                    SubQuestion(sub_question="refund time?", tool_name="refunds")]

        async def agenerate(self, tools: Any, query: Any) -> list[SubQuestion]:
            return self.generate(tools, query)

    engine = SubQuestionQueryEngine.from_defaults(query_engine_tools=engines, question_gen=TwoQuestions(),
                                                  use_async=use_async, llm=MockLLM(max_tokens=3), verbose=False)
    ask = engine.aquery if prefix else engine.query
    response, records = in_chain("request", lambda: asyncio.run(ask("times?")) if prefix else ask("times?"), traced)
    assert str(response) == "text text text"
    inner = "a" if use_async else ""
    assert shape(records) == [("chain", f"SubQuestionQueryEngine.{prefix}query", [
        query_tree(inner), query_tree(inner),
        ("chain", f"CompactAndRefine.{prefix}synthesize", [("generation", f"MockLLM.{prefix}complete", [])]),
    ])]
    by_id = {r["id"]: r for r in records}
    for sub, document in (("ship time?", "Orders ship in 24 hours."), ("refund time?", "Refunds take five days.")):
        (engine_record,) = (r for r in records if r["name"].startswith("RetrieverQueryEngine") and r["input"] == sub)
        below = [r for r in records if r["parent_id"] == engine_record["id"]
                 or by_id.get(r["parent_id"], {}).get("parent_id") == engine_record["id"]]
        assert {r["input"] for r in below if r["type"] in ("retriever", "embedding")} == {sub}
        (retriever,) = (r for r in below if r["type"] == "retriever")
        assert [d["content"] for d in retriever["output"]] == [document]
    assert {r["trace_id"] for r in records} == {records[0]["trace_id"]}
    assert_nothing_held()


class Ranking(FakeLLM):
    """An LLMRerank's LLM: ranks the refunds document above the shipping one."""

    model = "ranker"

    def answer(self, prompt: str) -> CompletionResponse:
        first = prompt.index("Orders ship") < prompt.index("Refunds take")
        return CompletionResponse(text=f"Doc: {2 if first else 1}, Relevance: 9\nDoc: {1 if first else 2}, Relevance: 3\n")


def test_rerankers_record_their_scores_and_the_llm_they_call(traced: Traced) -> None:
    from llama_index.core.postprocessor import LLMRerank
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import NodeWithScore

    class Halving(BaseNodePostprocessor):
        def _postprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: Any = None) -> list[NodeWithScore]:
            return [NodeWithScore(node=n.node, score=n.score / 2) for n in nodes][:1]

    Settings.embed_model, previous = MockEmbedding(embed_dim=8), Settings._embed_model
    try:
        index = VectorStoreIndex.from_documents([Document(text="Orders ship in 24 hours.", doc_id="d1"),
                                                 Document(text="Refunds take five days.", doc_id="d2")])
        engine = index.as_query_engine(similarity_top_k=2, llm=MockLLM(max_tokens=4), node_postprocessors=[
            LLMRerank(llm=Ranking(), top_n=2, choice_batch_size=5), Halving()])
        response, records = in_chain("request", lambda: engine.query("refunds?"), traced)
    finally:
        Settings._embed_model = previous
    assert [(n.node.text, n.score) for n in response.source_nodes] == [("Refunds take five days.", 4.5)]
    assert shape(records) == [("chain", "RetrieverQueryEngine.query", [
        *SYNC_QUERY,
        ("retriever", "LLMRerank.postprocess_nodes", [("generation", "Ranking.complete", [])]),
        ("retriever", "Halving.postprocess_nodes", []),
        ("chain", "CompactAndRefine.synthesize", [("generation", "MockLLM.complete", [])]),
    ])]
    reranked, halved = (r for r in records if r["metadata"].get("operation") == "rerank")
    assert [(d["content"], d["score"]) for d in reranked["output"]] == [("Refunds take five days.", 9.0),
                                                                        ("Orders ship in 24 hours.", 3.0)]
    assert (reranked["input"], reranked["metadata"]["scores"], reranked["metadata"]["doc_count"]) == (
        "refunds?", [9.0, 3.0], 2)
    assert (halved["metadata"]["scores"], halved["metadata"]["doc_count"]) == ([4.5], 1)
    assert_nothing_held()


def test_an_ingestion_pipeline_records_its_embedding_batches_with_counts(traced: Traced) -> None:
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter

    documents = [Document(text="Orders ship in 24 hours. " * 40, doc_id="d1"), Document(text="Refunds.", doc_id="d2")]

    def pipeline() -> IngestionPipeline:
        return IngestionPipeline(transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0),
                                                  MockEmbedding(embed_dim=8)])

    nodes, records = in_chain("sync", lambda: pipeline().run(documents=documents), traced)
    async_nodes, async_records = in_chain("async", lambda: asyncio.run(pipeline().arun(documents=documents)), traced)
    assert len(nodes) == len(async_nodes) == 6
    assert shape(records) == [("chain", "IngestionPipeline.run",
                               [("embedding", "MockEmbedding.get_text_embedding_batch", [])])]
    assert shape(async_records) == [("chain", "IngestionPipeline.arun",
                                     [("embedding", "MockEmbedding.aget_text_embedding_batch", [])])]
    for record in records[1:] + async_records[1:]:
        assert (record["metadata"]["input_count"], record["metadata"]["dimensions"], record["output"]) == (
            6, 8, {"count": 6})
        assert record["input"] == [n.get_content(metadata_mode="embed") for n in nodes]
    assert_nothing_held()
