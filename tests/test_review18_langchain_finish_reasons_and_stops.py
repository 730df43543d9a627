"""LangChain review 18 (real langchain-core, langchain-openai over the loopback server): a reply's
finish reason is recorded under whichever provider's key LangChain keeps it (Anthropic's
``stop_reason``, Bedrock Converse's ``stopReason``, Ollama's ``done_reason``), and stop sequences,
given to the model or to the call, are among a generation's model parameters; a reply LangChain
takes from its cache costs nothing (as LangChain says), not its tokens priced again."""

from __future__ import annotations

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_openai import ChatOpenAI

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("langchain", "openai")

USAGE = {"input": 7, "output": 5, "total": 12, "input_cached_tokens": 0, "output_reasoning_tokens": 0}


@pytest.mark.parametrize(("key", "reason"), [("stop_reason", "max_tokens"), ("stopReason", "max_tokens"),
                                             ("done_reason", "length")])
def test_a_providers_own_finish_reason_key_is_the_generations_finish_reason(
        traced: Traced, key: str, reason: str) -> None:
    # as ChatAnthropic, ChatBedrockConverse and ChatOllama reply: the API's own name for it
    reply = AIMessage(content="cut sh", response_metadata={key: reason, "model_name": "claude-x"},
                      usage_metadata={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5})
    assert GenericFakeChatModel(messages=iter([reply])).invoke("hi").content == "cut sh"
    gen = traced.one()
    assert (gen["type"], gen["model"], gen["usage"]) == ("generation", "claude-x", {"input": 3, "output": 2, "total": 5})
    assert gen["metadata"] == {"provider": "genericfakechatmodel", "finish_reason": reason}


def test_stop_sequences_given_to_the_model_or_to_the_call_are_model_parameters(
        traced: Traced, fake: FakeOpenAI) -> None:
    model = ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="sk-test", max_retries=0, temperature=0.1)
    assert model.invoke("hi", stop=["\n", "END"]).content == "echo: hi"
    stopped = model.bind(stop=["\n"]).with_config(run_name="bound")
    assert stopped.invoke("hi").content == "echo: hi"
    assert ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="sk-test", max_retries=0,
                      stop=["###"]).with_config(run_name="own").invoke("hi").content == "echo: hi"
    assert model.with_config(run_name="none").invoke("hi").content == "echo: hi"
    assert [body["body"].get("stop") for body in fake.requests] == [["\n", "END"], ["\n"], ["###"], None]
    assert [(r["name"], r["model_parameters"]) for r in traced.records()] == [
        ("ChatOpenAI", {"temperature": 0.1, "stop": ["\n", "END"]}),
        ("bound", {"temperature": 0.1, "stop": ["\n"]}),
        ("own", {"stop": ["###"]}),
        ("none", {"temperature": 0.1})]


def test_a_reply_langchain_takes_from_its_cache_costs_nothing(traced: Traced, fake: FakeOpenAI) -> None:
    model = ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="sk-test", max_retries=0,
                       cache=InMemoryCache())
    first, again = model.invoke("hi"), model.invoke("hi")
    assert again.content == first.content and len(fake.requests) == 1  # the second is the cache's
    assert again.usage_metadata is not None and again.usage_metadata.get("total_cost") == 0  # as LangChain tells it
    paid, cached = traced.records()
    assert paid["usage"] == cached["usage"] == USAGE
    assert paid["cost"]["total"] == pytest.approx(4.05e-06)  # gpt-4o-mini's price of what was sent
    assert cached["cost"] == {"total": 0.0}  # Langfuse would price its tokens again from the model
