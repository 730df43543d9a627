"""A LangChain chat model's usage with tokens written to the provider's cache (``input_token_details
.cache_creation``, as Anthropic's models report them): recorded as ``input_cache_write_tokens``
beside the cache reads; old code left them out."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from tests.helpers import Traced

pytestmark = pytest.mark.integrations("langchain")


class CachingModel(BaseChatModel):
    """A chat model whose reply reports cache reads and writes, as a caching provider's does."""

    @property
    def _llm_type(self) -> str:
        return "caching"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        usage = {"input_tokens": 120, "output_tokens": 8, "total_tokens": 128,
                 "input_token_details": {"cache_read": 70, "cache_creation": 40}}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="ok", usage_metadata=usage))])


def test_tokens_written_to_the_cache_are_recorded(traced: Traced) -> None:
    assert CachingModel().invoke("hi").content == "ok"
    (generation,) = traced.records()
    assert generation["usage"] == {"input": 120, "output": 8, "total": 128, "input_cached_tokens": 70,
                                   "input_cache_write_tokens": 40}
