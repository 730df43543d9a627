"""LlamaIndex with real llama-index-core: dispatcher shutdown, chat engines, workflow
agents (failing and large tools, context state, handoffs) and concurrent tenants (routers,
sub-questions, rerankers and ingestion: test_llama_index_edges)."""

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms.mock import MockLLM
from llama_index.core.tools import BaseTool, FunctionTool, ToolMetadata
from llama_index.core.workflow import Context

import autotrace
from autotrace import bounds
from autotrace.integrations.llama_index import INTEGRATION
from tests.helpers import Traced, shape
from tests.llama_doubles import FakeLLM, Flaky, billing_desk, called, calls, indexed, scripted, two_chunks
from tests.test_llama_index_edges import ASYNC_QUERY, SYNC_QUERY, TEXT, in_chain

pytestmark = pytest.mark.integrations("llama_index")
dispatcher = get_dispatcher(__name__)


@pytest.fixture
def index() -> Iterator[VectorStoreIndex]:
    yield from indexed("Orders ship in 24 hours.")


def assert_nothing_held() -> None:
    tracker = INTEGRATION.tracker
    assert tracker is not None
    assert not (tracker.open or tracker.streams or tracker.delegates or tracker.skipped or tracker.chats)


class Gated(FakeLLM):
    """A streaming LLM whose chunks wait for ``gate``: its reply is written after the engine returned."""

    model = "gated"
    gate: Any

    def chunks(self, prompt: str) -> Iterator[CompletionResponse]:
        assert self.gate.wait(10)
        yield CompletionResponse(text="late", delta="late")
        yield CompletionResponse(text="late reply", delta=" reply")


class ShutsDown(BaseTool):
    """A tool whose call shuts LlamaIndex's dispatcher down while it runs (as an app stopping does)."""

    @property
    def metadata(self) -> ToolMetadata:
        return ToolMetadata(name="stop", description="shuts the dispatcher down")

    def __call__(self, input: Any) -> Any:
        return self.call(input)

    @dispatcher.span
    def call(self, input: Any) -> str:
        get_dispatcher().shutdown()
        return "stopped"


SHUTDOWN = "LlamaIndex dispatcher shut down before the span ended"


def test_dispatcher_shutdown_ends_the_open_observations_once(index: VectorStoreIndex, traced: Traced) -> None:
    """Dispatcher.shutdown() drops only the spans a handler lists in ``open_spans`` (ours keeps its own),
    then calls ``close()``: a half-read stream, an unread streaming query, a chat reply being written
    and a running tool stayed open, and were never exported."""
    from llama_index.core.chat_engine import SimpleChatEngine

    gate = threading.Event()
    with autotrace.start_chain("request") as outer:
        stream = MockLLM(max_tokens=3).stream_complete("hi")
        assert next(stream).delta == "text "
        unread = index.as_query_engine(streaming=True).query("later")
        writing = SimpleChatEngine.from_defaults(llm=Gated(gate=gate)).stream_chat("chat")
        assert ShutsDown()("now") == "stopped"  # the caller's result, unchanged
        gate.set()
        assert [r.delta for r in stream] == ["text ", "text"]  # read on after the shutdown
        assert "".join(unread.response_gen) == TEXT
        assert "".join(writing.response_gen) == "late reply"
    records = traced.trace(outer.trace_id)
    assert shape(records) == [("chain", "request", [
        ("generation", "MockLLM.stream_complete", []),
        ("chain", "RetrieverQueryEngine.query", [*SYNC_QUERY, ("chain", "CompactAndRefine.synthesize", [])]),
        ("chain", "SimpleChatEngine.stream_chat", [("generation", "Gated.stream_chat", [])]),
        ("tool", "stop", []),
        ("generation", "MockLLM.stream_complete", []),  # read after the synthesis ended: under the caller's span
    ])]
    ended = {r["name"] + ":" + str(r["input"]): (r["level"], r["status_message"], r["output"]) for r in records
             if r["level"] != "DEFAULT"}
    assert ended == {
        "MockLLM.stream_complete:hi": ("WARNING", SHUTDOWN, "text "),  # what the caller had received
        "RetrieverQueryEngine.query:later": ("WARNING", SHUTDOWN, ""),
        "CompactAndRefine.synthesize:later": ("WARNING", SHUTDOWN, ""),
        "SimpleChatEngine.stream_chat:chat": ("WARNING", SHUTDOWN, ""),
        "Gated.stream_chat:[{'role': 'user', 'content': 'chat'}]": ("WARNING", SHUTDOWN,
                                                                    {"role": "assistant", "content": ""}),
        "stop:{'input': 'now'}": ("WARNING", SHUTDOWN, None),
    }
    late = [r for r in records if r["name"] == "MockLLM.stream_complete" and r["input"] != "hi"]
    assert [(r["level"], r["output"]) for r in late] == [("DEFAULT", TEXT)]  # started after: recorded as usual
    assert records[0]["level"] == "DEFAULT"  # the caller's own chain
    assert_nothing_held()


