"""A LangChain chat model streaming from OpenAI (as langchain-openai's ChatOpenAI
does) gets the returned model, usage and cost, while LangChain sees the chunks it would see
without autotrace; an async stream abandoned early ends its runs once the event loop closes it."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from opentelemetry import trace

import autotrace
from autotrace.integrations.langchain import INTEGRATION
from autotrace.observation import STREAM_CLOSED
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain", "openai")

PROMPT = ChatPromptTemplate.from_messages([("user", "{q}")])
SEQ = "RunnableSequence"
MODEL = "gpt-4o-mini-2024-07-18"  # the model the server says it ran (priced)


def _usage_metadata(usage: dict[str, int]) -> dict[str, int]:
    return {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"]}


class ChatOpenAILike(BaseChatModel):
    """Streams as langchain-openai's ChatOpenAI does (not installed here): ``stream_options`` only
    when ``stream_usage`` (its default against a custom base URL is off), each chunk converted as
    its ``_convert_chunk_to_generation_chunk`` does (a usage-only chunk becomes an empty message
    with ``usage_metadata``; the last choice's chunk carries the finish reason and model name)."""

    client: Any = None
    aclient: Any = None
    stream_usage: bool = False

    @property
    def _llm_type(self) -> str:
        return "openai-like"

    def _payload(self, messages: list[BaseMessage]) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": "gpt-4o-mini", "stream": True,
                                   "messages": [{"role": "user", "content": str(messages[-1].content)}]}
        if self.stream_usage:
            payload["stream_options"] = {"include_usage": True}
        return payload

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=""))])  # unused: streams only

    @staticmethod
    def _convert(chunk: dict[str, Any]) -> ChatGenerationChunk:
        usage = chunk.get("usage")
        usage_metadata = _usage_metadata(usage) if usage else None
        if not chunk.get("choices"):
            return ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage_metadata))
        choice = chunk["choices"][0]
        info = {"finish_reason": choice["finish_reason"], "model_name": chunk["model"]} if choice.get(
            "finish_reason") else None
        message = AIMessageChunk(content=choice["delta"].get("content") or "")
        if usage_metadata:
            message.usage_metadata = usage_metadata
        return ChatGenerationChunk(message=message, generation_info=info)

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Any:
        with self.client.chat.completions.create(**self._payload(messages)) as response:
            for chunk in response:
                generation = self._convert(chunk.model_dump())
                if run_manager:
                    run_manager.on_llm_new_token(generation.text, chunk=generation)
                yield generation

    async def _astream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> Any:
        async with await self.aclient.chat.completions.create(**self._payload(messages)) as response:
            async for chunk in response:
                generation = self._convert(chunk.model_dump())
                if run_manager:
                    await run_manager.on_llm_new_token(generation.text, chunk=generation)
                yield generation


def _model(fake: FakeOpenAI, **fields: Any) -> ChatOpenAILike:
    return ChatOpenAILike(client=openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0),
                          aclient=openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0), **fields)


def _seen(chunks: list[Any]) -> list[tuple[Any, ...]]:
    """What LangChain handed out, chunk by chunk (the ids are the run's)."""
    return [(c.content, c.usage_metadata, c.response_metadata) for c in chunks]


def _stream(runnable: Any, value: Any, how: str) -> list[Any]:
    if how == "stream":
        return list(runnable.stream(value))

    async def drain() -> list[Any]:
        return [chunk async for chunk in runnable.astream(value)]

    return asyncio.run(drain())


_TEXT = [("", None, {}), ("ech", None, {}), ("o: ", None, {}), ("whe", None, {}), ("re ", None, {}),
         ("now", None, {}), ("", None, {"finish_reason": "stop", "model_name": MODEL})]
_LAST = ("", None, {})  # LangChain's own closing chunk
_COST = {"input": 1.6499999999999999e-06, "output": 4.2000000000000004e-06, "total": 5.85e-06}  # 11 and 7 tokens


@pytest.mark.parametrize("how", ["stream", "astream"])
def test_an_owned_openai_stream_gives_its_generation_the_returned_usage_and_cost(
        traced: Traced, fake: FakeOpenAI, how: str) -> None:
    """The model did not ask for usage: autotrace asks (``include_usage``) and hides the extra
    usage chunk, so LangChain sees what it would without autotrace, and the generation that owns
    the call gets the usage and cost when the stream ends."""
    fake.script(model=MODEL, usage=(11, 7))
    model = _model(fake)
    assert _seen(_stream(model, "where now", how)) == [*_TEXT, _LAST]
    assert fake.requests[0]["body"]["stream_options"] == {"include_usage": True}
    (record,) = traced.records()
    assert (record["type"], record["name"]) == ("generation", "ChatOpenAILike")
    assert record["model"] == MODEL and record["metadata"]["finish_reason"] == "stop"
    assert record["usage"] == {"input": 11, "output": 7, "total": 18, "input_cached_tokens": 0,
                               "output_reasoning_tokens": 0}
    assert record["cost"] == _COST
    assert record["output"] == {"role": "assistant", "content": "echo: where now"}


