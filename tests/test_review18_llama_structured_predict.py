"""``llm.structured_predict`` and ``llm.predict_and_call`` (real llama-index-core): a function-calling
LLM asks its model for tool calls and runs those tools (a structured prediction's builds the object),
under no span that was recorded (``FunctionCallingLLM.predict_and_call`` is no span of LlamaIndex's).
The model call and the tool calls were unrelated traces; they are one chain now, with the prompt's
variables (or the user's message) and the object (or the reply). A ``StructuredLLM``'s call, which
runs ``structured_predict`` inside its generation, is recorded as before."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

import autotrace
from autotrace.integrations.llama_index import INTEGRATION
from tests.helpers import Traced, shape
from tests.llama_doubles import broken, called, calls, lookup, scripted

pytestmark = pytest.mark.integrations("llama_index")

LLM = "MockFunctionCallingLLM"


class Song(BaseModel):
    title: str
    response: str = "none"  # a field named like a query response's: the object is still the output


def assert_nothing_held() -> None:
    tracker = INTEGRATION.tracker
    assert tracker is not None
    assert not (tracker.open or tracker.skipped)


@pytest.mark.parametrize("prefix", ["", "a"])
def test_a_structured_prediction_is_one_chain_over_its_model_call_and_the_tool_that_parses_it(
        traced: Traced, prefix: str) -> None:
    llm = scripted(calls("Song", title="Cats"))
    predict = llm.astructured_predict if prefix else llm.structured_predict
    call = predict(Song, PromptTemplate("A song about {topic}"), topic="cats")
    song = asyncio.run(call) if prefix else call
    assert song == Song(title="Cats")  # the caller's object, unchanged
    records = traced.records()
    assert shape(records) == [("chain", f"{LLM}.{prefix}structured_predict", [
        ("generation", f"{LLM}.{prefix}chat", []), ("tool", "Song", [])])]
    chain, generation, tool = records
    assert {r["trace_id"] for r in records} == {chain["trace_id"]}
    assert (chain["input"], chain["output"], chain["metadata"]["output_cls"], chain["level"]) == (
        {"topic": "cats"}, {"title": "Cats", "response": "none"}, "Song", "DEFAULT")
    assert (generation["input"], generation["output"]) == ([{"role": "user", "content": "A song about cats"}],
                                                           called("Song", title="Cats"))
    assert tool["input"] == {"title": "Cats"}
    assert_nothing_held()


def test_a_structured_prediction_the_model_did_not_answer_fails_with_the_callers_error(traced: Traced) -> None:
    llm = scripted(ChatMessage(role="assistant", content="no idea"))
    with pytest.raises(ValueError, match="did not return any tool calls") as caught:
        llm.structured_predict(Song, PromptTemplate("A song about {topic}"), topic="cats")
    records = traced.records()
    assert shape(records) == [("chain", f"{LLM}.structured_predict", [("generation", f"{LLM}.chat", [])])]
    chain, generation = records
    assert (chain["level"], chain["status_message"]) == ("ERROR", f"ValueError: {caught.value}")
    assert (generation["level"], generation["output"]) == ("DEFAULT", {"role": "assistant", "content": "no idea"})
    assert_nothing_held()


def test_a_structured_llm_s_call_stays_one_generation_with_its_parsing_tool(traced: Traced) -> None:
    reply = scripted(calls("Song", title="Cats")).as_structured_llm(Song).chat([ChatMessage(role="user",
                                                                                            content="a song")])
    assert reply.raw == Song(title="Cats")
    records = traced.records()
    assert shape(records) == [("generation", "StructuredLLM.chat", [("tool", "Song", [])])]
    assert_nothing_held()


@pytest.mark.parametrize("prefix", ["", "a"])
def test_predict_and_call_is_one_chain_over_its_model_call_and_the_tools_it_ran(traced: Traced, prefix: str) -> None:
    tools = [FunctionTool.from_defaults(fn=lookup), FunctionTool.from_defaults(fn=broken)]
    replies = []
    for name in ("lookup", "broken"):  # a tool that fails: LlamaIndex gives its error to the caller as the reply
        llm = scripted(calls(name, order_id="o1"))
        call = (llm.apredict_and_call if prefix else llm.predict_and_call)(tools, "where is o1?")
        replies.append(str(asyncio.run(call) if prefix else call))
    assert replies == ["o1 shipped", "Encountered error: no o1"]
    records = traced.records()
    one = ("chain", f"{LLM}.{prefix}predict_and_call", [("generation", f"{LLM}.{prefix}chat", []),
                                                        ("tool", "lookup", [])])
    other = (one[0], one[1], [one[2][0], ("tool", "broken", [])])
    assert shape(records) == [one, other]
    chains = [r for r in records if r["type"] == "chain"]
    assert [(c["input"], c["output"], c["level"], c["metadata"]["tools"]) for c in chains] == [
        ("where is o1?", reply, "DEFAULT", ["lookup", "broken"]) for reply in replies]
    assert [(r["name"], r["level"]) for r in records if r["type"] == "tool"] == [("lookup", "DEFAULT"),
                                                                                 ("broken", "ERROR")]
    assert_nothing_held()


def test_uninstall_unwraps_predict_and_call() -> None:
    original = FunctionCallingLLM.__dict__["predict_and_call"]
    autotrace.install(local_store="off", integrations=("llama_index",))
    assert FunctionCallingLLM.__dict__["predict_and_call"] is not original
    autotrace.uninstall(timeout=2.0)
    assert FunctionCallingLLM.__dict__["predict_and_call"] is original
