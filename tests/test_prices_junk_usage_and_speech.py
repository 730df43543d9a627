"""Pricing, speech and decorator code: a compatible server's junk usage
(negative, boolean, too large for any counter) is left out, never priced, and never costs the
call its other fields; a price set while another thread resolves the same name is not lost to a
stale cache; a speech reply's usage comes from its ``speech.audio.done`` event only; a name is
found for a wrapper that wraps itself. Through the real SDK against the loopback fake server."""

from __future__ import annotations

import functools
import threading
from typing import Any

import httpx
import openai
import pytest

from autotrace.decorators import _callable_name
from autotrace.integrations.openai import _extract, _media, pricing
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "where is my order"}]
HUGE = 10**400  # a JSON integer no float holds


def _record(traced: Traced) -> dict[str, Any]:
    (record,) = traced.records()
    return record


# -- junk counts from a compatible server -----------------------------------------------------------
def test_a_negative_count_is_not_recorded_and_costs_nothing(traced: Traced, client: openai.OpenAI,
                                                            fake: FakeOpenAI) -> None:
    """A server's negative input count: left out of the usage, so the cost is never negative."""
    fake.script(reply="ok", usage=(-1_000_000, 100), model="gpt-4o")
    reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert reply.usage is not None and reply.usage.prompt_tokens == -1_000_000  # the caller's reply is untouched
    record = _record(traced)
    assert record["usage"] == {"output": 100, "total": 100, "input_cached_tokens": 0, "output_reasoning_tokens": 0}
    assert record["cost"] == pytest.approx({"input": 0.0, "output": 100 * 10.0 / 1e6, "total": 100 * 10.0 / 1e6})


def test_a_negative_cache_write_count_gives_no_negative_cost(traced: Traced, client: openai.OpenAI,
                                                             fake: FakeOpenAI) -> None:
    fake.script(reply="ok", usage=(1_000, 0), model="gpt-6.2-sol", cache_write_tokens=-1_000_000)
    client.chat.completions.create(model="gpt-6.2-sol", messages=MESSAGES)
    record = _record(traced)
    assert record["usage"] == {"input": 1_000, "output": 0, "total": 1_000, "input_cached_tokens": 0,
                               "output_reasoning_tokens": 0}
    assert record["cost"] == pytest.approx({"input": 1_000 * 2.0 / 1e6, "output": 0.0, "total": 1_000 * 2.0 / 1e6})


def test_a_count_too_large_for_a_counter_keeps_the_reply(traced: Traced, client: openai.OpenAI,
                                                         fake: FakeOpenAI) -> None:
    """A count no float holds made pricing raise, and the call lost its output and usage with it."""
    fake.script(reply="ok", usage=(HUGE, 5), model="gpt-4o")
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices[0].message.content == "ok"
    record = _record(traced)
    assert record["output"] == {"content": "ok", "role": "assistant"}
    assert record["usage"] == {"output": 5, "total": 5, "input_cached_tokens": 0, "output_reasoning_tokens": 0}


