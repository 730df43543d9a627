"""langchain-openai's ChatOpenAI over the real openai SDK and a loopback server: both integrations
see each model call, and it is recorded once, as the LangChain generation (``ownership``)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

import autotrace
from autotrace.integrations.openai import pricing
from autotrace.observation import STREAM_CLOSED
from autotrace.testing.fake_openai import FakeOpenAI, Script
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain", "openai")

SEQ = "RunnableSequence"
USAGE_9_7 = {"input": 9, "output": 7, "total": 16, "input_cached_tokens": 0, "output_reasoning_tokens": 0}


class Person(BaseModel):
    name: str
    age: int


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def _model(fake: FakeOpenAI, **options: Any) -> ChatOpenAI:
    options.setdefault("max_retries", 0)
    return ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="sk-test", **options)


def _install(tmp_path: Path) -> Traced:
    """autotrace installed as the ``traced`` fixture does, for tests that first call without it."""
    path = tmp_path / "traces.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=("langchain", "openai"),
                      export_interval=0.05)
    return Traced(path)


def _generations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == "generation"]


def _chunks(chunks: list[Any]) -> list[dict[str, Any]]:
    """Chunks as the user sees them, without their per-run id."""
    return [{k: v for k, v in chunk.model_dump().items() if k != "id"} for chunk in chunks]


# -- 1. invoke, batch, ainvoke, abatch ------------------------------------------------------------
def test_invoke_in_a_chain_is_one_generation_with_the_served_model_parameters_and_usage(
        traced: Traced, fake: FakeOpenAI) -> None:
    fake.script(usage=(11, 7), cached_tokens=3, reasoning_tokens=2, model="gpt-4o-mini-2024-07-18")
    chain = ChatPromptTemplate.from_messages([("system", "be brief"), ("user", "{q}")]) | _model(fake, temperature=0.2)
    assert chain.invoke({"q": "hi"}).content == "echo: hi"
    records = traced.records()
    assert shape(records) == [("chain", SEQ, [("chain", "ChatPromptTemplate", []), ("generation", "ChatOpenAI", [])])]
    gen = _generations(records)[0]
    assert gen["model"] == "gpt-4o-mini-2024-07-18"  # the served model
    assert gen["model_parameters"] == {"temperature": 0.2}  # the model's name is no parameter
    assert gen["input"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert gen["output"] == {"role": "assistant", "content": "echo: hi"}
    assert gen["usage"] == {"input": 11, "output": 7, "total": 18, "input_cached_tokens": 3,
                            "output_reasoning_tokens": 2}
    assert gen["level"] == "DEFAULT" and gen["error"] is False
    assert gen["metadata"] == {"provider": "openai", "finish_reason": "stop"}


def test_batch_gives_each_input_its_own_generation(traced: Traced, fake: FakeOpenAI) -> None:
    replies = _model(fake).batch(["a", "b"])
    assert [r.content for r in replies] == ["echo: a", "echo: b"]
    gens = _generations(traced.records())
    assert shape(traced.records()) == [("generation", "ChatOpenAI", [])] * 2
    assert sorted(g["output"]["content"] for g in gens) == ["echo: a", "echo: b"]
    assert len({g["trace_id"] for g in gens}) == 2
    assert all(g["usage"] == {"input": 7, "output": 5, "total": 12, "input_cached_tokens": 0,
                              "output_reasoning_tokens": 0} for g in gens)
    # priced from the SDK's reply: ChatOpenAI reads it through ``with_raw_response``
    assert all(g["cost"] == pricing.cost("gpt-4o-mini", g["usage"]) and g["cost"]["total"] > 0 for g in gens)


async def test_ainvoke_and_abatch_are_one_generation_each(traced: Traced, fake: FakeOpenAI) -> None:
    model = _model(fake)
    assert (await model.ainvoke("x")).content == "echo: x"
    assert [r.content for r in await model.abatch(["y", "z"])] == ["echo: y", "echo: z"]
    records = traced.records()
    assert shape(records) == [("generation", "ChatOpenAI", [])] * 3
    assert sorted(r["input"][0]["content"] for r in records) == ["x", "y", "z"]
    assert all(r["model"] == "gpt-4o-mini" and r["usage"]["total"] == 12 for r in records)
    assert all(r["cost"] == pricing.cost("gpt-4o-mini", r["usage"]) for r in records)


# -- 2. streams -----------------------------------------------------------------------------------
@pytest.mark.parametrize("stream_usage", [None, True])
def test_a_stream_gives_the_user_the_same_chunks_and_records_usage_once(
        tmp_path: Path, fake: FakeOpenAI, stream_usage: bool | None) -> None:
    options = {} if stream_usage is None else {"stream_usage": stream_usage}
    without = list(_model(fake, **options).stream("hello there friend"))
    traced = _install(tmp_path)
    chunks = list(_model(fake, **options).stream("hello there friend"))
    assert _chunks(chunks) == _chunks(without)  # the usage autotrace asked for is hidden again
    merged = sum(chunks[1:], chunks[0])
    assert merged.usage_metadata == (sum(without[1:], without[0]).usage_metadata)
    [gen] = traced.records()
    assert gen["name"] == "ChatOpenAI" and gen["usage"] == USAGE_9_7
    assert gen["cost"] == pytest.approx({"input": 9 * 0.15e-6, "output": 7 * 0.6e-6, "total": 9 * 0.15e-6 + 7 * 0.6e-6})
    assert gen["output"] == {"role": "assistant", "content": "echo: hello there friend"}
    assert gen["completion_start_time"] is not None and gen["level"] == "DEFAULT"


async def test_an_async_stream_gives_the_user_the_same_chunks(tmp_path: Path, fake: FakeOpenAI) -> None:
    without = [c async for c in _model(fake).astream("hello there friend")]
    traced = _install(tmp_path)
    chunks = [c async for c in _model(fake).astream("hello there friend")]
    assert _chunks(chunks) == _chunks(without)
    [gen] = traced.records()
    assert gen["usage"] == USAGE_9_7 and gen["output"]["content"] == "echo: hello there friend"


def test_a_stream_closed_early_ends_its_one_generation_interrupted(traced: Traced, fake: FakeOpenAI) -> None:
    stream = _model(fake, stream_usage=True).stream("hello there friend")
    taken = [next(stream), next(stream)]
    stream.close()
    assert "".join(c.content for c in taken) == "echo"
    [gen] = traced.records()
    assert (gen["level"], gen["status_message"]) == ("WARNING", STREAM_CLOSED)
    assert gen["output"] == {"role": "assistant", "content": "echo"} and gen["usage"] is None


async def test_an_async_stream_closed_early_ends_its_one_generation_interrupted(
        traced: Traced, fake: FakeOpenAI) -> None:
    stream = _model(fake).astream("hello there friend")
    async for _ in stream:
        break
    await stream.aclose()
    [gen] = traced.records()
    assert (gen["type"], gen["level"], gen["status_message"]) == ("generation", "WARNING", STREAM_CLOSED)


# -- 3. tools and agents --------------------------------------------------------------------------
@pytest.mark.parametrize("streamed", [False, True])
def test_bound_tools_are_named_and_the_tool_calls_are_the_output(
        traced: Traced, fake: FakeOpenAI, streamed: bool) -> None:
    fake.script(tool_calls=[{"name": "weather", "arguments": '{"city": "Paris"}'}])
    model = _model(fake).bind_tools([weather])
    if streamed:
        chunks = list(model.stream("weather in Paris?"))
        reply = sum(chunks[1:], chunks[0])
    else:
        reply = model.invoke("weather in Paris?")
    call = {"name": "weather", "args": {"city": "Paris"}, "id": "call_0", "type": "tool_call"}
    assert reply.tool_calls == [call]
    [gen] = traced.records()
    assert gen["output"] == {"role": "assistant", "content": "", "tool_calls": [call]}
    assert gen["model_parameters"] == {"tools": ["weather"]}
    assert gen["metadata"]["finish_reason"] == "tool_calls"


def _agent_replies(body: dict[str, Any]) -> Script:
    if body["messages"][-1]["role"] == "tool":
        return Script(reply="It is sunny.")
    return Script(tool_calls=[{"name": "weather", "arguments": '{"city": "Paris"}'}])


def test_a_react_agent_records_agent_generation_tool_generation(traced: Traced) -> None:
    from langgraph.prebuilt import create_react_agent

    with FakeOpenAI(_agent_replies) as fake, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_react_agent's deprecation
        agent = create_react_agent(_model(fake), [weather])
        result = agent.invoke({"messages": [("user", "weather in Paris?")]})
    assert result["messages"][-1].content == "It is sunny."
    records = traced.records()
    step = [("chain", "call_model", []), ("chain", SEQ, [("chain", "Prompt", []), ("generation", "ChatOpenAI", [])]),
            ("chain", "should_continue", [])]
    assert shape(records) == [("agent", "LangGraph", [("chain", "agent", step), ("chain", "tools", [("tool", "weather", [])]),
                                                      ("chain", "agent", step)])]
    first, second = _generations(records)
    assert first["output"]["tool_calls"][0]["args"] == {"city": "Paris"}
    assert second["input"][-1] == {"role": "tool", "content": "sunny in Paris", "tool_call_id": "call_0"}
    assert second["output"] == {"role": "assistant", "content": "It is sunny."}
    [tool_run] = [r for r in records if r["type"] == "tool"]
    assert tool_run["output"] == "sunny in Paris" and tool_run["level"] == "DEFAULT"


# -- 4. structured output -------------------------------------------------------------------------
def _person_replies(body: dict[str, Any]) -> Script:
    if "response_format" in body:
        return Script(reply='{"name": "Ann", "age": 3}')
    return Script(tool_calls=[{"name": "Person", "arguments": '{"name": "Ann", "age": 3}'}])


@pytest.mark.parametrize("streamed", [False, True])
def test_structured_output_through_the_sdk_parse_helper_records_json_parameters(
        traced: Traced, streamed: bool) -> None:
    with FakeOpenAI(_person_replies) as fake:
        model = _model(fake).with_structured_output(Person, method="json_schema")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydantic's about the SDK's parsed chunk, with or without autotrace
            result = list(model.stream("who?"))[-1] if streamed else model.invoke("who?")
    assert result == Person(name="Ann", age=3)
    records = traced.records()
    assert shape(records) == [("chain", SEQ, [("generation", "ChatOpenAI", []), ("chain", "_check_refusal", []),
                                              ("chain", "RunnableLambda", [])])]
    gen = _generations(records)[0]
    assert gen["model_parameters"] == {"response_format": "Person"}  # JSON, the schema by name
    assert gen["output"] == {"role": "assistant", "content": '{"name": "Ann", "age": 3}'}
    assert gen["usage"]["total"] == 14 and gen["metadata"]["finish_reason"] == "stop"


def test_structured_output_by_function_calling(traced: Traced) -> None:
    with FakeOpenAI(_person_replies) as fake:
        result = _model(fake).with_structured_output(Person, method="function_calling").invoke("who?")
    assert result == Person(name="Ann", age=3)
    gen = _generations(traced.records())[0]
    assert gen["model_parameters"] == {"tools": ["Person"], "parallel_tool_calls": False,
                                       "tool_choice": {"type": "function", "function": {"name": "Person"}}}
    assert gen["output"]["tool_calls"] == [{"name": "Person", "args": {"name": "Ann", "age": 3}, "id": "call_0",
                                            "type": "tool_call"}]


# -- 5. the Responses API -------------------------------------------------------------------------
@pytest.mark.parametrize("streamed", [False, True])
def test_the_responses_api_is_one_generation_with_its_status(traced: Traced, fake: FakeOpenAI, streamed: bool) -> None:
    model = _model(fake, use_responses_api=True)
    if streamed:
        chunks = list(model.stream("hi there"))
        text = "".join(block["text"] for c in chunks for block in c.content if block.get("type") == "text")
    else:
        text = model.invoke("hi there").text
    assert text == "echo: hi there"
    [gen] = traced.records()
    assert [q["path"] for q in fake.requests] == ["/v1/responses"]
    assert gen["usage"] == {"input": 10, "output": 6, "total": 16, "input_cached_tokens": 0,
                            "output_reasoning_tokens": 0}
    assert [block["text"] for block in gen["output"]["content"]] == ["echo: hi there"]
    assert gen["metadata"]["finish_reason"] == "completed"  # the response's status, streamed or not
    assert gen["cost"] == pricing.cost("gpt-4o-mini", gen["usage"])


# -- 6. errors ------------------------------------------------------------------------------------
def _failing_call(fake: FakeOpenAI, case: str) -> tuple[Any, ...]:
    """What the user gets from a failing call: the exception's type, text, cause and status."""
    options: dict[str, Any] = {}
    if case == "400":
        fake.script(error=(400, "bad request"))
    elif case in ("500", "500-retried"):
        fake.script(error=(500, "boom")).script(error=(500, "boom again"))
        options["max_retries"] = 1 if case == "500-retried" else 0
    else:  # a timeout
        fake.delay(0.5)
        options["timeout"] = 0.1
    try:
        _model(fake, **options).invoke("hi")
    except Exception as error:
        return (type(error), str(error), type(error.__cause__), getattr(error, "status_code", None))
    finally:
        fake.delay(0)
        while fake._scripts:  # an error not used (``max_retries=0``): not the next call's
            fake._scripts.popleft()
    raise AssertionError("no error")


