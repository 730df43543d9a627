"""An async generator already started (primed with ``asend(None)`` elsewhere: a long-lived
subscription a plain method hands out) that an observed plain function returns is given back as it
is, as a started generator is: on Python 3.11, which has no ``ag_suspended``, it was taken for one
not yet run and wrapped, and its first ``asend(x)`` raised TypeError (a just-started generator)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import autotrace
from tests.helpers import Traced, shape


def test_a_started_async_generator_returned_by_an_observed_function_is_given_back(traced: Traced) -> None:
    async def echo() -> AsyncGenerator[Any, Any]:
        got = None
        while True:
            got = yield got

    async def main() -> Any:
        shared = echo()
        await shared.asend(None)  # started by its owner

        @autotrace.observe(name="subscription")
        def subscription() -> AsyncGenerator[Any, Any]:
            return shared

        given = subscription()
        replies = [given is shared, await given.asend("x"), await given.asend("y")]
        await shared.aclose()
        return replies

    assert asyncio.run(main()) == [True, "x", "y"]
    records = traced.records()
    assert shape(records) == [("span", "subscription", [])]
    assert records[0]["level"] == "DEFAULT"
    assert records[0]["output"].startswith("<async_generator object")


def test_an_unstarted_async_generator_returned_by_an_observed_function_is_still_followed(traced: Traced) -> None:
    async def count(n: int) -> AsyncGenerator[int, None]:
        for i in range(n):
            with autotrace.start_span(f"item{i}"):
                yield i

    @autotrace.observe(name="counter")
    def counter(n: int) -> AsyncGenerator[int, None]:
        return count(n)

    async def main() -> list[int]:
        return [i async for i in counter(2)]

    assert asyncio.run(main()) == [0, 1]
    assert shape(traced.records()) == [("span", "counter", [("span", "item0", []), ("span", "item1", [])])]
