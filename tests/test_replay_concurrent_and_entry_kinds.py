"""Replays side by side: two replays of the same trace with different overrides, in two threads or
two asyncio tasks at once, each freezing and overriding only its own calls; an async entry; frozen
plain functions that returned a coroutine or (async) generator."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import Counter
from typing import Any

import openai
import pytest

import autotrace
from autotrace.replay import areplay, replay
from autotrace.testing.fake_openai import FakeOpenAI, Script
from tests import replay_app
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("openai")

CALLS: Counter[str] = Counter()
QUESTION = "where is my order?"
MODELS = ("gpt-4o", "gpt-4.1")


def _answer(model: str) -> str:
    return f"[{model} t=0.2] Your order ships today."


@autotrace.observe(as_type="retriever", name="search")
async def search(topic: str) -> list[dict[str, Any]]:
    CALLS["search"] += 1
    await asyncio.sleep(0)
    return replay_app.KNOWLEDGE.get(topic, [])


async def aturn(client: openai.AsyncOpenAI, question: str, gate: asyncio.Barrier | None = None) -> str:
    """replay_app's pipeline, async; ``gate``: wait there until every replay has reached it."""
    with autotrace.start_chain("support-turn", input=question) as turn:
        intent = (await client.chat.completions.create(model="gpt-4o-mini", messages=[
            {"role": "system", "content": "Classify the intent."}, {"role": "user", "content": question}],
        )).choices[0].message.content
        documents = await search(intent)
        if gate is not None:
            await gate.wait()
        with autotrace.start_generation("answer-step") as step:
            answer = (await client.chat.completions.create(model="gpt-4o-mini", temperature=0.2, messages=[
                {"role": "system", "content": f"Answer. Context: {documents}"},
                {"role": "user", "content": question}])).choices[0].message.content
            step.set_output(answer)
        turn.set_output(answer)
        return answer


ASYNC_TREE = [("chain", "support-turn", [
    ("generation", "openai.chat", []), ("retriever", "search", []), ("generation", "answer-step", [])])]
SYNC_TREE = [("chain", "support-turn", [
    ("generation", "openai.chat", []), ("retriever", "search", []), ("tool", "lookup_order", []),
    ("generation", "answer-step", [("evaluator", "mentions_shipping", [])])])]


def _client(fake: FakeOpenAI) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)


def _only_trace(traced: Traced) -> list[dict[str, Any]]:
    (summary,) = autotrace.local_store().traces() if autotrace.flush(5) else []
    return traced.trace(summary["trace_id"])


def _check_replays(traced: Traced, original: list[dict[str, Any]], results: list[Any], tree: list[Any],
                   frozen: set[str], sent: list[dict[str, Any]]) -> None:
    """Replay ``i`` answered with ``MODELS[i]``, froze exactly ``frozen`` and stored its own trace."""
    assert [r.result for r in results] == [_answer(m) for m in MODELS] and all(r.reached for r in results)
    assert sorted(request["body"]["model"] for request in sent) == sorted(MODELS)  # one live call each
    assert len({r.trace_id for r in results} | {original[0]["trace_id"]}) == 3
    for model, result in zip(MODELS, results, strict=True):
        records = traced.trace(result.trace_id)
        assert shape(records) == tree
        assert {r["name"] for r in records if r["metadata"].get("replay") == "frozen"} == frozen
        assert {r["replay_of"] for r in records if r["type"] != "evaluator"} == {original[0]["trace_id"]}
        step = next(r for r in records if r["name"] == "answer-step")
        assert (step["model"], step["output"]) == (model, _answer(model))


def test_two_replays_of_one_trace_in_two_asyncio_tasks_stay_apart(traced: Traced) -> None:
    with FakeOpenAI(responder=replay_app.brain) as fake:
        asyncio.run(aturn(_client(fake), QUESTION))
        original = _only_trace(traced)
        assert shape(original) == ASYNC_TREE
        at = next(r["id"] for r in original if r["name"] == "answer-step")
        CALLS.clear()
        before = len(fake.requests)

        async def both() -> list[Any]:
            client, gate = _client(fake), asyncio.Barrier(len(MODELS))  # both replays are half-way at once
            return await asyncio.gather(*(areplay(original, at, aturn, client, QUESTION, gate,
                                                  overrides={"model": model}) for model in MODELS))

        results = asyncio.run(both())
        sent = fake.requests[before:]
    assert CALLS == {}
    _check_replays(traced, original, results, ASYNC_TREE, {"openai.chat", "search"}, sent)


