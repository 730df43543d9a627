"""Critique of the LlamaIndex commit (usage of other providers, streamed structured predictions),
real llama-index-core, its LLMs calling a real OpenAI client over HTTP to the loopback fake.

- LlamaIndex's own LLM classes (OpenAI's, Anthropic's, Gemini's ...) override
  ``stream_structured_predict`` with a span of their own and call ``super()``: the inner call is the
  outer one, not recorded again, and the outer chain ended at once with the stream's ``repr`` as its
  output and its model call beside it, not under it. Their overrides take ``*args, **kwargs``: a
  structured prediction's chain had no input (the prompt's variables) nor the class it fills.
- A usage in OpenAI's names counts every input token in ``prompt_tokens``; LiteLLM's (its ``raw``
  reply, from a LiteLLM proxy too) also names Anthropic's cache reads and writes, which were added
  to that input again: the cached tokens counted twice.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import llama_index.core.instrumentation as instrument
import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse
from llama_index.core.prompts import PromptTemplate
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

import autotrace
from autotrace.integrations.llama_index import INTEGRATION
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.llama_doubles import OpenAIBacked
from tests.test_llama_index_review4 import Replying

pytestmark = pytest.mark.integrations("llama_index", "openai")

PROMPT = PromptTemplate("A song about {topic}")
dispatcher = instrument.get_dispatcher(__name__)


class Song(BaseModel):
    title: str


class Overriding(OpenAIBacked):
    """As LlamaIndex's OpenAI LLM: its structured predictions (``*args, llm_kwargs, **kwargs``) set
    options, then call its base's."""

    @dispatcher.span
    def structured_predict(self, *args: Any, llm_kwargs: Any = None, **kwargs: Any) -> Any:
        return super().structured_predict(*args, llm_kwargs={"tool_choice": "required"}, **kwargs)

    @dispatcher.span
    def stream_structured_predict(self, *args: Any, llm_kwargs: Any = None, **kwargs: Any) -> Any:
        return super().stream_structured_predict(*args, llm_kwargs={"tool_choice": "required"}, **kwargs)

    @dispatcher.span
    async def astream_structured_predict(self, *args: Any, llm_kwargs: Any = None, **kwargs: Any) -> Any:
        return await super().astream_structured_predict(*args, llm_kwargs={"tool_choice": "required"}, **kwargs)


def read(llm: Any, prefix: str) -> list[Any]:
    if not prefix:
        return list(llm.stream_structured_predict(Song, PROMPT, topic="cats"))

    async def drain() -> list[Any]:
        return [item async for item in await llm.astream_structured_predict(Song, prompt=PROMPT, topic="cats")]

    return asyncio.run(drain())


@pytest.mark.parametrize("prefix", ["", "a"])
def test_an_llm_overriding_its_streamed_prediction_is_one_chain_over_its_model_call(
        traced: Traced, fake: FakeOpenAI, prefix: str) -> None:
    fake.script(reply='{"title": "Cats"}', usage=(10, 4), chunks=3)
    with autotrace.start_chain("request"):
        songs = read(Overriding(base_url=fake.base_url), prefix)
    assert songs[-1] == Song(title="Cats")
    gc.collect()
    records = traced.records()
    assert shape(records) == [("chain", "request", [("chain", f"Overriding.{prefix}stream_structured_predict", [
        ("generation", f"Overriding.{prefix}stream_complete", [])])])]
    chain, generation = records[1:]
    assert (chain["input"], chain["output"], chain["metadata"], chain["level"]) == (
        {"topic": "cats"}, {"title": "Cats"}, {"output_cls": "Song"}, "DEFAULT")
    assert generation["start_ns"] >= chain["start_ns"] and generation["end_ns"] <= chain["end_ns"]
    tracker = INTEGRATION.tracker
    assert tracker is not None and not (tracker.open or tracker.skipped or tracker.streams)


def test_an_llm_overriding_its_structured_prediction_records_its_input(traced: Traced, fake: FakeOpenAI) -> None:
    fake.script(reply='{"title": "Cats"}', usage=(10, 4))
    assert Overriding(base_url=fake.base_url).structured_predict(output_cls=Song, prompt=PROMPT, topic="cats") == (
        Song(title="Cats"))
    records = traced.records()
    assert shape(records) == [("chain", "Overriding.structured_predict", [
        ("generation", "Overriding.complete", [])])]
    assert (records[0]["input"], records[0]["output"], records[0]["metadata"]) == (
        {"topic": "cats"}, {"title": "Cats"}, {"output_cls": "Song"})


def litellm_reply() -> ChatCompletion:
    """A LiteLLM reply from Claude (its proxy's JSON read by the OpenAI client): ``prompt_tokens``
    counts the cache reads and writes, also given apart in Anthropic's names."""
    return ChatCompletion.model_validate({
        "id": "c-1", "object": "chat.completion", "created": 1, "model": "claude-sonnet-4-5",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                  "prompt_tokens_details": {"cached_tokens": 1920}, "cache_read_input_tokens": 1920,
                  "cache_creation_input_tokens": 80}})


def test_a_usage_in_openai_names_counts_its_cache_reads_once(traced: Traced) -> None:
    reply = ChatResponse(message=ChatMessage(role="assistant", content="ok"), raw=litellm_reply())
    Replying(reply=reply).chat([ChatMessage(role="user", content="hello")])
    (record,) = traced.records()
    assert record["usage"] == {"input": 2006, "output": 300, "total": 2306, "input_cached_tokens": 1920,
                               "input_cache_write_tokens": 80}
