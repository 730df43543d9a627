"""Review 21 critique of the replay commits: concurrent frozen OpenAI calls that start in another order
than recorded get the outcome of the recorded call sent their input, an API error included (one call got
another's error, and that call the other's reply), and calls sent one input (samples of one prompt) get
its recorded replies in turn (one was given twice); a function decorated with ``capture_output=False``
that set its own output (a summary) stops the replay instead of returning the summary as its value."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import openai
import pytest

import autotrace
from autotrace.interception import ReplayStop
from autotrace.recorder import current_observation
from autotrace.replay import areplay, replay
from autotrace.testing.fake_openai import FakeOpenAI, Script
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")


async def _ask(client: openai.AsyncOpenAI, text: str) -> str | None:
    try:
        reply = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
    except openai.RateLimitError as error:
        return f"limited: {error.code}"
    return reply.choices[0].message.content


@autotrace.observe(name="slow")
async def _slow() -> str:
    await asyncio.sleep(0.2)  # recorded slow: frozen, it returns at once and what follows starts earlier
    return "ok"


def _program(second: list[str]) -> Any:
    @autotrace.observe(name="turn")
    async def turn(base_url: str) -> Any:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)

        async def late() -> Any:
            await asyncio.sleep(0.05)  # not traced: as long in the replay
            return await _ask(client, "x")

        async def after_slow() -> Any:
            await _slow()
            return [await _ask(client, text) for text in second]

        answers = await asyncio.gather(late(), after_slow())
        with autotrace.start_generation("step"):
            pass
        return answers

    return turn


def _run(traced: Traced, turn: Any, fake: FakeOpenAI) -> tuple[Any, Any, int]:
    recorded = asyncio.run(turn(fake.base_url))
    (summary,) = autotrace.local_store().traces() if autotrace.flush(5) else []
    original = traced.trace(summary["trace_id"])
    assert next(r["input"][0]["content"] for r in sorted(original, key=lambda r: r["start_ns"])
                if r["name"] == "openai.chat") == "x"  # recorded first; in the replay, last
    at = next(r["id"] for r in original if r["name"] == "step")
    before = len(fake.requests)
    result = asyncio.run(areplay(original, at, turn, fake.base_url))
    return recorded, result.result, len(fake.requests) - before


def test_a_recorded_error_goes_to_the_call_sent_its_input(traced: Traced) -> None:
    def responder(body: dict[str, Any]) -> Script:
        text = body["messages"][-1]["content"]
        return Script(error=(429, "slow down")) if text == "x" else Script(reply=f"to {text}")

    with FakeOpenAI(responder) as fake:
        recorded, replayed, sent = _run(traced, _program(["y"]), fake)
    assert recorded == ["limited: 429", ["to y"]]
    assert replayed == recorded  # was ['to y', ['limited: 429']]
    assert sent == 0


def test_calls_sent_one_input_get_its_recorded_replies_in_turn(traced: Traced) -> None:
    numbers = itertools.count(1)
    with FakeOpenAI(lambda body: Script(reply=f"{body['messages'][-1]['content']}#{next(numbers)}")) as fake:
        recorded, replayed, sent = _run(traced, _program(["y", "y"]), fake)
    assert recorded == ["x#1", ["y#2", "y#3"]]
    assert replayed == recorded  # was ['x#1', ['y#2', 'y#2']]
    assert sent == 0


@autotrace.observe(name="fetch", capture_output=False)
def _fetch(n: int) -> list[str]:
    current_observation().update(output={"rows": n})  # a summary, not what it returns
    return ["row"] * n


@autotrace.observe(name="turn")
def _turn() -> int:
    rows = _fetch(3)
    with autotrace.start_generation("step"):
        pass
    return len(rows)


def test_an_output_set_beside_capture_output_false_is_no_return_value(traced: Traced) -> None:
    assert _turn() == 3
    (summary,) = autotrace.local_store().traces() if autotrace.flush(5) else []
    original = traced.trace(summary["trace_id"])
    assert [r["output"] for r in original if r["name"] == "fetch"] == [{"rows": 3}]
    at = next(r["id"] for r in original if r["name"] == "step")
    with pytest.raises(ReplayStop, match=r"output of span 'fetch' was not recorded .* return the output set in"):
        replay(original, at, _turn)  # it returned 1: len({"rows": 3})
