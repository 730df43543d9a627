"""Concurrent frozen model calls (``asyncio.gather``) start in another order in a replay than they
did when recorded: the frozen ones return at once, so a task's second call starts before the other
task's first. Each call is given the recorded reply to the input it sends, never another call's by
position, and the first difference is not a frozen call's output."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

import autotrace
from autotrace.replay import areplay, first_difference
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("openai")


async def _chat(client: openai.AsyncOpenAI, text: str) -> str | None:
    reply = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content


async def _respond(client: openai.AsyncOpenAI, text: str) -> str:
    return (await client.responses.create(model="m", input=text)).output_text


def _program(ask: Any) -> Any:
    @autotrace.observe(name="turn")
    async def turn(base_url: str) -> Any:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)

        async def two(topic: str) -> list[Any]:
            return [await ask(client, f"{topic}-1"), await ask(client, f"{topic}-2")]

        answers = await asyncio.gather(two("x"), two("y"))
        with autotrace.start_generation("step"):
            answers.append(await ask(client, "z"))
        return answers

    return turn


@pytest.mark.parametrize(("ask", "name"), [(_chat, "openai.chat"), (_respond, "openai.responses")])
def test_concurrent_frozen_calls_get_the_reply_to_their_own_input(traced: Traced, ask: Any, name: str) -> None:
    turn = _program(ask)
    with FakeOpenAI() as fake:
        recorded = asyncio.run(turn(fake.base_url))
        (summary,) = autotrace.local_store().traces() if autotrace.flush(5) else []
        original = traced.trace(summary["trace_id"])
        calls = [r for r in sorted(original, key=lambda r: r["start_ns"]) if r["name"] == name]
        assert ["x-1" in str(c["input"]) for c in calls[:2]] == [True, False]  # recorded interleaved: x-1, y-1 ...
        at = next(r["id"] for r in original if r["name"] == "step")
        before = len(fake.requests)
        result = asyncio.run(areplay(original, at, turn, fake.base_url))
        live = fake.requests[before:]
    expected = [["echo: x-1", "echo: x-2"], ["echo: y-1", "echo: y-2"], "echo: z"]
    assert recorded == expected
    assert result.result == expected  # by position alone: [["echo: x-1", "echo: y-1"], ["echo: x-2", ...
    assert len(live) == 1 and "z" in str(live[0]["body"])  # only the chosen generation's call was sent
    replayed = traced.trace(result.trace_id)
    frozen = [r for r in sorted(replayed, key=lambda r: r["start_ns"]) if r["metadata"].get("replay") == "frozen"]
    assert len(frozen) == 4 and all(_text(r["output"]) == f"echo: {_text(r['input'])}" for r in frozen)
    assert shape(replayed) == shape(original)
    assert first_difference(original, replayed) is None


def _text(recorded: Any) -> str:
    """The one text of a recorded chat or Responses input or output."""
    if isinstance(recorded, list):
        (recorded,) = recorded
    return recorded if isinstance(recorded, str) else recorded["content"]


def _record(id_: str, name: str, output: Any, start: int, parent: str | None = "root",
            frozen: bool = False) -> dict[str, Any]:
    return {"id": id_, "trace_id": "t", "parent_id": parent, "type": "generation", "name": name, "output": output,
            "start_ns": start, "end_ns": start + 1, "level": "DEFAULT", "metadata": {"replay": "frozen"} if frozen else {}}


def test_a_frozen_calls_output_is_no_difference() -> None:
    root = {**_record("root", "turn", "done", 0, None), "type": "span"}
    original = [root, _record("a", "openai.chat", "to x", 1), _record("b", "openai.chat", "to y", 2)]
    replayed = [root, _record("c", "openai.chat", "to y", 1, frozen=True), _record("d", "openai.chat", "to x", 2, frozen=True)]
    assert first_difference(original, replayed) is None
    ran = [root, _record("c", "openai.chat", "to y", 1), _record("d", "openai.chat", "to x", 2)]
    assert first_difference(original, ran) == '1.1: generation \'openai.chat\' output "to x" became "to y"'
