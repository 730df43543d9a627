"""LangChain edge cases: streamed messages, failing streams, handled tool errors, inherited tags,
large retrievals, inputs that look like LangChain's own placeholders, metadata of any key, the
reply of a failed or closed stream and bound tools."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, ChatMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import ToolException, tool

import autotrace
from autotrace.integrations.langchain import INTEGRATION
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain", "openai")

PROMPT = ChatPromptTemplate.from_messages([("user", "{q}")])
SEQ = "RunnableSequence"


def test_streamed_and_chat_messages_keep_their_roles(traced: Traced) -> None:
    """A streamed reply is an ``AIMessageChunk`` (type ``AIMessageChunk``): still the assistant's."""
    assert "".join(c.content for c in FakeListChatModel(responses=["ok"]).stream("hi")) == "ok"
    history = [ChatMessage(role="developer", content="be brief"), HumanMessage("refund o-1"),
               AIMessageChunk(content="", tool_calls=[{"name": "refund", "args": {}, "id": "c1"}]),
               ToolMessage(content="done", tool_call_id="c1")]
    FakeListChatModel(responses=["refunded"]).invoke(history)
    streamed, invoked = traced.records()
    assert streamed["output"] == {"role": "assistant", "content": "ok"}
    assert [m["role"] for m in invoked["input"]] == ["developer", "user", "assistant", "tool"]
    assert invoked["input"][3] == {"role": "tool", "content": "done", "tool_call_id": "c1"}