def test_an_owned_stream_that_asked_for_usage_keeps_its_usage_chunk_and_gets_the_cost(
        traced: Traced, fake: FakeOpenAI) -> None:
    fake.script(model=MODEL, usage=(11, 7))
    chunks = list((PROMPT | _model(fake, stream_usage=True) | StrOutputParser()).stream({"q": "where now"}))
    assert chunks == ["", "ech", "o: ", "whe", "re ", "now", "", "", ""]
    assert fake.requests[0]["body"]["stream_options"] == {"include_usage": True}  # the model's own
    records = traced.records()
    assert shape(records) == [("chain", SEQ, [("chain", "ChatPromptTemplate", []),
                                              ("generation", "ChatOpenAILike", []), ("chain", "StrOutputParser", [])])]
    (generation,) = [r for r in records if r["type"] == "generation"]
    assert generation["usage"] == {"input": 11, "output": 7, "total": 18}  # LangChain's reading of its chunk
    assert generation["cost"] == _COST
    assert generation["model"] == MODEL


def test_an_owned_stream_to_a_server_refusing_stream_options_is_sent_as_the_model_made_it(
        traced: Traced, fake: FakeOpenAI) -> None:
    """As for a stream recorded by the OpenAI integration: the refused request is sent again at
    once without ``stream_options``, and that endpoint's later streams go as made."""
    fake.reject_stream_options = True
    for _ in range(3):  # the refused request takes a reply too
        fake.script(model=MODEL)
    model = _model(fake)
    assert _seen(list(model.stream("where now"))) == _seen(list(model.stream("where now"))) == [*_TEXT, _LAST]
    assert [r["body"].get("stream_options") for r in fake.requests] == [{"include_usage": True}, None, None]
    records = traced.records()
    assert [(r["model"], r["usage"], r["level"]) for r in records] == [(MODEL, None, "DEFAULT")] * 2
    assert autotrace.stats()["openai.stream_options_rejected"] == 1


def test_an_owned_stream_left_early_gets_the_returned_model(traced: Traced, fake: FakeOpenAI) -> None:
    fake.script(model=MODEL)
    for chunk in _model(fake).stream("where now"):
        if chunk.content:
            break
    (record,) = traced.records()
    assert (record["level"], record["status_message"]) == ("WARNING", STREAM_CLOSED)
    assert record["model"] == MODEL  # the stream named it; LangChain had no finish chunk yet
    assert record["usage"] is None and record["output"] == {"role": "assistant", "content": "ech"}


def test_an_async_stream_abandoned_early_ends_its_runs_once_the_loop_closes_it(traced: Traced) -> None:
    """``async for ... : break`` drops the stream; the event loop's async-generator hook closes it a
    few iterations later, and LangChain then ends every run (interrupted, WARNING). Meanwhile no
    run is current in the caller's context."""
    chain = PROMPT | FakeListChatModel(responses=["abc"]) | StrOutputParser()

    async def caller() -> None:
        async for _ in chain.astream({"q": "x"}):
            break
        assert not trace.get_current_span().get_span_context().is_valid
        with autotrace.start_span("next_request"):
            pass
        for _ in range(1000):  # about 20 iterations here
            if not INTEGRATION.handler.runs:
                return
            await asyncio.sleep(0)
        raise AssertionError("the abandoned stream's runs are still open")

    asyncio.run(caller())
    records = traced.records()
    assert shape(records) == [("chain", SEQ, [("chain", "ChatPromptTemplate", []), ("generation", "FakeListChatModel", []),
                                              ("chain", "StrOutputParser", [])]), ("span", "next_request", [])]
    levels = {r["name"]: (r["level"], r["status_message"]) for r in records}
    interrupted = ("WARNING", STREAM_CLOSED)
    assert levels == {SEQ: interrupted, "ChatPromptTemplate": ("DEFAULT", None), "FakeListChatModel": interrupted,
                      "StrOutputParser": interrupted, "next_request": ("DEFAULT", None)}
    (generation,) = [r for r in records if r["type"] == "generation"]
    assert generation["output"] == {"role": "assistant", "content": "a"}  # what was streamed until then