def chat(engine: Any, method: str, message: str) -> str:
    """The reply text, read as a caller reads it for each of the four chat methods."""
    if method == "chat":
        return str(engine.chat(message))
    if method == "stream_chat":
        return "".join(engine.stream_chat(message).response_gen)

    async def run() -> str:
        if method == "achat":
            return str(await engine.achat(message))
        streamed = await engine.astream_chat(message)
        return "".join([token async for token in streamed.async_response_gen()])

    return asyncio.run(run())


LLM_METHOD = {"chat": "complete", "stream_chat": "stream_complete", "achat": "acomplete", "astream_chat": "astream_complete"}


@pytest.mark.parametrize("method", ["chat", "stream_chat", "achat", "astream_chat"])
@pytest.mark.parametrize("mode", ["simple", "condense_plus_context", "context"])
def test_chat_engines_record_one_tree_whose_chain_ends_with_the_reply(index: VectorStoreIndex, traced: Traced,
                                                                      mode: str, method: str) -> None:
    """A streaming chat's engine returned before its reply was written (by a thread or task it starts):
    its chain recorded the empty text of the response object, not the streamed reply."""
    engine = index.as_chat_engine(chat_mode=mode)
    text, records = in_chain("request", lambda: chat(engine, method, "hello"), traced)
    assert text == TEXT
    name = f"{type(engine).__name__}.{method}"
    if mode == "simple":
        assert shape(records) == [("chain", name, [("generation", f"MockLLM.{method}", [])])]
        assert records[1]["output"] == {"role": "assistant", "content": TEXT}
        assert records[1]["input"] == [{"role": "user", "content": "hello"}]
    else:
        synthesize = "CompactAndRefine.asynthesize" if method.startswith("a") else "CompactAndRefine.synthesize"
        assert shape(records) == [("chain", name, [
            *(ASYNC_QUERY if method.startswith("a") else SYNC_QUERY),
            ("chain", synthesize, [("generation", f"MockLLM.{LLM_METHOD[method]}", [])]),
        ])]
        assert records[1]["input"] == records[3]["input"] == "hello"
        assert [r["output"] for r in records[3:]] == [TEXT, TEXT]
    assert (records[0]["input"], records[0]["output"]) == ("hello", TEXT)
    assert all(r["level"] == "DEFAULT" for r in records)
    assert_nothing_held()


def lookup(order_id: str) -> str:
    """Look an order up."""
    raise ConnectionError("order service down")


def report(size: int) -> str:
    """A long report."""
    return "r" * size


async def remember(ctx: Context, note: str) -> str:
    """Keep a note in the run's state."""
    async with ctx.store.edit_state() as state:
        state["notes"] = [*state.get("notes", []), note]
    return f"noted {note}"


