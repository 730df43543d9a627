"""Observed generators closed from outside (the event loop's shutdown closes async generators in no
fixed order, the user's own sometimes first), and scores given under another tenant than their
trace's. Observations are read back from the local store."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import autotrace
from tests.helpers import Traced


def test_async_generators_left_open_at_the_loops_end_end_once_and_the_loop_sees_no_error(traced: Traced) -> None:
    """``asyncio.run`` closes every live async generator at its end, the wrapper and the user's
    generator it drives in any order. Closing the user's first made the wrapper's ``athrow`` on it
    return None: the loop reported "async generator ignored GeneratorExit" and the observation
    never ended."""

    @autotrace.observe(name="numbers")
    async def numbers(i: int) -> AsyncIterator[int]:
        for n in range(10):
            yield n

    kept: list[Any] = []
    errors: list[str] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(repr(context)))
        for i in range(20):
            stream = numbers(i)
            assert await anext(stream) == 0
            kept.append(stream)  # a reader that stopped early, its stream still referenced

    asyncio.run(main())
    records = traced.records()
    assert errors == []
    assert [(r["name"], r["level"], r["output"]) for r in records] == [("numbers", "WARNING", [0])] * 20


def test_closing_an_observed_generator_closes_the_users_as_yield_from_does(traced: Traced) -> None:
    closed: list[str] = []

    @autotrace.observe(name="numbers")
    def numbers() -> Iterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.append("finally ran")

    @autotrace.observe(name="stubborn")
    def stubborn() -> Iterator[int]:
        try:
            yield 1
        except GeneratorExit:
            yield 2  # ignores the close: Python's error, as without autotrace

    stream = numbers()
    assert next(stream) == 1
    stream.close()
    other = stubborn()
    next(other)
    try:
        other.close()
    except RuntimeError as error:
        ignored = str(error)
    assert closed == ["finally ran"] and ignored == "generator ignored GeneratorExit"
    levels = {r["name"]: (r["level"], r["status_message"]) for r in traced.records()}
    assert levels["numbers"][0] == "WARNING"
    assert levels["stubborn"] == ("ERROR", "RuntimeError: generator ignored GeneratorExit")


def test_a_score_on_a_live_trace_goes_to_the_traces_tenant_not_the_one_in_scope(traced: Traced) -> None:
    with autotrace.tenant("acme"):
        turn = autotrace.start_chain("turn")
    with turn:
        token = autotrace.set_tenant("globex")  # (a ``tenant`` block would start a trace of its own)
        try:
            with autotrace.start_span("child"):
                pass
            turn.score("helpfulness", 0.2)
            autotrace.score("correct", True)  # the current observation: turn
        finally:
            autotrace.reset_tenant(token)
    assert {r["name"]: r["tenant"] for r in traced.records()} == {"turn": "acme", "child": "acme"}
    store = autotrace.local_store()
    assert store is not None
    assert sorted((s["name"], s["tenant"]) for s in store.scores(turn.trace_id)) == [
        ("correct", "acme"), ("helpfulness", "acme")]
    assert autotrace.stats()["tenant_mismatch"] == 3  # the span, then each score


def test_a_coroutine_returned_by_an_observed_plain_function_closed_unstarted_warns_nothing(traced: Traced) -> None:
    """A plain function returning a coroutine (an application's decorator): its follower cancelled
    or closed before it starts closes the user's coroutine too, as happens without autotrace;
    Python warned that the user's coroutine was never awaited."""

    def passthrough(fn: Any) -> Any:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        return call

    @autotrace.observe(name="work")
    @passthrough
    async def work() -> None:
        await asyncio.sleep(1)

    async def cancelled_before_start() -> None:
        task = asyncio.create_task(work())
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(cancelled_before_start())
        closed = work()
        closed.close()
        del closed
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    assert [r["name"] for r in traced.records()] == ["work", "work"]


def test_a_handle_in_two_blocks_one_left_in_another_context_still_ends(traced: Traced) -> None:
    """One block (a generator step entered on a worker thread) is left from the main thread, where
    its context token cannot be reset: as with a single block, that is counted, and the last block
    to end ends the observation (it stayed open for good)."""
    obs = autotrace.start_span("shared")

    def step() -> Iterator[None]:
        with obs:
            yield

    stepping = step()
    worker = threading.Thread(target=lambda: next(stepping))
    worker.start()
    worker.join()
    with obs:  # the second block, entered and left here
        pass
    assert not obs.ended
    stepping.close()  # the first block, left here: not the context it entered in
    assert obs.ended
    assert [r["name"] for r in traced.records()] == ["shared"]
    assert autotrace.stats()["context_not_restored"] == 1


def test_an_observed_partial_or_callable_instance_held_by_a_class_is_not_bound_to_its_instances(
        traced: Traced) -> None:
    """Neither a partial nor a callable instance is bound when a class holds it; the observed one,
    a function, was, and got the instance as an extra first argument."""

    def given(*args: Any) -> tuple[Any, ...]:
        return args

    class Callable_:
        def __call__(self, *args: Any) -> tuple[Any, ...]:
            return args

    class Holder:
        partial = autotrace.observe(functools.partial(given, 1), name="partial")
        instance = autotrace.observe(Callable_(), name="instance")

    held = Holder()
    assert (held.partial(2), held.instance(2), Holder.partial(3)) == ((1, 2), (2,), (1, 3))
    assert [r["name"] for r in traced.records()] == ["partial", "instance", "partial"]


async def test_an_observed_async_or_generator_partial_held_by_a_class_is_not_bound_and_keeps_its_kind(
        traced: Traced) -> None:
    """As for a sync one: old code bound the wrapper of a coroutine, generator or async generator
    partial (or callable instance) to the holder's instances; and ``inspect`` still reads each as
    a function of its kind, as it reads the partial itself."""

    async def pair(*args: Any) -> tuple[Any, ...]:
        return args

    def counting(*args: Any) -> Iterator[Any]:
        yield from args

    async def counting_async(*args: Any) -> AsyncIterator[Any]:
        for arg in args:
            yield arg

    class Holder:
        coroutine = autotrace.observe(functools.partial(pair, 1), name="coroutine")
        generator = autotrace.observe(functools.partial(counting, 1), name="generator")
        async_generator = autotrace.observe(functools.partial(counting_async, 1), name="async-generator")

    held = Holder()
    assert await held.coroutine(2) == (1, 2) and list(held.generator(2)) == [1, 2]
    assert [item async for item in held.async_generator(2)] == [1, 2]
    assert inspect.iscoroutinefunction(held.coroutine) and asyncio.iscoroutinefunction(Holder.coroutine)
    assert inspect.isgeneratorfunction(held.generator) and inspect.isasyncgenfunction(held.async_generator)
    assert str(inspect.signature(held.coroutine)) == "(*args: 'Any') -> 'tuple[Any, ...]'"
    assert [(r["name"], r["output"]) for r in traced.records()] == [
        ("coroutine", [1, 2]), ("generator", [1, 2]), ("async-generator", [1, 2])]