class BreaksMidStream(BaseChatModel):
    @property
    def _llm_type(self) -> str:
        return "breaks"

    def _generate(self, messages: list[BaseMessage], stop: Any = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        raise NotImplementedError

    def _stream(self, messages: list[BaseMessage], stop: Any = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Any:
        yield ChatGenerationChunk(message=AIMessageChunk(content="one"))
        raise ConnectionError("dropped")


def test_a_streamed_chain_that_fails_records_its_real_input(traced: Traced) -> None:
    """A streamed run starts with LangChain's ``{"input": ""}`` placeholder; the input it read is
    given to the error callback too."""
    got = []
    with pytest.raises(ConnectionError):
        for chunk in (PROMPT | BreaksMidStream() | StrOutputParser()).stream({"q": "where?"}):
            got.append(chunk)
    assert got == ["one"]
    by_name = {r["name"]: r for r in traced.records()}
    assert by_name[SEQ]["input"] == {"q": "where?"}
    assert by_name[SEQ]["level"] == "ERROR" and by_name["BreaksMidStream"]["level"] == "ERROR"


@tool
def cancel(order_id: str) -> str:
    """Cancel an order."""
    raise ToolException(f"order {order_id} already shipped")


cancel.handle_tool_error = True


def test_a_handled_tool_error_marks_the_tool_failed(traced: Traced) -> None:
    """With ``handle_tool_error`` the model gets the error as a ToolMessage of status "error" and
    nothing raises; the tool still failed."""
    call = {"type": "tool_call", "id": "c9", "name": "cancel", "args": {"order_id": "o-1"}}
    message = cancel.invoke(call, config={"run_name": "cancel_step"})
    assert message.status == "error" and message.content == "order o-1 already shipped"
    (record,) = traced.records()
    assert (record["type"], record["name"], record["level"]) == ("tool", "cancel_step", "ERROR")
    assert record["status_message"] == "order o-1 already shipped"
    assert record["output"] == "order o-1 already shipped"
    assert record["metadata"]["tool_name"] == "cancel"  # the tool's name, not the run's


def test_an_agent_tag_marks_the_tagged_run_only(traced: Traced) -> None:
    """Tags are inherited: the prompt and parser inside a run tagged "agent" are still chains."""
    chain = PROMPT | FakeListChatModel(responses=["ok"]) | StrOutputParser()
    chain.invoke({"q": "x"}, config={"tags": ["support-agent"]})
    inner = (RunnableLambda(lambda x: x) | RunnableLambda(lambda x: x)).with_config(run_name="step")
    RunnableLambda(lambda x: inner.invoke(x)).with_config(run_name="planner", tags=["agent"]).invoke(1)
    assert shape(traced.records()) == [
        ("agent", SEQ, [("chain", "ChatPromptTemplate", []), ("generation", "FakeListChatModel", []),
                        ("chain", "StrOutputParser", [])]),
        ("agent", "planner", [("chain", "step", [("chain", "RunnableLambda", []), ("chain", "RunnableLambda", [])])]),
    ]


class ManyDocs(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [Document(page_content=f"doc {i}", id=str(i), metadata={"score": 1 - i / 1000}) for i in range(250)]


def test_a_large_retrieval_records_at_most_100_documents(traced: Traced) -> None:
    assert len(ManyDocs().invoke("q")) == 250
    (record,) = traced.records()
    assert record["doc_count"] == 250 and len(record["output"]) == 100
    assert record["output"][99]["id"] == "99" and len(record["metadata"]["scores"]) == 100
    assert record["metadata"]["documents_recorded"] == 100
    assert autotrace.stats()["retrieval_documents_truncated"] == 150


def test_a_run_invoked_with_an_empty_input_key_is_current(traced: Traced, fake: FakeOpenAI) -> None:
    """``{"input": ""}`` is also what LangChain's streaming path starts a run with; invoked with
    it, a run is still current, so the OpenAI call it makes nests under it."""
    client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)

    def ask(inputs: dict[str, str]) -> str:
        messages = [{"role": "user", "content": inputs["input"] or "?"}]
        return client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices[0].message.content

    assert RunnableLambda(ask).invoke({"input": ""}) == "echo: ?"
    assert shape(traced.records()) == [("chain", "ask", [("generation", "openai.chat", [])])]
    assert INTEGRATION.handler is not None and INTEGRATION.handler.runs == {}



def test_metadata_of_any_key_and_an_anonymous_user_are_recorded(traced: Traced) -> None:
    """A key that is not text is recorded as text (it failed the run and every run inheriting its
    metadata); a None user or session is no user "None"; LangChain's ``lc_versions`` is left out."""
    inner = RunnableLambda(lambda x: x).with_config(run_name="inner")
    outer = RunnableLambda(lambda x: inner.invoke(x)).with_config(run_name="outer")
    assert outer.invoke(1, config={"metadata": {7: "seven", "user_id": None, "session_id": ""}}) == 1
    FakeListChatModel(responses=["ok"]).invoke("hi")
    records = traced.records()
    assert shape(records[:2]) == [("chain", "outer", [("chain", "inner", [])])]
    assert [r["metadata"] for r in records[:2]] == [{"7": "seven"}] * 2
    assert {(r["user_id"], r["session_id"]) for r in records} == {(None, None)}
    assert "lc_versions" not in records[2]["metadata"]
    assert not [key for key in autotrace.stats() if key.startswith("internal_errors")]


class FailsWithResponse(BreaksMidStream):
    def _generate(self, messages: list[BaseMessage], stop: Any = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        error = ConnectionError("bad gateway")
        error.response = type("Response", (), {"status_code": 502})()  # type: ignore[attr-defined]
        raise error


def test_a_failed_or_closed_stream_records_the_reply_streamed_until_then(traced: Traced) -> None:
    """LangChain gives ``on_llm_error`` the chunks streamed so far: the reply the caller got; a call
    that failed before any reply records none (not the error's HTTP response as an empty reply)."""
    with pytest.raises(ConnectionError):
        list(BreaksMidStream().stream("hi"))
    stream = FakeListChatModel(responses=["long answer"]).stream("hi")
    assert next(stream).content == "l"
    stream.close()  # the caller stops reading
    with pytest.raises(ConnectionError):
        FailsWithResponse().invoke("hi")
    failed, closed, refused = traced.records()
    assert (failed["level"], failed["output"]) == ("ERROR", {"role": "assistant", "content": "one"})
    assert closed["output"] == {"role": "assistant", "content": "l"}
    assert (refused["level"], refused["output"]) == ("ERROR", None)


def test_bound_tools_are_recorded_by_name(traced: Traced) -> None:
    """Tools bound to a model reach ``invocation_params`` as their full schemas: recorded by name
    (as the OpenAI integration does), so many tools no longer fill the parameters to the size limit."""
    rules = "Refunds follow these rules, explained at length. " * 30
    tools: list[dict[str, Any]] = [{"type": "function", "function": {"name": f"tool_{i}", "description": rules,
                                                                     "parameters": {"type": "object"}}}
                                   for i in range(60)]
    tools += [{"name": "lookup", "description": rules, "input_schema": {}}, {"type": "web_search"}]
    FakeListChatModel(responses=["ok"]).bind(tools=tools, temperature=0.2).invoke("hi")
    (record,) = traced.records()
    assert record["model_parameters"]["tools"] == [f"tool_{i}" for i in range(60)] + ["lookup", "web_search"]
    assert record["model_parameters"]["temperature"] == 0.2


def test_an_inline_image_is_noted_and_the_conversation_after_it_kept(traced: Traced) -> None:
    image = "data:image/jpeg;base64," + "/9j/4AAQSkZJRg" * 8_000  # 112 kB, past the value limit
    model = FakeListChatModel(responses=["a cat"])
    question = [HumanMessage(content=[{"type": "image_url", "image_url": {"url": image}},
                                      {"type": "text", "text": "what is it?"}]),
                AIMessageChunk(content="a photo"), HumanMessage(content="what colour is it")]
    assert model.invoke(question).content == "a cat"
    (record,) = [r for r in traced.records() if r["type"] == "generation"]
    assert record["input"] == [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"<image/jpeg base64, {len(image)} chars>"}},
                                     {"type": "text", "text": "what is it?"}]},
        {"role": "assistant", "content": "a photo"}, {"role": "user", "content": "what colour is it"}]
    assert question[0].content[0]["image_url"]["url"] == image  # the caller's messages are left as they are