@pytest.mark.parametrize("streaming", [True, False])
def test_function_agent_with_a_failing_tool_a_large_output_and_context_state(tmp_path: Path, streaming: bool) -> None:
    """A streamed reply that only asks for tool calls (FunctionAgent streams by default) recorded
    ``content: ""`` and lost its calls; the same reply unstreamed recorded them."""
    from llama_index.core.agent.workflow import FunctionAgent

    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("llama_index",),
                      max_value_bytes=1024, export_interval=0.05)
    llm = scripted(calls("lookup", order_id="o1"), calls("report", size=50_000), calls("remember", note="vip"),
                   ChatMessage(role="assistant", content="done"))
    agent = FunctionAgent(tools=[lookup, report, remember], llm=llm, streaming=streaming)

    async def run() -> tuple[str, Any]:
        ctx = Context(agent)
        answer = await agent.run(user_msg="check o1", ctx=ctx)
        return str(answer), await ctx.store.get("notes")

    assert asyncio.run(run()) == ("done", ["vip"])
    records = Traced(tmp_path / "t.db").records()
    generation = f"MockFunctionCallingLLM.{'astream_chat' if streaming else 'achat'}"
    assert shape(records) == [("agent", "FunctionAgent.run", [
        ("generation", generation, []), ("tool", "lookup", []),
        ("generation", generation, []), ("tool", "report", []),
        ("generation", generation, []), ("tool", "remember", []),
        ("generation", generation, []),
    ])]
    assert (records[0]["input"], records[0]["output"]) == ("check o1", "done")
    outputs = [r["output"] for r in records if r["type"] == "generation"]
    assert outputs == [called("lookup", order_id="o1"), called("report", size=50_000), called("remember", note="vip"),
                       {"role": "assistant", "content": "done"}]
    failed, large, noted = (r for r in records if r["type"] == "tool")
    assert (failed["metadata"]["tool_name"], failed["level"], failed["status_message"], failed["output"]) == (
        "lookup", "ERROR", "ConnectionError: order service down", None)
    assert large["output"] == bounds.truncate("r" * 50_000, 1024)  # cut at the value limit, marked
    assert (noted["output"], noted["input"]["note"]) == ("noted vip", "vip")
    carrying = [bounds.TRUNCATION_MARK in str(r["input"]) for r in records if r["type"] == "generation"]
    assert carrying == [False, False, True, True]  # the inputs after it carry the report: cut there too
    assert_nothing_held()


def refund(order_id: str) -> str:
    """Refund an order."""
    return f"refunded {order_id}"


@pytest.mark.parametrize("streaming", [True, False])
def test_an_agent_workflow_handing_off_between_two_agents_is_one_tree(traced: Traced, streaming: bool) -> None:
    workflow = billing_desk(calls("refund", order_id="o1"), ChatMessage(role="assistant", content="ok"),
                            tools=[refund], streaming=streaming)

    async def run() -> str:
        return str(await workflow.run(user_msg="refund o1"))

    assert asyncio.run(run()) == "ok"
    records = traced.records()
    generation = f"MockFunctionCallingLLM.{'astream_chat' if streaming else 'achat'}"
    assert shape(records) == [("agent", "AgentWorkflow.run", [
        ("agent", "triage", [("generation", generation, []), ("tool", "handoff", [])]),
        ("agent", "billing", [("generation", generation, []), ("tool", "refund", []), ("generation", generation, [])]),
    ])]
    assert (records[0]["input"], records[0]["output"]) == ("refund o1", "ok")
    assert [r["output"] for r in records if r["type"] == "generation"] == [
        called("handoff", to_agent="billing", reason="a refund"), called("refund", order_id="o1"),
        {"role": "assistant", "content": "ok"}]
    handoff, refunded = (r for r in records if r["type"] == "tool")
    assert handoff["metadata"]["tool_name"] == "handoff" and handoff["output"].startswith("Agent billing is now handling")
    assert (refunded["metadata"]["tool_name"], refunded["output"]) == ("refund", "refunded o1")
    assert all(r["level"] == "DEFAULT" for r in records)
    assert_nothing_held()


class ReActScript(FakeLLM):
    """A completion LLM driving a ReAct agent: one tool call, then an answer from its observation."""

    model = "react"
    tool: str

    def reply(self, prompt: str) -> str:
        seen = re.findall(r"Observation: (?!tool response)(.+)", prompt)  # not the prompt's example
        if not seen:
            number = re.findall(r"number (\d+)", prompt)[-1]
            return f'Thought: I need the tool.\nAction: {self.tool}\nAction Input: {{"x": {number}}}\n'
        return f"Thought: I can answer.\nAnswer: {seen[-1]}\n"

    def answer(self, prompt: str) -> CompletionResponse:
        return CompletionResponse(text=self.reply(prompt))

    def chunks(self, prompt: str) -> Iterator[CompletionResponse]:
        return two_chunks(self.reply(prompt), 8)


