"""The manual API, fourth review: observed streams cancelled midway keep what they yielded, method
descriptors that are not callable (``singledispatchmethod``, ``partialmethod``) and generator-based
coroutines (``@types.coroutine``) are traced without breaking the call."""

from __future__ import annotations

import asyncio
import functools
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry import trace

import autotrace
from tests.helpers import Traced, shape


def _ended(record: dict[str, Any]) -> tuple[Any, ...]:
    return record["name"], record["level"], record["status_message"], record["output"]


async def test_an_observed_async_generator_cancelled_midway_keeps_what_it_yielded(traced: Traced) -> None:
    """``asyncio.timeout`` cancels the reader inside the generator's step: the observation is
    interrupted (WARNING) with the items it had yielded, as a stream its reader closed early, and
    the cancellation reaches the caller (as ``TimeoutError``) with the context restored."""
    reached = asyncio.Event()

    @autotrace.observe(name="stream")
    async def stream() -> AsyncIterator[str]:
        yield "a"
        yield "b"
        reached.set()
        await asyncio.sleep(30)
        yield "never"

    got: list[str] = []

    async def read() -> None:
        async for item in stream():
            got.append(item)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await read()
    assert got == ["a", "b"] and reached.is_set()
    assert trace.get_current_span() is trace.INVALID_SPAN
    assert _ended(traced.one()) == ("stream", "WARNING", "CancelledError", "ab")


def test_an_observed_generator_interrupted_midway_keeps_what_it_yielded(traced: Traced) -> None:
    @autotrace.traced_tool
    def numbers() -> Iterator[int]:
        yield 1
        yield 2
        raise KeyboardInterrupt

    got = []
    with pytest.raises(KeyboardInterrupt):
        for item in numbers():
            got.append(item)
    assert got == [1, 2]
    assert _ended(traced.one()) == ("numbers", "WARNING", "KeyboardInterrupt", [1, 2])


def test_observe_on_a_singledispatchmethod_or_partialmethod_traces_each_call(traced: Traced) -> None:
    """Undecorated, each is a method; observed, each call is an observation, named after the
    method's function (``register`` still works on the observed ``singledispatchmethod``)."""

    class _Handler:
        """Methods made of descriptors that are not callable themselves."""

        @autotrace.observe
        @functools.singledispatchmethod
        def handle(self, arg: object) -> str:
            return f"object {arg}"

        @handle.register
        def _(self, arg: int) -> str:
            return f"int {arg}"

        def _add(self, a: int, b: int) -> int:
            return a + b

        add_one = autotrace.traced_tool(functools.partialmethod(_add, 1))

    handler = _Handler()
    assert (handler.handle(1), handler.handle("x"), handler.add_one(2)) == ("int 1", "object x", 3)
    records = traced.records()
    handle = _Handler.handle.__qualname__
    assert handle.endswith("<locals>._Handler.handle")
    assert [(r["type"], r["name"], r["level"], r["output"]) for r in records] == [
        ("span", handle, "DEFAULT", "int 1"),
        ("span", handle, "DEFAULT", "object x"),
        ("tool", "_add", "DEFAULT", 3),
    ]
    assert records[2]["input"] == {"b": 2}  # the argument left by the partial, without the receiver


@types.coroutine
def _legacy(value: int) -> Any:
    yield from asyncio.sleep(0).__await__()  # awaits, as an ``async def`` would
    with autotrace.start_span("inside"):
        pass
    return value * 2


def _hiding(fn: Any) -> Any:
    def call(*args: Any) -> Any:  # a decorator of the application's that hides what ``fn`` is
        return fn(*args)

    return call


async def test_an_observed_generator_based_coroutine_is_awaited_and_observed_while_it_runs(traced: Traced) -> None:
    assert await autotrace.observe(name="direct")(_legacy)(2) == 4
    assert await autotrace.observe(name="hidden")(_hiding(_legacy))(3) == 6
    records = traced.records()
    assert shape(records) == [("span", "direct", [("span", "inside", [])]), ("span", "hidden", [("span", "inside", [])])]
    assert {r["name"]: r["output"] for r in records if r["name"] != "inside"} == {"direct": 4, "hidden": 6}


def test_a_field_that_is_not_one_is_left_out_counted_and_said_once(traced: Traced,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """``temperature=`` given to ``start_generation`` (it belongs in ``model_parameters``), a misspelt
    ``usage``, an unknown keyword of ``traced_tool``: nothing would export them; they are not held
    until the span is exported, and the application is told (counted, logged once per name)."""

    @autotrace.traced_tool(descripton="looks up a city")
    def lookup(city: str) -> str:
        return city.upper()

    with autotrace.start_generation("answer", model="m", temperature=0.2) as gen:
        gen.update(usgae={"input": 1}, usage={"input": 2, "output": 3})
        assert lookup("paris") == "PARIS"
        assert lookup("rome") == "ROME"
    assert "temperature" not in gen.fields and "usgae" not in gen.fields
    records = {r["name"]: r for r in traced.records()}
    assert (records["answer"]["model"], records["answer"]["usage"]) == ("m", {"input": 2, "output": 3, "total": 5})
    assert records["lookup"]["output"] == "ROME"
    assert autotrace.stats()["fields_unknown"] == 4  # temperature, usgae, descripton twice
    said = sorted(r.getMessage() for r in caplog.records if "fields_unknown" in r.getMessage())
    assert said == [f"autotrace: {name!r} is not an observation field; left out (counted as fields_unknown)"
                    for name in ("descripton", "temperature", "usgae")]
