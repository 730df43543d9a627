"""Prices a user sets (``autotrace.set_prices``, or the ``prices`` setting of ``install``): per token
with a cache-write rate, per minute of audio, per 1M characters of speech; one way of billing per
model; all of a call's prices or none. Each recorded through the real SDK against the loopback
fake server, as a self-hosted (vLLM-like) or Azure deployment's model would be."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import openai
import pytest

import autotrace
from autotrace.integrations.openai import pricing
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "where is my order"}]
AUDIO = ("call.mp3", b"\xff\xfb" * 1024, "audio/mpeg")
TEXT = "Your order has shipped."  # 23 characters
SECONDS = 4.2  # the fake's duration of any transcribed audio


def _cost(input_cost: float, output_cost: float) -> Any:
    return pytest.approx({"input": input_cost, "output": output_cost, "total": input_cost + output_cost})


def _one(traced: Traced) -> dict[str, Any]:
    (record,) = traced.records()
    return record


def _installed(tmp_path: Path, **options: Any) -> Traced:
    path = tmp_path / "traces.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=("openai",), export_interval=0.05,
                      **options)
    return Traced(path)


def test_set_prices_is_exported_at_the_top() -> None:
    from autotrace.integrations.openai import set_prices

    assert autotrace.set_prices is set_prices is pricing.set_prices
    assert "set_prices" in autotrace.__all__


# -- per token, with cache writes ------------------------------------------------------------------
def test_a_self_hosted_chat_model_is_priced_with_its_cache_writes(traced: Traced, client: openai.OpenAI,
                                                                  fake: FakeOpenAI) -> None:
    autotrace.set_prices({"my-llama": {"input": 0.5, "cached_input": 0.05, "cache_write": 0.625, "output": 1.5}})
    fake.script(reply="ok", usage=(10_000, 500), model="my-llama", cached_tokens=2_000, cache_write_tokens=3_000)
    client.chat.completions.create(model="my-llama", messages=MESSAGES)
    record = _one(traced)
    assert (record["model"], record["usage"]) == ("my-llama", {
        "input": 10_000, "output": 500, "total": 10_500, "input_cached_tokens": 2_000,
        "input_cache_write_tokens": 3_000, "output_reasoning_tokens": 0})
    assert record["cost"] == _cost((5_000 * 0.5 + 2_000 * 0.05 + 3_000 * 0.625) / 1e6, 500 * 1.5 / 1e6)


def test_cached_input_defaults_to_the_input_price_and_a_dated_name_uses_it(traced: Traced, client: openai.OpenAI,
                                                                          fake: FakeOpenAI) -> None:
    autotrace.set_prices({"my-llama": {"input": 2, "output": 8}})
    fake.script(reply="ok", usage=(1_000, 100), model="my-llama-2026-01-15", cached_tokens=400)
    client.chat.completions.create(model="my-llama", messages=MESSAGES)
    assert _one(traced)["cost"] == _cost(1_000 * 2.0 / 1e6, 100 * 8.0 / 1e6)
    assert pricing.price_of("my-llama") == (2.0, 2.0, 8.0)


def test_a_built_in_model_is_overridden_with_its_adjustments_replaced(traced: Traced, client: openai.OpenAI,
                                                                      fake: FakeOpenAI) -> None:
    """An Azure deployment's own rates for ``gpt-5.4``: no long-context tier, its cache-write rate."""
    autotrace.set_prices({"gpt-5.4": {"input": 1.0, "output": 4.0, "cached_input": 0.1, "cache_write": 1.5}})
    fake.script(reply="ok", usage=(300_000, 1_000), model="gpt-5.4", cached_tokens=100_000,
                cache_write_tokens=50_000)
    client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
    assert _one(traced)["cost"] == _cost((150_000 * 1.0 + 100_000 * 0.1 + 50_000 * 1.5) / 1e6, 1_000 * 4.0 / 1e6)
    autotrace.set_prices({"gpt-5.4": (1.0, 0.1, 4.0)})  # the tuple form: the cache-write rate goes too
    assert pricing.cost("gpt-5.4", {"input": 10, "input_cache_write_tokens": 10, "output": 0}) == _cost(1e-5, 0.0)