def test_a_boolean_count_is_not_recorded(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """The SDK keeps a Responses usage's ``true`` as given (a chat usage's it makes 1)."""
    fake.script(reply="ok", usage=(True, 5), model="gpt-4o")
    assert client.responses.create(model="gpt-4o", input="where is my order").usage.input_tokens is True
    record = _record(traced)
    assert record["usage"] == {"output": 5, "total": 6, "input_cached_tokens": 0, "output_reasoning_tokens": 0}
    assert record["cost"] == pytest.approx({"input": 0.0, "output": 5 * 10.0 / 1e6, "total": 5 * 10.0 / 1e6})


def test_speech_with_a_negative_count_gets_no_cost(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """gpt-4o-mini-tts priced by its event stream's usage: a negative output count is no count."""
    fake.script(chunks=2, usage=(9, -410))
    client.audio.speech.create(model="gpt-4o-mini-tts", voice="coral", input="hello", stream_format="sse")
    record = _record(traced)
    assert (record["usage"], record["cost"], record["metadata"]["input_characters"]) == ({"input": 9, "total": 9}, None, 5)


@pytest.mark.parametrize("usage", [
    {"input_tokens": -5, "output_tokens": 3},
    {"input_tokens": True, "output_tokens": 3},
    {"input_tokens": HUGE, "output_tokens": 3},
])
def test_media_usage_leaves_junk_counts_out(usage: dict[str, Any]) -> None:
    assert _media.usage_fields(usage) == {"output": 3}
    assert _extract.usage_fields(usage) == {"output": 3}


@pytest.mark.parametrize("usage", [
    {"input": -10, "output": 5},
    {"input": 100, "output": -5},
    {"input": 100, "input_cached_tokens": -50},
    {"input": 0, "input_cache_write_tokens": -1_000},
    {"input": True, "output": 5},
    {"input": "100", "output": 5},
    {"input": HUGE},
    {"input": float("nan")},
    {"input": float("inf")},
])
def test_cost_of_junk_usage_is_none(usage: dict[str, Any]) -> None:
    """``cost`` is public: junk a caller passes gives no cost, never a raise or a negative one."""
    assert pricing.cost("gpt-6.2-sol", usage) is None


def test_cost_still_takes_whole_floats_and_missing_counts() -> None:
    assert pricing.cost("gpt-4o", {"input": 1000.0, "output": None}) == pytest.approx(
        {"input": 1000 * 2.5 / 1e6, "output": 0.0, "total": 1000 * 2.5 / 1e6})


@pytest.mark.parametrize(("model", "usage", "seconds", "characters"), [
    ("whisper-1", None, float("nan"), None),
    ("whisper-1", None, float("inf"), None),
    ("whisper-1", None, HUGE, None),
    ("whisper-1", None, True, None),
    ("tts-1", None, None, True),
    ("tts-1", None, None, HUGE),
    ("gpt-4o-mini-tts", {"input": HUGE, "output": 5}, None, None),
    ("gpt-4o-mini-tts", {"input": True, "output": 5}, None, None),
    ("gpt-4o-mini-tts", {"input": 5, "output": -5}, None, None),
], ids=lambda value: "huge" if value is HUGE else None)
def test_media_cost_of_junk_counts_is_none(model: str, usage: Any, seconds: Any, characters: Any) -> None:
    assert pricing.media_cost(model, usage, seconds=seconds, characters=characters) is None


def test_a_price_set_with_no_finite_value_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        pricing.set_prices({"my-model": (float("inf"), 0.0, 1.0)})


def test_prices_with_one_refused_set_none() -> None:
    """One bad entry refuses the whole call: no price is half set (the cache not cleared for it)."""
    with pytest.raises(ValueError, match="'bad'"):
        pricing.set_prices({"fresh-model": (1.0, 1.0, 2.0), "bad": (-1.0, 0.0, 1.0)})
    assert pricing.price_of("fresh-model") is None


# -- the resolved-name cache and set_prices ---------------------------------------------------------
class _SetsPricesMidway(str):
    """A model name whose resolution is interleaved with ``set_prices`` (as another thread's could
    be): the prices change after the tables were read and before the answer is cached."""

    def startswith(self, *args: Any) -> bool:  # type: ignore[override]
        pricing.set_prices({"my-model": (1.0, 1.0, 2.0)})
        return str.startswith(self, *args)


def test_a_price_set_while_a_name_resolves_is_not_lost_to_the_cache() -> None:
    assert pricing.price_of(_SetsPricesMidway("my-model")) is None  # resolved against the tables before
    assert pricing.price_of("my-model") == (1.0, 1.0, 2.0)
    assert pricing.cost("my-model", {"input": 1_000_000}) == {"input": 1.0, "output": 0.0, "total": 1.0}


def test_concurrent_resolution_and_set_prices_end_consistent() -> None:
    """Threads resolving names while prices are set: none raises, and every name ends at its set price."""
    names = [f"model-{i}" for i in range(64)]
    errors: list[BaseException] = []

    def resolve() -> None:
        try:
            for _ in range(50):
                for name in names:
                    pricing.cost(name, {"input": 10})
        except BaseException as error:  # pragma: no cover - the failure shown
            errors.append(error)

    threads = [threading.Thread(target=resolve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for name in names:
        pricing.set_prices({name: (1.0, 1.0, 1.0)})
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(pricing.price_of(name) == (1.0, 1.0, 1.0) for name in names)


# -- speech usage ----------------------------------------------------------------------------------
def test_speech_usage_comes_from_the_done_event_only() -> None:
    """A line naming ``speech.audio.done`` as some other field's value is not the done event."""
    body = (b'data: {"type": "speech.audio.delta", "audio": "AAAA", "next": "speech.audio.done",'
            b' "usage": {"input_tokens": 1, "output_tokens": 999999}}\n\n')
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    assert _media._speech_usage(response) is None


def test_speech_parsed_from_a_streaming_response_is_recorded_and_priced(traced: Traced,
                                                                        client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="hello there") as raw:
        assert raw.parse() == b"".join([raw.read()])  # the SDK reads the whole body for ``parse()``
    record = _record(traced)
    assert (record["output"], record["metadata"]["input_characters"]) == ("<audio/mpeg, 440 bytes>", 11)
    assert record["cost"] == pytest.approx({"input": 11 * 15.0 / 1e6, "output": 0.0, "total": 11 * 15.0 / 1e6})


def test_speech_streamed_to_the_caller_and_never_parsed_is_priced(traced: Traced, client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="hello there") as raw:
        assert len(b"".join(raw.iter_bytes())) == 440
    del raw
    record = _record(traced)
    assert (record["output"], record["metadata"]["input_characters"]) == ("<audio/mpeg>", 11)
    assert record["cost"] == pytest.approx({"input": 11 * 15.0 / 1e6, "output": 0.0, "total": 11 * 15.0 / 1e6})


# -- names of wrapped callables --------------------------------------------------------------------
def test_a_partial_that_wraps_itself_gets_no_name_rather_than_a_hang() -> None:
    looped = functools.partial(print)
    looped.__setstate__((looped, (), {}, None))  # its function is itself
    found: list[Any] = []
    worker = threading.Thread(target=lambda: found.append(_callable_name(looped, "__name__")), daemon=True)
    worker.start()
    worker.join(5.0)
    assert found == [None]


def test_a_property_without_a_getter_has_no_name() -> None:
    assert _callable_name(property(None, lambda self, value: None), "__name__") is None
