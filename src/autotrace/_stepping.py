"""Driving a generator or async generator step by step, as ``yield from`` would (values sent and
exceptions thrown in, ``close()`` too, reach it at its ``yield``), each step inside a block: how
``observe`` makes its observation current while the body runs, and how a scope helper used as a
decorator (``context.Scope``) puts its request context around the body, never around its reader."""

from __future__ import annotations

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