def test_two_replays_of_one_trace_in_two_threads_stay_apart(traced: Traced) -> None:
    meet = threading.Barrier(len(MODELS), timeout=10)

    def brain(body: dict[str, Any]) -> Script | None:
        if body["model"] in MODELS:
            meet.wait()  # both replays' live calls are under way at once
        return replay_app.brain(body)

    with FakeOpenAI(responder=brain) as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        replay_app.pipeline(client, QUESTION)
        original = _only_trace(traced)
        at = next(r["id"] for r in original if r["name"] == "answer-step")
        replay_app.CALLS.clear()
        before = len(fake.requests)
        results: list[Any] = [None] * len(MODELS)

        start = threading.Barrier(len(MODELS), timeout=10)

        def entry() -> str:
            start.wait()  # both replays have started before either makes a call
            return replay_app.pipeline(client, QUESTION)

        def run(index: int) -> None:
            results[index] = replay(original, at, entry, overrides={"model": MODELS[index]})

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(MODELS))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sent = fake.requests[before:]
    assert replay_app.CALLS == {}
    _check_replays(traced, original, results, SYNC_TREE, {"openai.chat", "search", "lookup_order"}, sent)


def test_replay_refuses_an_async_entry_instead_of_running_it_unfrozen(traced: Traced) -> None:
    """The coroutine would run after the replay ended: every call live (the search would run)."""
    with FakeOpenAI(responder=replay_app.brain) as fake:
        asyncio.run(aturn(_client(fake), QUESTION))
        original = _only_trace(traced)
        at = next(r["id"] for r in original if r["name"] == "answer-step")
        CALLS.clear()
        before = len(fake.requests)
        with pytest.raises(TypeError, match=r"returned a coroutine, which would run after the replay, with no "
                                            r"call frozen; await areplay\(\.\.\.\) for an async entry"):
            replay(original, at, aturn, _client(fake), QUESTION)
        assert CALLS == {} and len(fake.requests) == before
    assert [t["trace_id"] for t in autotrace.local_store().traces()] == [original[0]["trace_id"]]


def test_replay_refuses_an_entry_returning_a_generator(traced: Traced) -> None:
    def streamed_turn() -> Any:
        with autotrace.start_chain("turn"):
            yield from lines(1)
            with autotrace.start_generation("answer", model="m"):
                pass

    assert list(streamed_turn()) == ["line 0. "]
    original = _only_trace(traced)
    at = next(r["id"] for r in original if r["name"] == "answer")
    CALLS.clear()
    with pytest.raises(TypeError, match="returned a generator, which would run after the replay, with no call "
                                        "frozen; consume it inside the entry"):
        replay(original, at, streamed_turn)
    assert CALLS == {}


def _logged(fn: Any) -> Any:
    """An application's own decorator: a plain function that returns what ``fn`` returns."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


@autotrace.traced_tool(name="fetch_order")
@_logged
async def fetch_order(order_id: str) -> dict[str, str]:
    CALLS["fetch_order"] += 1
    await asyncio.sleep(0)
    return {"order_id": order_id, "status": "packed"}


@autotrace.traced_tool(name="refund")
@_logged
async def refund(order_id: str) -> str:
    CALLS["refund"] += 1
    raise ValueError(f"no payment for {order_id}")


@autotrace.observe(name="lines")
@_logged
def lines(n: int) -> Any:
    for i in range(n):
        CALLS["lines"] += 1
        yield f"line {i}. "


@autotrace.observe(name="rows")
@_logged
async def rows(n: int) -> Any:
    for i in range(n):
        CALLS["rows"] += 1
        yield {"row": i}


async def plain_turn() -> tuple[Any, ...]:
    with autotrace.start_chain("turn"):
        order = await fetch_order("o-7")
        try:
            refunded = await refund("o-7")
        except ValueError as error:  # a frozen call raises the recorded error when awaited, too
            refunded = f"failed: {error}"
        text = list(lines(2))
        found = [row async for row in rows(2)]
        with autotrace.start_generation("answer", model="m") as gen:
            gen.set_output("ok")
        return order, refunded, text, found


def test_a_frozen_plain_function_returns_the_kind_of_object_it_returned_when_recorded(traced: Traced) -> None:
    """A plain function that returned a coroutine, generator or async generator (an application's
    own decorator in between): frozen, it returns the same kind of object, giving the recording."""
    live = asyncio.run(plain_turn())
    assert live == ({"order_id": "o-7", "status": "packed"}, "failed: no payment for o-7",
                    ["line 0. ", "line 1. "], [{"row": 0}, {"row": 1}])
    original = _only_trace(traced)
    at = next(r["id"] for r in original if r["name"] == "answer")
    CALLS.clear()
    result = replay(original, at, asyncio.run, plain_turn())
    assert CALLS == {}
    # recorded text is joined, so the frozen generator yields it as one item (as a frozen generator does)
    assert result.result == ({"order_id": "o-7", "status": "packed"}, "failed: no payment for o-7",
                             ["line 0. line 1. "], [{"row": 0}, {"row": 1}])
    replayed = traced.trace(result.trace_id)
    assert [(r["name"], r["level"], r["output"], r["metadata"].get("replay")) for r in replayed] == [
        ("turn", "DEFAULT", None, None),
        ("fetch_order", "DEFAULT", {"order_id": "o-7", "status": "packed"}, "frozen"),
        ("refund", "ERROR", None, "frozen"),
        ("lines", "DEFAULT", "line 0. line 1. ", "frozen"),
        ("rows", "DEFAULT", [{"row": 0}, {"row": 1}], "frozen"),
        ("answer", "DEFAULT", "ok", None)]