@pytest.mark.parametrize(("case", "status"), [
    ("400", "OpenAIInvalidRequestError: Error code: 400 - bad request"),
    ("500", "OpenAIAPIError: Error code: 500 - boom"),
    ("500-retried", "OpenAIAPIError: Error code: 500 - boom again"),
    ("timeout", "OpenAITimeoutError: Request timed out."),
])
def test_a_failed_call_raises_as_without_autotrace_and_is_one_error_generation(
        tmp_path: Path, fake: FakeOpenAI, case: str, status: str) -> None:
    without = _failing_call(fake, case)
    traced = _install(tmp_path)
    assert _failing_call(fake, case) == without
    [gen] = traced.records()  # no orphan generation of the OpenAI integration
    assert (gen["type"], gen["name"], gen["level"], gen["status_message"]) == ("generation", "ChatOpenAI", "ERROR",
                                                                               status)
    assert gen["error"] is True and gen["output"] is None and gen["usage"] is None


async def test_an_async_failed_call_raises_as_without_autotrace(tmp_path: Path, fake: FakeOpenAI) -> None:
    async def fail() -> tuple[Any, ...]:
        fake.script(error=(400, "bad request"))
        with pytest.raises(Exception) as caught:
            await _model(fake).ainvoke("hi")
        return type(caught.value), str(caught.value), type(caught.value.__cause__)

    without = await fail()
    traced = _install(tmp_path)
    assert await fail() == without
    [gen] = traced.records()
    assert (gen["level"], gen["status_message"]) == ("ERROR", "OpenAIInvalidRequestError: Error code: 400 - bad request")


