"""Critical review 18 (real langchain-core and langchain-openai over the loopback server): only a
reply LangChain's cache gave costs nothing. LangChain zeroes ``total_cost`` on the cached generation
itself, the very object the call that paid for it still holds: a ``generate`` of the same prompt
twice ended its first, paid, run after the second's cache hit, and recorded it free too."""

from __future__ import annotations

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from autotrace.integrations.openai import pricing
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("langchain", "openai")


def test_only_the_reply_the_cache_gave_costs_nothing(traced: Traced, fake: FakeOpenAI) -> None:
    model = ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="sk-test", max_retries=0,
                       cache=InMemoryCache())
    prompts = [[HumanMessage("hi")], [HumanMessage("hi")]]
    result = model.generate(prompts)  # (agenerate asks for both at once: neither is the cache's)
    assert len(fake.requests) == 1 and len(result.generations) == 2  # the second is the cache's
    paid, cached = traced.records()
    assert paid["usage"] == cached["usage"] and paid["usage"]["total"] == 12
    assert (paid.get("cost"), cached.get("cost")) == (pricing.cost("gpt-4o-mini", paid["usage"]), {"total": 0.0})
