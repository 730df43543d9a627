"""Driving a generator or async generator step by step, as ``yield from`` would (values sent and
exceptions thrown in, ``close()`` too, reach it at its ``yield``), each step inside a block: how
``observe`` makes its observation current while the body runs, and how a scope helper used as a
decorator (``context.Scope``) puts its request context around the body, never around its reader;
and whether a coroutine or generator a traced function returned has run yet (``unstarted``)."""

from __future__ import annotations

import inspect
import types
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from contextlib import AbstractContextManager
from typing import Any

#: What ``start`` gives at the first step: the block each step runs in and what is called with each
#: item yielded (or None), or the items to yield instead of running the generator (a replay's).
Steps = tuple[AbstractContextManager[Any], Callable[[Any], Any] | None] | Iterable[Any]


def step_through(inner: Generator[Any, Any, Any], start: Callable[[], Steps]) -> Generator[Any, Any, Any]:
    """Drive the generator ``inner``, each step in the block ``start()`` gives at the first step."""
    begun = start()
    if not isinstance(begun, tuple):
        for item in begun:  # not ``yield from``: a list has no send()
            yield item
        return None
    block, on_item = begun
    step, value = inner.send, None
    while True:
        try:
            with block:
                item = step(value)
        except StopIteration as stop:
            return stop.value
        if on_item is not None:
            on_item(item)
        try:
            value = yield item
            step = inner.send
        except GeneratorExit:  # closed: close the inner generator, as ``yield from`` does
            with block:
                inner.close()
                raise
        except BaseException as thrown:
            step, value = inner.throw, thrown


async def step_through_async(inner: AsyncGenerator[Any, Any], start: Callable[[], Steps]) -> AsyncGenerator[Any, Any]:
    """The async twin of ``step_through`` (``asend``/``athrow``/``aclose``)."""
    begun = start()
    if not isinstance(begun, tuple):
        for item in begun:
            yield item
        return
    block, on_item = begun
    step, value = inner.asend, None
    while True:
        try:
            with block:
                item = await step(value)
        except StopAsyncIteration:
            return
        if on_item is not None:
            on_item(item)
        try:
            value = yield item
            step = inner.asend
        except GeneratorExit:  # closing a closed generator (the loop's shutdown closes async
            with block:  # generators in any order) is nothing
                await inner.aclose()
                raise
        except BaseException as thrown:
            step, value = inner.athrow, thrown


def unstarted(result: Any) -> bool:
    """Whether a coroutine or (async) generator has not run yet, the call's work to follow; one started
    (primed, or resumed elsewhere) is given back as it is: a follower could not take its ``send(x)``."""
    if result.__class__ is types.CoroutineType:
        return result.cr_frame is not None and not result.cr_running and not result.cr_suspended
    if result.__class__ is types.GeneratorType:
        return result.gi_frame is not None and not result.gi_running and not result.gi_suspended
    frame = result.ag_frame
    if frame is None or result.ag_running:
        return False
    suspended = getattr(result, "ag_suspended", None)  # Python 3.12+; on 3.11 a started one's
    return not suspended if suspended is not None else frame.f_lasti <= 0  # frame is past its start


def end_unrun(result: Any, obs: Any) -> None:
    """A follower freed: end ``obs`` (once: a follower that ran ended it), and close the user's
    coroutine if it never started, as closing or cancelling it unawaited would have (else Python
    warns it was never awaited, besides the follower's own warning when that was never awaited)."""
    if isinstance(result, types.CoroutineType) and inspect.getcoroutinestate(result) == inspect.CORO_CREATED:
        result.close()
    obs.end()