# -- 7. embeddings --------------------------------------------------------------------------------
async def test_embeddings_are_one_embedding_per_call(traced: Traced, fake: FakeOpenAI) -> None:
    from langchain_openai import OpenAIEmbeddings

    # each LangChain call is one embedding (``langchain_embeddings``); its SDK requests only enrich it
    embeddings = OpenAIEmbeddings(model="text-embedding-3-small", base_url=fake.base_url, api_key="sk-test",
                                  check_embedding_ctx_length=False, dimensions=4)
    assert len(embeddings.embed_documents(["a b", "c"])) == 2
    assert len(embeddings.embed_query("q")) == 4
    assert len(await embeddings.aembed_documents(["x"])) == 1
    records = traced.records()
    assert shape(records) == [("embedding", "OpenAIEmbeddings.embed_documents", []),
                              ("embedding", "OpenAIEmbeddings.embed_query", []),
                              ("embedding", "OpenAIEmbeddings.embed_documents", [])]
    assert [r["input"] for r in records] == [["a b", "c"], "q", ["x"]]
    assert [r["usage"] for r in records] == [{"input": 9, "total": 9}] + [{"input": 4, "total": 4}] * 2
    assert {(r["model"], r["metadata"]["dimensions"], r["level"]) for r in records} == {
        ("text-embedding-3-small", 4, "DEFAULT")}