# -- per minute of audio, per 1M characters of speech ----------------------------------------------
def test_a_self_hosted_transcription_model_is_priced_by_duration(traced: Traced, client: openai.OpenAI) -> None:
    autotrace.set_prices({"faster-whisper-large-v3": {"per_minute": 0.003}})
    result = client.audio.transcriptions.create(model="faster-whisper-large-v3", file=AUDIO,
                                                response_format="verbose_json")
    assert result.duration == SECONDS
    record = _one(traced)
    assert (record["model"], record["metadata"]["audio_seconds"]) == ("faster-whisper-large-v3", SECONDS)
    assert record["cost"] == _cost(SECONDS / 60 * 0.003, 0.0)


def test_a_per_minute_price_replaces_a_built_in_per_token_one(traced: Traced, client: openai.OpenAI) -> None:
    autotrace.set_prices({"gpt-4o-transcribe": {"per_minute": 0.01}})
    client.audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO, response_format="verbose_json")
    assert _one(traced)["cost"] == _cost(SECONDS / 60 * 0.01, 0.0)


def test_a_self_hosted_speech_model_is_priced_per_character(traced: Traced, client: openai.OpenAI) -> None:
    autotrace.set_prices({"kokoro-82m": {"per_million_characters": 12.0}, "tts-1": {"per_million_characters": 5}})
    client.audio.speech.create(model="kokoro-82m", voice="alloy", input=TEXT)
    client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
    mine, built_in = traced.records()
    assert (mine["model"], mine["metadata"]["input_characters"]) == ("kokoro-82m", 23)
    assert mine["cost"] == _cost(23 * 12.0 / 1e6, 0.0)
    assert built_in["cost"] == _cost(23 * 5.0 / 1e6, 0.0)


def test_a_token_price_replaces_a_built_in_per_minute_one() -> None:
    """``whisper-1`` served by a compatible server that reports tokens: its per-minute price goes."""
    usage = {"input": 1_000, "output": 200}
    autotrace.set_prices({"whisper-1": (1.0, 1.0, 2.0)})
    assert pricing.media_cost("whisper-1", usage, 60.0) == _cost(1_000 * 1.0 / 1e6, 200 * 2.0 / 1e6)
    assert "whisper-1" not in pricing._PRICES_PER_MINUTE


def test_a_model_is_billed_one_way_at_a_time() -> None:
    usage = {"input": 1_000, "output": 200}
    autotrace.set_prices({"my-model": {"input": 1.0, "output": 2.0, "cache_write": 3.0}})
    autotrace.set_prices({"my-model": {"per_million_characters": 10.0}})
    assert (pricing.price_of("my-model"), pricing.cost("my-model", usage)) == (None, None)
    assert "my-model" not in pricing._CACHE_WRITE
    assert pricing.media_cost("my-model", usage, 60.0, characters=1_000) == _cost(0.01, 0.0)
    autotrace.set_prices({"my-model": {"per_minute": 0.5}})
    assert pricing.media_cost("my-model", usage, 60.0, characters=1_000) == _cost(0.5, 0.0)
    autotrace.set_prices({"my-model": (1.0, 1.0, 2.0)})
    assert pricing.media_cost("my-model", usage, 60.0, characters=1_000) == _cost(1e-3, 4e-4)
    assert ("my-model" in pricing._PRICES_PER_MINUTE, "my-model" in pricing._PRICES_PER_MILLION_CHARACTERS) == (
        False, False)


def test_a_dated_name_priced_itself_wins_over_its_base_model_of_another_kind() -> None:
    autotrace.set_prices({"whisper-1-2026-01-15": (1.0, 1.0, 2.0)})
    assert pricing.media_cost("whisper-1-2026-01-15", {"input": 1_000, "output": 0}, 60.0) == _cost(1e-3, 0.0)
    assert pricing.media_cost("whisper-1-2026-02-01", None, 60.0) == _cost(0.006, 0.0)  # its base's price


