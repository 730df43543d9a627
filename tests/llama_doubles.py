"""LlamaIndex test doubles shared by tests/test_llama_index*.py: scripted LLMs and agent set-ups."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import openai
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse, LLMMetadata, ToolCallBlock
from llama_index.core.embeddings.mock_embed_model import MockEmbedding
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM, MockLLM


class FakeLLM(CustomLLM):
    """A completion LLM reporting ``model``: ``complete`` returns ``answer``, ``stream_complete`` ``chunks``.

    Both hooks raise NotImplementedError unless overridden; neither is an LLM method of LlamaIndex's
    (``LLM.stream`` is), so neither is a span. The spans are named after the subclass
    (``Metered.stream_complete``): LlamaIndex names them after the instance's class.
    """

    model: ClassVar[str]

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model)

    def answer(self, prompt: str) -> CompletionResponse:
        """The whole reply to ``prompt``."""
        raise NotImplementedError

    def chunks(self, prompt: str) -> Iterator[CompletionResponse]:
        """The reply to ``prompt`` as chunks."""
        raise NotImplementedError

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self.answer(prompt)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Iterator[CompletionResponse]:
        return self.chunks(prompt)


class OpenAIBacked(FakeLLM):
    """A LlamaIndex LLM calling a real OpenAI client, streamed or not (llama-index-llms-openai is
    not installed); a stream's request is made before ``stream_complete`` returns, inside its span."""

    model = "gpt-4o-mini"
    base_url: str

    def _client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key="k", max_retries=0)

    def answer(self, prompt: str) -> CompletionResponse:
        reply = self._client().chat.completions.create(model=self.model, messages=[{"role": "user", "content": prompt}])
        return CompletionResponse(text=reply.choices[0].message.content or "", raw=reply)

    def chunks(self, prompt: str) -> Iterator[CompletionResponse]:
        stream = self._client().chat.completions.create(model=self.model, stream=True,
                                                        messages=[{"role": "user", "content": prompt}])

        def pieces() -> Iterator[CompletionResponse]:
            text = ""
            for chunk in stream:
                delta = chunk.choices[0].delta.content or "" if chunk.choices else ""
                text += delta
                yield CompletionResponse(text=text, delta=delta)

        return pieces()


def two_chunks(text: str, at: int) -> Iterator[CompletionResponse]:
    """``text`` streamed in two chunks, cut at ``at``."""
    return (CompletionResponse(text=text[:end], delta=piece) for end, piece in ((at, text[:at]), (None, text[at:])))


class Scripted(FakeLLM):
    """An LLM that answers from a script, enough to drive a real ReAct agent."""

    model = "scripted"
    replies: list[str]

    def answer(self, prompt: str) -> CompletionResponse:
        return CompletionResponse(text=self.replies.pop(0))

    def chunks(self, prompt: str) -> Iterator[CompletionResponse]:
        return two_chunks(self.replies.pop(0), 9)


class Flaky(FakeLLM):
    """A streaming LLM whose connection drops after the first chunk."""

    model = "flaky"

    def chunks(self, prompt: str) -> Iterator[CompletionResponse]:
        yield CompletionResponse(text="par", delta="par")
        raise ConnectionError("connection reset mid-stream")


def scripted(*replies: ChatMessage) -> MockFunctionCallingLLM:
    """A function-calling LLM answering with ``replies`` in turn."""
    queue = list(replies)
    return MockFunctionCallingLLM(response_generator=lambda messages, **kwargs: queue.pop(0))


def calls(name: str, **arguments: Any) -> ChatMessage:
    """A reply asking for one tool call (id ``c-<name>``)."""
    return ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_call_id=f"c-{name}", tool_name=name,
                                                               tool_kwargs=arguments)])


def called(name: str, **arguments: Any) -> dict[str, Any]:
    """A generation's output asking for one tool call."""
    return {"role": "assistant", "content": None, "tool_calls": [{"id": f"c-{name}", "name": name,
                                                                   "arguments": arguments}]}


def lookup(order_id: str) -> str:
    """Look an order up."""
    return f"{order_id} shipped"


def price(order_id: str) -> str:
    """Price an order."""
    return f"{order_id} costs 5"


def broken(order_id: str) -> str:
    """Always fails."""
    raise ValueError(f"no {order_id}")


def billing_desk(*billing_replies: ChatMessage, tools: Sequence[Any], streaming: bool = True) -> AgentWorkflow:
    """triage hands off to billing, which has ``tools`` and answers with ``billing_replies``."""
    triage = FunctionAgent(name="triage", description="routes requests", can_handoff_to=["billing"], streaming=streaming,
                           llm=scripted(calls("handoff", to_agent="billing", reason="a refund")))
    billing = FunctionAgent(name="billing", description="refunds orders", tools=list(tools), streaming=streaming,
                            llm=scripted(*billing_replies))
    return AgentWorkflow(agents=[triage, billing], root_agent="triage")


def run_reading_events(agent: Any, user_msg: str) -> tuple[str, list[str]]:
    """Run ``agent`` on ``user_msg``, reading its events: its answer and the kind of each event."""

    async def run() -> tuple[str, list[str]]:
        handler = agent.run(user_msg=user_msg)
        kinds = [type(event).__name__ async for event in handler.stream_events()]
        return str(await handler), kinds

    return asyncio.run(run())


def indexed(*texts: str, llm: Any = None) -> Iterator[VectorStoreIndex]:
    """A fixture's body: an index of ``texts`` (ids d1, d2, ...) built and used with ``llm`` (default
    MockLLM(max_tokens=4)) and MockEmbedding(embed_dim=8) as Settings, restored after."""
    previous = Settings._llm, Settings._embed_model
    Settings.llm = MockLLM(max_tokens=4) if llm is None else llm
    Settings.embed_model = MockEmbedding(embed_dim=8)
    yield VectorStoreIndex.from_documents([Document(text=text, doc_id=f"d{i}") for i, text in enumerate(texts, 1)])
    Settings._llm, Settings._embed_model = previous
