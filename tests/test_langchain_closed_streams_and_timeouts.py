"""A sync stream its caller closes early ends interrupted (WARNING) with what it
had yielded, as its async twin does, while the steps LangChain drains after the close end as they
ran; a run whose awaited start a handled timeout cut short ends at once instead of staying open and
current under the caller's next spans."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig, RunnableGenerator, RunnableLambda
from opentelemetry import trace

import autotrace
from autotrace.integrations.langchain import INTEGRATION
from autotrace.observation import STREAM_CLOSED
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain")

PROMPT = ChatPromptTemplate.from_messages([("user", "{q}")])
SEQ = "RunnableSequence"
CLOSED = ("WARNING", STREAM_CLOSED)


def _chain() -> Any:
    return PROMPT | FakeListChatModel(responses=["abc"]) | StrOutputParser()


def _close(stream: Any) -> list[Any]:
    got = [next(stream)]
    assert stream.close() is None  # the caller's close behaves as without autotrace
    return got


def _break(stream: Any) -> list[Any]:
    got = []
    for chunk in stream:
        got.append(chunk)
        break
    return got


def _levels(records: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {r["name"]: (r["level"], r["status_message"], r["output"]) for r in records}


@pytest.mark.parametrize("leave", [_close, _break])
def test_a_sync_stream_closed_after_its_first_chunk_ends_interrupted_with_what_it_yielded(
        traced: Traced, leave: Callable[[Any], list[Any]]) -> None:
    """LangChain swallows the GeneratorExit and reports the runs done, without the chunk the caller
    got. The model ran to its end: LangChain drains a closed step's input (its ``on_llm_end``)."""
    assert leave(_chain().stream({"q": "x"})) == ["a"]
    assert not trace.get_current_span().get_span_context().is_valid
    records = traced.records()
    assert shape(records) == [("chain", SEQ, [("chain", "ChatPromptTemplate", []),
                                              ("generation", "FakeListChatModel", []),
                                              ("chain", "StrOutputParser", [])])]
    levels = _levels(records)
    assert levels[SEQ] == levels["StrOutputParser"] == (*CLOSED, "a")
    assert levels["FakeListChatModel"] == ("DEFAULT", None, {"role": "assistant", "content": "abc"})
    assert levels["ChatPromptTemplate"][:2] == ("DEFAULT", None)
    assert records[0]["input"] == {"q": "x"}
    assert not INTEGRATION.handler.runs
    assert not any(key.startswith("internal_errors") for key in autotrace.stats())


def test_a_closed_generator_lambda_keeps_every_chunk_it_yielded(traced: Traced) -> None:
    def chunks(x: str) -> Any:
        for i in range(3):
            yield f"{x}{i}"

    stream = RunnableLambda(chunks).stream("c")
    assert [next(stream), next(stream)] == ["c0", "c1"]
    stream.close()
    assert list(RunnableLambda(chunks).stream("d")) == ["d0", "d1", "d2"]  # read to its end: done
    closed, done = traced.records()
    assert [(r["type"], r["name"], r["level"], r["status_message"], r["input"], r["output"])
            for r in (closed, done)] == [("chain", "chunks", *CLOSED, "c", "c0c1"),
                                         ("chain", "chunks", "DEFAULT", None, "d", "d0d1d2")]


def test_the_steps_langchain_drains_after_a_close_end_as_they_ran(traced: Traced) -> None:
    """Only the steps the close reached are interrupted: the last step and the sequence. Those
    before it are read to their end by LangChain (the input of the closed step), and say so."""
    def upper(chunks: Any) -> Any:
        for chunk in chunks:
            yield chunk.upper()

    chain = _chain() | RunnableGenerator(upper) | RunnableGenerator(upper).with_config(run_name="again")
    assert _close(chain.stream({"q": "x"})) == ["A"]
    levels = _levels(traced.records())
    assert levels == {SEQ: (*CLOSED, "A"), "again": (*CLOSED, "A"), "upper": ("DEFAULT", None, "ABC"),
                      "StrOutputParser": ("DEFAULT", None, "abc"),
                      "FakeListChatModel": ("DEFAULT", None, {"role": "assistant", "content": "abc"}),
                      "ChatPromptTemplate": levels["ChatPromptTemplate"]}
    assert levels["ChatPromptTemplate"][:2] == ("DEFAULT", None)


def test_a_sync_close_and_an_async_close_agree(traced: Traced) -> None:
    """The same level and message for the sequence and its closed step, either way. (The async path
    reports no output for them: LangChain gives its error callback none.)"""
    assert _close(_chain().stream({"q": "s"})) == ["a"]

    async def aclose() -> None:
        stream = _chain().astream({"q": "a"})
        assert await anext(stream) == "a"
        await stream.aclose()

    asyncio.run(aclose())
    records = traced.records()
    by_trace: dict[str, dict[str, tuple[Any, Any]]] = {}
    for r in records:
        by_trace.setdefault(r["trace_id"], {})[r["name"]] = (r["level"], r["status_message"])
    sync, async_ = (by_trace[r["trace_id"]] for r in records if r["name"] == SEQ)
    assert sync[SEQ] == async_[SEQ] == sync["StrOutputParser"] == async_["StrOutputParser"] == CLOSED
    assert not INTEGRATION.handler.runs


class SlowLog(BaseCallbackHandler):
    """A user's plain handler: LangChain runs it in a thread for an async call, and awaits it."""

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.2)


async def _by_wait_for(model: Any, question: str, config: RunnableConfig) -> str:
    return str((await asyncio.wait_for(model.ainvoke(question, config), 0.05)).content)


async def _by_timeout(model: Any, question: str, config: RunnableConfig) -> str:
    async with asyncio.timeout(0.05):  # as ``wait_for`` does from Python 3.12 on: in the caller's task
        return str((await model.ainvoke(question, config)).content)


@pytest.mark.parametrize("bounded", [_by_wait_for, _by_timeout])
def test_a_model_start_cut_short_by_a_handled_timeout_ends_and_nests_nothing(traced: Traced,
                                                                            bounded: Any) -> None:
    """The timeout cancels the model's start while LangChain awaits the slow handler: no callback
    ever ends that run. Its parent goes on (no interruption reaches any callback), so it was left
    open, never recorded, and (in the caller's task) current: the fallback nested under it."""
    model = FakeListChatModel(responses=["abc"])

    async def answer(question: str, config: RunnableConfig) -> str:
        try:
            return await bounded(model, question, config)
        except TimeoutError:
            with autotrace.start_span("fallback"):
                return "fallback"

    async def caller() -> str:
        return str(await RunnableLambda(answer).ainvoke("hi", {"callbacks": [SlowLog()]}))

    assert asyncio.run(caller()) == "fallback"
    assert not INTEGRATION.handler.runs
    records = traced.records()
    assert shape(records) == [("chain", "answer", [("generation", "FakeListChatModel", []),
                                                   ("span", "fallback", [])])]
    root, generation, fallback = records
    assert (root["level"], root["output"]) == ("DEFAULT", "fallback")
    assert (generation["level"], generation["status_message"], generation["output"]) == (
        "WARNING", "CancelledError", None)
    assert generation["input"] == [{"role": "user", "content": "hi"}]
    assert generation["parent_id"] == fallback["parent_id"] == root["id"]
    assert not any(key.startswith("internal_errors") for key in autotrace.stats())