def test_react_agent_whose_tool_raises(traced: Traced) -> None:
    from llama_index.core.agent.workflow import ReActAgent

    def explode(x: int) -> int:
        """Fails."""
        raise ValueError(f"cannot handle {x}")

    agent = ReActAgent(tools=[FunctionTool.from_defaults(fn=explode)], llm=ReActScript(tool="explode"))

    async def run() -> str:
        return str(await agent.run(user_msg="number 7"))

    assert asyncio.run(run()) == "cannot handle 7"
    records = traced.records()
    assert shape(records) == [("agent", "ReActAgent.run", [
        ("generation", "ReActScript.astream_chat", []), ("tool", "explode", []),
        ("generation", "ReActScript.astream_chat", []),
    ])]
    tool = records[2]
    assert (tool["level"], tool["status_message"], tool["input"]) == ("ERROR", "ValueError: cannot handle 7",
                                                                      {"x": 7})
    assert records[0]["level"] == records[3]["level"] == "DEFAULT"
    assert records[3]["output"] == {"role": "assistant", "content": "Thought: I can answer.\nAnswer: cannot handle 7\n"}
    assert_nothing_held()


def by_trace(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    traces: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        traces.setdefault(record["trace_id"], []).append(record)
    return traces


def test_concurrent_async_queries_chats_and_agents_never_cross_tenants(index: VectorStoreIndex,
                                                                      traced: Traced) -> None:
    """Each task sets its own tenant: every span of its trace (streamed ones too, ended while another
    task reads) belongs to that tenant, and carries that task's question."""
    from llama_index.core.agent.workflow import ReActAgent

    async def double(x: int) -> int:
        """Doubles x."""
        await asyncio.sleep(0)
        return 2 * x

    agent = ReActAgent(tools=[FunctionTool.from_defaults(async_fn=double)], llm=ReActScript(tool="double"))

    async def one(i: int) -> str:
        with autotrace.tenant(f"tenant-{i}"):
            question = f"number {i}"
            if i % 4 == 0:
                return str(await agent.run(user_msg=question))
            if i % 4 == 1:
                streamed = await index.as_chat_engine(chat_mode="context").astream_chat(question)
                return "".join([token async for token in streamed.async_response_gen()])
            response = await index.as_query_engine(streaming=i % 4 == 2).aquery(question)
            if i % 4 == 2:
                return "".join([token async for token in response.async_response_gen()])
            return str(response)

    async def run() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(8)))

    assert asyncio.run(run()) == [str(2 * i) if i % 4 == 0 else TEXT for i in range(8)]
    traces = [t for t in by_trace(traced.records()).values() if t[0]["name"] != "MockEmbedding.get_text_embedding_batch"]
    assert len(traces) == 8
    for records in traces:
        (tenant,) = {r["tenant"] for r in records}
        i = int(tenant.removeprefix("tenant-"))
        assert records[0]["input"] == f"number {i}"
        assert all(f"number {i}" in str(r["input"]) or r["type"] == "tool" for r in records)
        assert all(str(2 * i) in str(r["output"]) for r in records if r["type"] == "tool")
    assert_nothing_held()


