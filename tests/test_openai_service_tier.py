"""The service tier a reply names prices it: ``flex`` at half the standard rates, ``priority`` (and
the other tiers billed at rates autotrace does not keep) with no cost rather than a wrong one. The
real SDK against the loopback fake server, streamed (the usage event cut from the bytes, or asked
for by the caller) or not, chat and Responses."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from autotrace.integrations.openai import pricing
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "where is my order"}]
PRICE = (2.50, 0.25, 15.0)  # gpt-5.4


def _standard(share: float = 1.0) -> dict[str, float]:
    input_cost = share * (8_000 * PRICE[0] + 4_000 * PRICE[1]) / 1e6
    output_cost = share * 800 * PRICE[2] / 1e6
    return {"input": input_cost, "output": output_cost, "total": input_cost + output_cost}


def _call(client: openai.OpenAI, api: str, stream: str, **options: Any) -> None:
    if api == "responses":
        if stream == "no":
            client.responses.create(model="gpt-5.4", input="where is my order", **options)
        else:
            for _ in client.responses.create(model="gpt-5.4", input="where is my order", stream=True, **options):
                pass
        return
    if stream == "no":
        client.chat.completions.create(model="gpt-5.4", messages=MESSAGES, **options)
        return
    if stream == "asked":
        options["stream_options"] = {"include_usage": True}
    for _ in client.chat.completions.create(model="gpt-5.4", messages=MESSAGES, stream=True, **options):
        pass


SHAPES = [("chat", "no"), ("chat", "default"), ("chat", "asked"), ("responses", "no"), ("responses", "yes")]


@pytest.mark.parametrize(("api", "stream"), SHAPES)
def test_a_flex_reply_costs_half_and_names_its_tier(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI,
                                                    api: str, stream: str) -> None:
    fake.script(reply="ok", usage=(12_000, 800), model="gpt-5.4", cached_tokens=4_000)
    _call(client, api, stream, service_tier="flex")
    (record,) = traced.records()
    assert record["usage"]["input"] == 12_000
    assert record["cost"] == pytest.approx(_standard(0.5))
    assert record["metadata"]["service_tier"] == "flex"
    assert record["model_parameters"]["service_tier"] == "flex"


@pytest.mark.parametrize(("api", "stream"), SHAPES)
def test_a_priority_reply_records_usage_but_no_standard_cost(traced: Traced, client: openai.OpenAI,
                                                             fake: FakeOpenAI, api: str, stream: str) -> None:
    """``service_tier="fast"`` is served (and answered) as ``priority``: billed at rates not kept here."""
    fake.script(reply="ok", usage=(12_000, 800), model="gpt-5.4", cached_tokens=4_000, service_tier="priority")
    _call(client, api, stream, service_tier="fast")
    (record,) = traced.records()
    assert {key: record["usage"][key] for key in ("input", "output", "input_cached_tokens")} == {
        "input": 12_000, "output": 800, "input_cached_tokens": 4_000}
    assert record.get("cost") is None
    assert record["metadata"]["service_tier"] == "priority"


@pytest.mark.parametrize(("api", "stream"), SHAPES)
def test_the_standard_tier_costs_the_standard_price_and_is_not_noted(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI, api: str, stream: str) -> None:
    """``auto`` is answered with the tier that served it: ``default`` here."""
    fake.script(reply="ok", usage=(12_000, 800), model="gpt-5.4", cached_tokens=4_000)
    _call(client, api, stream, service_tier="auto")
    (record,) = traced.records()
    assert record["cost"] == pytest.approx(_standard())
    assert "service_tier" not in (record.get("metadata") or {})


def test_tier_shares_and_junk() -> None:
    usage = {"input": 300_000, "input_cached_tokens": 100_000, "output": 2_000}
    long = pricing.cost("gpt-5.4", usage)
    assert long is not None
    flex = pricing.cost("gpt-5.4", usage, "flex")
    assert flex == pytest.approx({key: value / 2 for key, value in long.items()})  # long context, then halved
    assert pricing.cost("gpt-5.4", usage, "default") == long == pricing.cost("gpt-5.4", usage, None)
    for tier in ("priority", "scale", "fast", "ultrafast", "FLEX", ["flex"], {"flex": 1}, 0.5):
        assert pricing.cost("gpt-5.4", usage, tier) is None  # no price fits it; never raises
    assert pricing.tier_share("flex") == 0.5 and pricing.tier_share(None) == 1.0