# -- all of a call's prices or none ------------------------------------------------------------------
@pytest.mark.parametrize("bad", [
    {"input": 1.0, "output": -1.0},
    {"input": 1.0, "output": float("nan")},
    {"input": float("inf"), "output": 1.0},
    {"input": 1.0, "output": True},
    {"input": "1.0", "output": 1.0},
    {"input": 1.0},
    {"input": 1.0, "output": 1.0, "cache_read": 0.5},
    {"input": 1.0, "output": 1.0, "per_minute": 0.5},
    {"per_minute": 0.5, "per_million_characters": 1.0},
    {"per_minute": -0.5},
    {"per_million_characters": False},
    (1.0, True, 2.0),
    (1.0, 2.0),
    5.0,
], ids=repr)
def test_one_bad_price_sets_none_of_the_call(bad: Any) -> None:
    before = (dict(pricing._PRICES), dict(pricing._CACHE_WRITE), dict(pricing._PRICES_PER_MINUTE),
              dict(pricing._PRICES_PER_MILLION_CHARACTERS), set(pricing._LONG_CONTEXT))
    assert pricing.price_of("gpt-5.4") == (2.50, 0.25, 15.0)  # cached before the call
    with pytest.raises(ValueError, match="'bad'"):
        autotrace.set_prices({"fresh": {"per_minute": 1.0}, "gpt-5.4": {"input": 1, "output": 1},
                              "whisper-1": (1.0, 1.0, 1.0), "bad": bad})
    assert (dict(pricing._PRICES), dict(pricing._CACHE_WRITE), dict(pricing._PRICES_PER_MINUTE),
            dict(pricing._PRICES_PER_MILLION_CHARACTERS), set(pricing._LONG_CONTEXT)) == before
    assert pricing.price_of("gpt-5.4") == (2.50, 0.25, 15.0)


def test_prices_that_are_no_mapping_or_name_no_model_are_refused() -> None:
    with pytest.raises(ValueError, match="mapping"):
        autotrace.set_prices([("my-model", (1.0, 1.0, 1.0))])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty string"):
        autotrace.set_prices({"": (1.0, 1.0, 1.0)})


# -- the prices setting ----------------------------------------------------------------------------
PRICES = {"my-llama": {"input": 1.0, "output": 2.0, "cache_write": 1.25}, "kokoro-82m": {"per_million_characters": 8}}


def _priced_calls(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> list[Any]:
    fake.script(reply="ok", usage=(1_000, 100), model="my-llama", cache_write_tokens=400)
    client.chat.completions.create(model="my-llama", messages=MESSAGES)
    client.audio.speech.create(model="kokoro-82m", voice="alloy", input=TEXT)
    return [record["cost"] for record in traced.records()]


CONFIGURED = [_cost((600 * 1.0 + 400 * 1.25) / 1e6, 100 * 2.0 / 1e6), _cost(23 * 8 / 1e6, 0.0)]


@pytest.mark.parametrize("where", ["variable", "variable_path", "keyword", "keyword_json", "keyword_path"])
def test_prices_from_the_settings_are_applied_by_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         client: openai.OpenAI, fake: FakeOpenAI, where: str) -> None:
    file = tmp_path / "prices.json"
    file.write_text(json.dumps(PRICES), encoding="utf-8")
    options: dict[str, Any] = {}
    if where == "variable":
        monkeypatch.setenv("AUTOTRACE_PRICES", f"  {json.dumps(PRICES)}\n")
    elif where == "variable_path":
        monkeypatch.setenv("AUTOTRACE_PRICES", str(file))
    else:
        options["prices"] = {"keyword": PRICES, "keyword_json": json.dumps(PRICES), "keyword_path": file}[where]
    traced = _installed(tmp_path, **options)
    assert _priced_calls(traced, client, fake) == CONFIGURED
    assert autotrace.stats().get("config_prices_invalid") is None
    assert "config_unknown_variables" not in autotrace.stats()


@pytest.mark.parametrize("value", [
    '{"my-llama": {"input": 1.0, "output": -2.0}, "kokoro-82m": {"per_million_characters": 8}}',  # one bad price
    '{"my-llama": ',  # no JSON
    '["my-llama"]',  # no object
    "/nonexistent/prices.json",  # no file
])
def test_a_bad_prices_setting_is_skipped_and_install_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture,
                                                             client: openai.OpenAI, fake: FakeOpenAI,
                                                             value: str) -> None:
    monkeypatch.setenv("AUTOTRACE_PRICES", value)
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        traced = _installed(tmp_path)
        autotrace.install(local_store="on", local_store_path=tmp_path / "traces.db", integrations=("openai",),
                          export_interval=0.05)  # a re-install with the same setting: logged once, counted again
    assert _priced_calls(traced, client, fake) == [None, None]
    assert autotrace.stats()["config_prices_invalid"] == 2
    assert [r.getMessage() for r in caplog.records if "prices setting" in r.getMessage()] == [
        caplog.records[0].getMessage()]
    assert caplog.records[0].getMessage().startswith("autotrace: the prices setting is skipped (")
