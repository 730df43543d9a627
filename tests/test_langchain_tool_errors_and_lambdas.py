"""A tool error LangChain handles (its message becomes the result) still marks
the tool failed; what a streamed root lambda calls nests under it; an ``astream_events`` left
early leaves no run open."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import ToolException, tool
from opentelemetry import trace

import autotrace
from autotrace.integrations.langchain import INTEGRATION
from autotrace.observation import STREAM_CLOSED
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain", "openai")


def _cancel_tool(flag: Any) -> Any:
    @tool
    def cancel(order_id: str) -> str:
        """Cancel an order."""
        raise ToolException(f"order {order_id} already shipped")

    cancel.handle_tool_error = flag
    return cancel


@pytest.mark.parametrize(("flag", "handled"), [
    (True, "order o-1 already shipped"),
    ("try again later", "try again later"),
    (lambda e: f"handled: {e}", "handled: order o-1 already shipped"),
])
def test_a_handled_tool_error_on_a_plain_invoke_marks_the_tool_failed(traced: Traced, flag: Any,
                                                                      handled: str) -> None:
    """LangChain gives only ``on_tool_end`` with the handled text (no ToolMessage, no status): the
    tool is still recorded failed, with the tool's own error, and the text as its result."""
    assert _cancel_tool(flag).invoke({"order_id": "o-1"}) == handled
    (record,) = traced.records()
    assert (record["type"], record["name"], record["level"]) == ("tool", "cancel", "ERROR")
    assert record["status_message"] == "order o-1 already shipped"
    assert record["output"] == handled


def test_a_handled_tool_error_in_an_async_call_marks_the_tool_failed(traced: Traced) -> None:
    cancel = _cancel_tool("try again later")
    assert asyncio.run(cancel.ainvoke({"order_id": "o-2"})) == "try again later"
    (record,) = traced.records()
    assert (record["level"], record["status_message"], record["output"]) == (
        "ERROR", "order o-2 already shipped", "try again later")


def test_a_handled_validation_error_marks_the_tool_failed(traced: Traced) -> None:
    cancel = _cancel_tool(False)
    cancel.handle_validation_error = "bad arguments"
    assert cancel.invoke({"wrong": 1}) == "bad arguments"
    (record,) = traced.records()
    assert (record["type"], record["level"], record["output"]) == ("tool", "ERROR", "bad arguments")
    assert record["status_message"].startswith("1 validation error for cancel\norder_id\n  Field required")


def test_a_tool_that_succeeds_after_a_handled_error_is_not_marked(traced: Traced) -> None:
    """The mark belongs to the run that handled the error, not to the next tool call."""
    cancel = _cancel_tool(True)

    @tool
    def lookup(order_id: str) -> str:
        """Look an order up."""
        return f"{order_id}: shipped"

    cancel.invoke({"order_id": "o-1"})
    assert lookup.invoke({"order_id": "o-1"}) == "o-1: shipped"
    levels = [(r["name"], r["level"], r["status_message"]) for r in traced.records()]
    assert levels == [("cancel", "ERROR", "order o-1 already shipped"), ("lookup", "DEFAULT", None)]


def test_a_streamed_root_lambda_is_a_chain_with_its_output_and_time(traced: Traced) -> None:
    def slow(x: int) -> dict[str, int]:
        time.sleep(0.05)
        return {"doubled": x * 2}

    def chunks(x: str) -> Any:
        for i in range(3):
            time.sleep(0.02)
            yield f"{x}{i}"

    started = time.time_ns()
    assert list(RunnableLambda(slow).stream(3)) == [{"doubled": 6}]
    assert list(RunnableLambda(chunks).stream("c")) == ["c0", "c1", "c2"]
    ended = time.time_ns()
    first, second = traced.records()
    assert [(r["type"], r["name"], r["level"], r["input"], r["output"]) for r in (first, second)] == [
        ("chain", "slow", "DEFAULT", 3, {"doubled": 6}), ("chain", "chunks", "DEFAULT", "c", "c0c1c2")]
    assert started <= first["start_ns"] and first["end_ns"] - first["start_ns"] >= 50_000_000
    assert second["end_ns"] - second["start_ns"] >= 60_000_000 and second["end_ns"] <= ended


def test_what_a_streamed_root_lambda_calls_nests_under_it(traced: Traced, fake: FakeOpenAI,
                                                          client: openai.OpenAI) -> None:
    """LangChain runs the function in a context of its own, made after the run started: the run is
    current there, so an OpenAI call or a span of the user's joins its trace. The consumer's
    context never shows it."""
    def answer(question: str) -> Any:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
        yield reply.choices[0].message.content
        with autotrace.start_span("after_first_chunk"):
            pass
        yield "!"

    for _ in RunnableLambda(answer).stream("hello"):
        assert not trace.get_current_span().get_span_context().is_valid
    records = traced.records()
    assert shape(records) == [("chain", "answer", [("generation", "openai.chat", []),
                                                   ("span", "after_first_chunk", [])])]
    assert len({r["trace_id"] for r in records}) == 1
    assert records[0]["output"] == "echo: hello!"


def test_an_abandoned_astream_events_leaves_no_run_open(traced: Traced) -> None:
    """Left right after the parser's start event, LangChain cancels the run's start while awaiting
    its event handler and never ends it; the run ends, interrupted, once the cancelled task is
    done. A model that had streamed is still ended by LangChain itself, with its partial reply."""
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | FakeListChatModel(responses=["abc"]) | StrOutputParser()

    async def caller() -> None:
        async for event in chain.astream_events({"q": "x"}, version="v2"):
            if event["event"] == "on_chat_model_stream":
                break
        for _ in range(300):
            await asyncio.sleep(0)
        assert not INTEGRATION.handler.runs

    asyncio.run(caller())
    levels = {r["name"]: (r["level"], r["status_message"]) for r in traced.records()}
    interrupted = ("WARNING", "CancelledError")
    assert levels == {"RunnableSequence": interrupted, "ChatPromptTemplate": ("DEFAULT", None),
                      "FakeListChatModel": ("WARNING", STREAM_CLOSED), "StrOutputParser": interrupted}
    (generation,) = [r for r in traced.records() if r["type"] == "generation"]
    assert generation["output"] == {"role": "assistant", "content": "a"}


def test_what_an_async_streamed_root_lambda_awaits_nests_under_it(traced: Traced,
                                                                  aclient: openai.AsyncOpenAI) -> None:
    async def answer(question: str) -> str:
        reply = await aclient.chat.completions.create(model="gpt-4o-mini",
                                                      messages=[{"role": "user", "content": question}])
        return str(reply.choices[0].message.content)

    async def caller() -> list[str]:
        return [chunk async for chunk in RunnableLambda(answer).astream("hi")]

    assert asyncio.run(caller()) == ["echo: hi"]
    records = traced.records()
    assert shape(records) == [("chain", "answer", [("generation", "openai.chat", [])])]
    assert records[0]["output"] == "echo: hi"
