"""A LlamaIndex LLM's generation records the model parameters its calls are made with (real
llama-index-core LLM classes): its settings, the ``additional_kwargs`` it sends with every request,
and those a call is given, which win."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse
from llama_index.core.llms.mock import MockLLM

from tests.helpers import Traced
from tests.llama_doubles import FakeLLM

pytestmark = pytest.mark.integrations("llama_index")


class Tuned(FakeLLM):
    """An LLM with sampling settings of its own, as provider LLMs have (OpenAI's, Anthropic's ...)."""

    model = "tuned"
    temperature: float = 0.3
    max_tokens: int | None = None
    additional_kwargs: dict[str, Any] = {}

    def answer(self, prompt: str) -> CompletionResponse:
        return CompletionResponse(text="ok")


def test_a_generation_records_the_model_parameters_of_its_call(traced: Traced) -> None:
    """No LlamaIndex generation recorded any model parameter (temperature, max_tokens ...): the
    OpenAI call an LLM makes is recorded by its generation, which kept only that call's usage."""
    MockLLM(max_tokens=4).complete("hi")
    tuned = Tuned(additional_kwargs={"top_p": 0.9, "seed": 7, "stop": ["\n\n"], "user": "u-1", "tools": [{}]})
    tuned.complete("hello", temperature=0.0)
    tuned.chat([ChatMessage(role="user", content="hey")], max_tokens=64)
    Tuned(temperature=0.5, max_tokens=None).complete("plain")
    records = traced.records()
    assert [(r["name"], r["model_parameters"]) for r in records] == [
        ("MockLLM.complete", {"max_tokens": 4}),
        ("Tuned.complete", {"seed": 7, "stop": ["\n\n"], "temperature": 0.0, "top_p": 0.9}),
        ("Tuned.chat", {"max_tokens": 64, "seed": 7, "stop": ["\n\n"], "temperature": 0.3, "top_p": 0.9}),
        ("Tuned.complete", {"temperature": 0.5}),
    ]