def test_streaming_queries_read_in_threads_never_cross_tenants(index: VectorStoreIndex, traced: Traced) -> None:
    """Threads read their responses in lock step, so every stream is open while the others are read."""
    barrier = threading.Barrier(3, timeout=10)
    texts: dict[int, str] = {}

    def one(i: int) -> None:
        with autotrace.tenant(f"tenant-{i}"):
            response = index.as_query_engine(streaming=True).query(f"number {i}")
            streamed = index.as_chat_engine(chat_mode="simple").stream_chat(f"number {i}")
            barrier.wait()
            parts = []
            for token in response.response_gen:
                parts.append(token)
                barrier.wait()
            texts[i] = "".join(parts) + "|" + "".join(streamed.response_gen)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert texts == {i: f"{TEXT}|{TEXT}" for i in range(3)}
    traces = [t for t in by_trace(traced.records()).values() if t[0]["name"] != "MockEmbedding.get_text_embedding_batch"]
    assert sorted(shape(t)[0][1] for t in traces) == ["RetrieverQueryEngine.query"] * 3 + ["SimpleChatEngine.stream_chat"] * 3
    for records in traces:
        (tenant,) = {r["tenant"] for r in records}
        assert records[0]["input"] == f"number {tenant.removeprefix('tenant-')}"
        assert records[0]["output"] == TEXT
    assert_nothing_held()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_chat_reply_whose_stream_fails_ends_its_chain_with_the_error(traced: Traced) -> None:
    from llama_index.core.chat_engine import SimpleChatEngine

    engine = SimpleChatEngine.from_defaults(llm=Flaky())

    def read_async() -> None:
        async def run() -> None:
            streamed = await engine.astream_chat("hi")
            async for _ in streamed.async_response_gen():
                pass

        asyncio.run(run())

    with autotrace.start_chain("request") as outer:
        with pytest.raises(ConnectionError, match="connection reset mid-stream"):
            "".join(engine.stream_chat("hi").response_gen)
        with pytest.raises(ConnectionError, match="connection reset mid-stream"):
            read_async()
    records = traced.trace(outer.trace_id)
    assert shape(records) == [("chain", "request", [
        ("chain", "SimpleChatEngine.stream_chat", [("generation", "Flaky.stream_chat", [])]),
        ("chain", "SimpleChatEngine.astream_chat", [("generation", "Flaky.astream_chat", [])]),
    ])]
    for chain, generation in (records[1:3], records[3:5]):
        assert (chain["level"], chain["status_message"], chain["output"]) == (
            "ERROR", "ConnectionError: connection reset mid-stream", "")
        assert (generation["level"], generation["output"]) == ("ERROR", {"role": "assistant", "content": "par"})
    assert_nothing_held()


def test_a_chat_reply_written_before_its_engine_returned_ends_each_chain_once(traced: Traced) -> None:
    """An engine that waits for its reply to be written: the inner chain ends when the writer does,
    the outer one when it returns the written reply."""
    from llama_index.core.chat_engine import SimpleChatEngine

    class Waiting(SimpleChatEngine):
        def stream_chat(self, message: str, chat_history: Any = None) -> Any:
            reply = super().stream_chat(message, chat_history)
            reply.write_response_to_history_thread.join()
            return reply

    engine = Waiting.from_defaults(llm=MockLLM(max_tokens=4))
    text, records = in_chain("request", lambda: "".join(engine.stream_chat("hello").response_gen), traced)
    assert text == TEXT
    assert shape(records) == [("chain", "Waiting.stream_chat", [("chain", "Waiting.stream_chat", [
        ("generation", "MockLLM.stream_chat", [])])])]
    assert [(r["output"], r["level"]) for r in records[:2]] == [(TEXT, "DEFAULT"), (TEXT, "DEFAULT")]
    assert_nothing_held()


@pytest.mark.parametrize("mode", ["simple", "context"])
def test_a_chat_reply_written_after_its_engine_returned_ends_the_chain_with_it(index: VectorStoreIndex,
                                                                               traced: Traced, mode: str) -> None:
    gate = threading.Event()
    engine = index.as_chat_engine(chat_mode=mode, llm=Gated(gate=gate))

    def run() -> str:
        streamed = engine.stream_chat("hello")
        gate.set()  # the engine has returned: only now is the reply written
        return "".join(streamed.response_gen)

    text, records = in_chain("request", run, traced)
    assert text == "late reply"
    assert (records[0]["name"], records[0]["output"]) == (f"{type(engine).__name__}.stream_chat", "late reply")
    assert records[-1]["output"] == ({"role": "assistant", "content": "late reply"} if mode == "simple" else "late reply")
    assert_nothing_held()
