"""Token usage of LlamaIndex LLMs that are not OpenAI's (real llama-index-core; the replies are
shaped as LlamaIndex's Google GenAI, Bedrock Converse and Ollama LLMs build them): Gemini's
``raw["usage_metadata"]``, Bedrock Converse's camel-case ``raw["usage"]``, and the counts LlamaIndex's
LLMs copy to a response's ``additional_kwargs``. They were read from none of them: no usage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse

from tests.helpers import Traced
from tests.llama_doubles import FakeLLM

pytestmark = pytest.mark.integrations("llama_index")

#: a Gemini reply's ``usage_metadata`` as google-genai's ``model_dump()`` gives it (its unset fields None)
GEMINI = {"cache_tokens_details": None, "cached_content_token_count": 4, "candidates_token_count": 7,
          "candidates_tokens_details": None, "prompt_token_count": 12, "prompt_tokens_details": None,
          "thoughts_token_count": 5, "tool_use_prompt_token_count": None, "tool_use_prompt_tokens_details": None,
          "total_token_count": 24, "traffic_type": None}
#: a Bedrock Converse reply's usage: its cache writes and reads are not in its ``inputTokens``
BEDROCK = {"inputTokens": 4, "outputTokens": 12, "totalTokens": 1160, "cacheReadInputTokens": 11,
           "cacheWriteInputTokens": 1133}
#: the counts LlamaIndex's Ollama LLM copies to a response (from Ollama's ``prompt_eval_count``/``eval_count``)
OLLAMA = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}

REPLIES = {
    "gemini": CompletionResponse(text="ok", raw={"content": {"role": "model"}, "usage_metadata": GEMINI},
                                 additional_kwargs={"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 24}),
    "bedrock": CompletionResponse(text="ok", raw={"output": {"message": {"role": "assistant"}}, "usage": BEDROCK}),
    "ollama": CompletionResponse(text="ok", raw={"model": "llama3", "done": True, "prompt_eval_count": 9,
                                                 "eval_count": 3}, additional_kwargs=OLLAMA),
    # a reply that reported nothing: LlamaIndex's LLMs default the counts they copy to zero
    "none": CompletionResponse(text="ok", raw={"usage": {}},
                               additional_kwargs={"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
}
EXPECTED = {
    "gemini": {"input": 12, "output": 12, "input_cached_tokens": 4, "output_reasoning_tokens": 5, "total": 24},
    "bedrock": {"input": 1148, "output": 12, "input_cached_tokens": 11, "input_cache_write_tokens": 1133,
                "total": 1160},
    "ollama": {"input": 9, "output": 3, "total": 12},
    "none": None,
}


class Provider(FakeLLM):
    """An LLM answering with the reply named by its prompt, whole or streamed (its last chunk
    carrying the usage, as Gemini's, Bedrock's and Ollama's streams do)."""

    model = "provider"

    def answer(self, prompt: str) -> CompletionResponse:
        return REPLIES[prompt.removeprefix("user: ").removesuffix("\nassistant: ")]  # a chat's, as CustomLLM words it

    def chunks(self, prompt: str) -> Iterator[CompletionResponse]:
        last = REPLIES[prompt]
        yield CompletionResponse(text="o", delta="o")
        yield CompletionResponse(text="ok", delta="k", raw=last.raw, additional_kwargs=last.additional_kwargs)


def usages(traced: Traced) -> list[Any]:
    return [r["usage"] for r in traced.records()]


@pytest.mark.parametrize("provider", list(REPLIES))
def test_usage_of_a_provider_s_reply(traced: Traced, provider: str) -> None:
    llm = Provider()
    assert llm.complete(provider).text == "ok"
    assert llm.chat([ChatMessage(role="user", content=provider)]).message.content == "ok"
    assert [c.delta for c in llm.stream_complete(provider)] == ["o", "k"]
    records = traced.records()
    assert [(r["name"], r["type"], r["output"]) for r in records] == [
        ("Provider.complete", "generation", "ok"),
        ("Provider.chat", "generation", {"role": "assistant", "content": "ok"}),
        ("Provider.stream_complete", "generation", "ok")]
    assert [r["usage"] for r in records] == [EXPECTED[provider]] * 3
