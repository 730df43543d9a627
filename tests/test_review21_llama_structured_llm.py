"""A ``StructuredLLM`` (``llm.as_structured_llm(cls)``) records the usage and model parameters of the
LLM it wraps (real llama-index-core). Its ``chat``/``achat``/``complete`` is one generation: the
wrapped LLM's call, made through a structured prediction, is that same call and is not recorded
apart, and the reply the wrapper returns holds the parsed object as its ``raw``, not the model's
usage. Its generation had no usage (no cost) and no temperature, though the same model call made
by ``llm.structured_predict`` recorded both."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.mock import MockLLM
from pydantic import BaseModel

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.llama_doubles import OpenAIBacked

pytestmark = pytest.mark.integrations("llama_index")

PET = '{"name": "rex", "age": 3}'


class Pet(BaseModel):
    name: str
    age: int


class Priced(MockLLM):
    """An LLM with a temperature whose replies carry their usage as Anthropic's SDK reports it."""

    temperature: float = 0.2

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=PET, raw={"usage": {"input_tokens": 11, "output_tokens": 5}})

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self.complete(prompt)


def test_a_structured_llm_records_the_usage_and_settings_of_the_llm_it_wraps(traced: Traced) -> None:
    structured = Priced().as_structured_llm(Pet)
    question = [ChatMessage(role="user", content="a dog")]
    assert structured.chat(question).raw == Pet(name="rex", age=3)
    assert asyncio.run(structured.achat(question)).raw == Pet(name="rex", age=3)
    assert structured.complete("a dog").raw == Pet(name="rex", age=3)
    records = traced.records()
    assert shape(records) == [("generation", "StructuredLLM.chat", []), ("generation", "StructuredLLM.achat", []),
                              ("generation", "StructuredLLM.complete", [])]
    for record in records:
        assert record["usage"] == {"input": 11, "output": 5, "total": 16}, record["name"]
        assert record["model_parameters"] == {"temperature": 0.2}, record["name"]
    assert records[0]["output"] == {"role": "assistant", "content": '{"name":"rex","age":3}'}


@pytest.mark.integrations("llama_index", "openai")
def test_a_structured_llm_over_openai_counts_its_request_once(traced: Traced) -> None:
    with FakeOpenAI() as fake:
        fake.script(reply=PET, usage=(20, 7))
        structured = OpenAIBacked(base_url=fake.base_url).as_structured_llm(Pet)
        assert structured.complete("a dog").raw == Pet(name="rex", age=3)
        assert len(fake.requests) == 1
    (record,) = traced.records()
    assert (record["name"], record["model"]) == ("StructuredLLM.complete", "gpt-4o-mini")
    usage = record["usage"]
    assert (usage["input"], usage["output"], usage["total"]) == (20, 7, 27)  # the reply's, once: not added again
