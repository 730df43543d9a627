"""Built-in prices of OpenAI's late-2026 text models: recorded cost through the real SDK against the
loopback fake server, name resolution, the long-context tier and cache writes."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from autotrace.integrations.openai import pricing
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "where is my order"}]


def _expected(tokens_in: int, cached: int, tokens_out: int, price: tuple[float, float, float]) -> dict[str, float]:
    input_cost = ((tokens_in - cached) * price[0] + cached * price[1]) / 1e6
    output_cost = tokens_out * price[2] / 1e6
    return {"input": input_cost, "output": output_cost, "total": input_cost + output_cost}


def _record(traced: Traced) -> dict[str, Any]:
    (record,) = traced.records()
    return record


# one model per family, as a response names it: (API, returned model, its price)
FAMILIES = [
    ("chat", "gpt-6.2-sol", (2.0, 0.10, 10.0)),
    ("responses", "gpt-6-astra", (10.0, 1.0, 50.0)),
    ("chat", "gpt-5.6-terra", (2.0, 0.20, 12.0)),
    ("responses", "gpt-5.5-2026-04-23", (5.0, 0.50, 30.0)),
    ("chat", "gpt-5.4-nano", (0.20, 0.02, 1.25)),
    ("chat", "gpt-5.2-pro", (21.0, 21.0, 168.0)),
    ("responses", "gpt-5.1-2025-11-13", (1.25, 0.125, 10.0)),
]


@pytest.mark.parametrize(("api", "model", "price"), FAMILIES)
def test_a_current_model_records_its_cost(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI, api: str,
                                          model: str, price: tuple[float, float, float]) -> None:
    fake.script(reply="ok", usage=(12_000, 800), model=model, cached_tokens=4_000)
    if api == "chat":
        client.chat.completions.create(model=model, messages=MESSAGES)
    else:
        client.responses.create(model=model, input="where is my order")
    record = _record(traced)
    assert record["model"] == model
    assert record["usage"]["input_cached_tokens"] == 4_000
    assert record["cost"] == pytest.approx(_expected(12_000, 4_000, 800, price))


def test_a_long_request_is_billed_at_the_long_context_rates(traced: Traced, client: openai.OpenAI,
                                                            fake: FakeOpenAI) -> None:
    """Past 272K input tokens (cached ones counted) the whole request costs 2x input and cache,
    1.5x output; at exactly 272K it is still the standard rate."""
    fake.script(reply="ok", usage=(300_000, 2_000), model="gpt-5.4", cached_tokens=100_000)
    fake.script(reply="ok", usage=(272_000, 2_000), model="gpt-5.4", cached_tokens=100_000)
    client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
    client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
    long, standard = traced.records()
    assert long["cost"] == pytest.approx({"input": 2 * (200_000 * 2.50 + 100_000 * 0.25) / 1e6,
                                          "output": 1.5 * 2_000 * 15.0 / 1e6,
                                          "total": 2 * (200_000 * 2.50 + 100_000 * 0.25) / 1e6 + 0.045})
    assert standard["cost"] == pytest.approx(_expected(272_000, 100_000, 2_000, (2.50, 0.25, 15.0)))


def test_a_model_without_the_tier_is_not_scaled() -> None:
    assert pricing.cost("gpt-5.4-mini", {"input": 300_000, "output": 1_000}) == pytest.approx(
        _expected(300_000, 0, 1_000, (0.75, 0.075, 4.50)))


def test_cache_writes_are_billed_at_their_rate() -> None:
    """Tokens written to the cache cost the model's cache-write rate (doubled past 272K); a model
    that bills no writes apart prices them as input."""
    usage = {"input": 10_000, "input_cached_tokens": 2_000, "input_cache_write_tokens": 5_000, "output": 100}
    assert pricing.cost("gpt-6.2-sol", usage) == pytest.approx(
        {"input": (3_000 * 2.0 + 2_000 * 0.10 + 5_000 * 2.50) / 1e6, "output": 100 * 10.0 / 1e6,
         "total": (3_000 * 2.0 + 2_000 * 0.10 + 5_000 * 2.50 + 100 * 10.0) / 1e6})
    assert pricing.cost("gpt-5.5", usage) == pytest.approx(_expected(10_000, 2_000, 100, (5.0, 0.50, 30.0)))
    long = {"input": 400_000, "input_cached_tokens": 0, "input_cache_write_tokens": 500_000, "output": 0}
    assert pricing.cost("gpt-6-luna", long) == pytest.approx(  # a count past the uncached input is clamped
        {"input": 2 * 400_000 * 0.125 / 1e6, "output": 0.0, "total": 2 * 400_000 * 0.125 / 1e6})


def test_a_price_set_by_the_caller_replaces_the_adjustments() -> None:
    pricing.set_prices({"gpt-5.4": (1.0, 0.5, 2.0), "gpt-6-sol": (1.0, 0.5, 2.0)})
    assert pricing.cost("gpt-5.4", {"input": 1_000_000, "output": 1_000_000}) == {
        "input": 1.0, "output": 2.0, "total": 3.0}
    assert pricing.cost("gpt-6-sol", {"input": 2, "input_cache_write_tokens": 2, "output": 0}) == pytest.approx(
        {"input": 2.0 / 1e6, "output": 0.0, "total": 2.0 / 1e6})


RESOLVES = [
    ("gpt-6.2-sol", (2.0, 0.10, 10.0)),
    ("gpt-6.1-sol", (2.0, 0.10, 10.0)),
    ("gpt-6-sol-2026-09-22", (2.0, 0.20, 10.0)),
    ("gpt-6-luna", (0.10, 0.01, 0.50)),
    ("gpt-5.6-luna", (0.20, 0.02, 1.20)),
    ("gpt-5.5-2026-04-23", (5.0, 0.50, 30.0)),
    ("gpt-5.5-pro", (30.0, 30.0, 180.0)),
    ("gpt-5.4-mini-2026-03-17", (0.75, 0.075, 4.50)),
    ("gpt-5.2-2025-12-11", (1.75, 0.175, 14.0)),
    ("gpt-5.1-2025-11-13", (1.25, 0.125, 10.0)),
    ("gpt-5-2025-08-07", (1.25, 0.125, 10.0)),
]
#: Names that must not borrow a listed model's price: other models sharing a prefix, aliases
#: whose price OpenAI's pages do not equate with their base, and models left unpriced.
UNPRICED = [
    "gpt-5.1x", "gpt-5.11", "gpt-5.1-codex", "gpt-5.1-codex-max", "gpt-5.1-chat-latest", "gpt-5.2-chat-latest",
    "gpt-5.2-codex", "gpt-5.3-codex", "gpt-5.4-pro", "gpt-5-pro", "gpt-5.5-pro-x", "xgpt-5.5", "gpt-5.5 ",
    "GPT-5.5", "gpt-5.6", "gpt-5.6-sol", "gpt-6", "gpt-6.2-astra", "gpt-6.1-terra", "gpt-6-sol-preview",
    "gpt-5.5-2026-04", "openai/gpt-5.5",
]


@pytest.mark.parametrize(("name", "price"), RESOLVES)
def test_snapshot_names_resolve_to_their_model(name: str, price: tuple[float, float, float]) -> None:
    assert pricing.price_of(name) == price


@pytest.mark.parametrize("name", UNPRICED)
def test_other_names_get_no_price(name: str) -> None:
    assert pricing.price_of(name) is None
    assert pricing.cost(name, {"input": 10, "output": 10}) is None


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_cache_writes_the_server_reports_are_recorded_and_billed(traced: Traced, client: openai.OpenAI,
                                                                 fake: FakeOpenAI, api: str) -> None:
    """A reply's ``cache_write_tokens`` (input details) become ``input_cache_write_tokens``, billed at
    the model's cache-write rate."""
    fake.script(reply="ok", usage=(10_000, 100), model="gpt-6.2-sol", cached_tokens=2_000, cache_write_tokens=5_000)
    if api == "chat":
        client.chat.completions.create(model="gpt-6.2-sol", messages=MESSAGES)
    else:
        client.responses.create(model="gpt-6.2-sol", input="where is my order")
    record = _record(traced)
    assert {key: record["usage"][key] for key in ("input", "input_cached_tokens", "input_cache_write_tokens")} == {
        "input": 10_000, "input_cached_tokens": 2_000, "input_cache_write_tokens": 5_000}
    assert record["cost"] == pytest.approx(
        {"input": (3_000 * 2.0 + 2_000 * 0.10 + 5_000 * 2.50) / 1e6, "output": 100 * 10.0 / 1e6,
         "total": (3_000 * 2.0 + 2_000 * 0.10 + 5_000 * 2.50 + 100 * 10.0) / 1e6})


def test_a_streamed_reply_records_its_cache_writes(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply="ok", usage=(10_000, 100), model="gpt-6.2-sol", cache_write_tokens=5_000)
    assert [c.choices[0].delta.content for c in client.chat.completions.create(
        model="gpt-6.2-sol", messages=MESSAGES, stream=True) if c.choices and c.choices[0].delta.content] == ["o", "k"]
    assert _record(traced)["usage"]["input_cache_write_tokens"] == 5_000