# -- 8. what else a user does ---------------------------------------------------------------------
class _Choices(FakeOpenAI):
    """The loopback server, answering ``n`` choices (it gives one)."""

    def _chat(self, body: dict[str, Any], script: Script, chunks: int) -> Any:
        reply = super()._chat(body, script, chunks)
        if isinstance(reply, dict) and body.get("n", 1) > 1:
            first = reply["choices"][0]
            reply["choices"] = [{**first, "index": i, "message": {**first["message"], "content": f"choice {i}"}}
                                for i in range(body["n"])]
        return reply


def test_n_choices_and_extra_request_options_are_recorded(traced: Traced) -> None:
    with _Choices() as fake:
        model = _model(fake, n=2, seed=3, model_kwargs={"user": "u-1"}, extra_body={"top_k": 5})
        result = model.generate([[HumanMessage("hey")]])
        body = fake.requests[0]["body"]
    assert [g.text for g in result.generations[0]] == ["choice 0", "choice 1"]
    assert (body["n"], body["user"], body["top_k"]) == (2, "u-1", 5)
    [gen] = traced.records()
    assert gen["output"] == [{"role": "assistant", "content": "choice 0"}, {"role": "assistant", "content": "choice 1"}]
    assert gen["model_parameters"] == {"n": 2, "seed": 3, "user": "u-1", "extra_body": {"top_k": 5}}


def test_a_users_own_handler_and_run_name_alongside(traced: Traced, fake: FakeOpenAI) -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    class Tokens(BaseCallbackHandler):
        def __init__(self) -> None:
            self.totals: list[int] = []

        def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            self.totals.append(response.generations[0][0].message.usage_metadata["total_tokens"])

    handler = Tokens()
    model = _model(fake).with_config(run_name="Writer", tags=["draft"], metadata={"team": "docs"})
    assert model.invoke("hey", config={"callbacks": [handler]}).content == "echo: hey"
    assert handler.totals == [12]
    [gen] = traced.records()
    assert (gen["name"], gen["metadata"]) == ("Writer", {"provider": "openai", "finish_reason": "stop", "team": "docs",
                                                         "tags": ["draft"]})
    assert gen["tags"] == ["draft"]  # a root run's tags are the trace's
