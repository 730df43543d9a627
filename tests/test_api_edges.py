"""Edges of the manual API: exceptions that misbehave, callable objects, properties, levels, names."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Iterator

import pytest

import autotrace
from tests.helpers import Traced, shape


class _UnprintableError(Exception):
    def __str__(self) -> str:
        raise ValueError("str() of this exception fails")


def test_an_exception_whose_str_raises_propagates_unchanged(traced: Traced) -> None:
    with pytest.raises(_UnprintableError), autotrace.start_span("block"):
        raise _UnprintableError

    @autotrace.observe(name="decorated")
    def decorated() -> None:
        raise _UnprintableError

    with pytest.raises(_UnprintableError):
        decorated()
    records = {r["name"]: r for r in traced.records()}
    for name in ("block", "decorated"):  # both ended, as errors, and the context was restored
        assert records[name]["level"] == "ERROR"
        assert records[name]["status_message"] == "_UnprintableError: <str() failed>"


async def test_callable_objects_are_traced_as_the_kind_of_call_they_make(traced: Traced) -> None:
    class AsyncCall:
        async def __call__(self, x: int) -> int:
            with autotrace.start_span("inside"):
                await asyncio.sleep(0)
            return x * 2

    class GeneratorCall:
        def __call__(self, n: int) -> Iterator[int]:
            yield from range(n)

    doubled = autotrace.observe(name="async-call")(AsyncCall())
    assert inspect.iscoroutinefunction(doubled)
    assert await doubled(2) == 4
    assert list(autotrace.observe(name="generator-call")(GeneratorCall())(3)) == [0, 1, 2]
    records = traced.records()
    assert shape(records) == [("span", "async-call", [("span", "inside", [])]), ("span", "generator-call", [])]
    outputs = {r["name"]: r["output"] for r in records}
    assert outputs["async-call"] == 4 and outputs["generator-call"] == [0, 1, 2]


def test_observe_on_top_of_a_property_keeps_it_a_property(traced: Traced) -> None:
    class Account:
        @autotrace.observe
        @property
        def balance(self) -> int:
            """The balance."""
            return 5

        @balance.setter
        def balance(self, value: int) -> None:
            self.set_to = value

        @autotrace.observe(name="limit")
        @functools.cached_property
        def limit(self) -> int:
            return 6

    account = Account()
    assert (account.balance, account.limit, account.limit) == (5, 6, 6)
    account.balance = 7
    assert account.set_to == 7 and Account.balance.__doc__ == "The balance."
    outputs = [(r["name"], r["output"]) for r in traced.records()]
    assert outputs == [("test_observe_on_top_of_a_property_keeps_it_a_property.<locals>.Account.balance", 5),
                       ("limit", 6)]  # the cached value is computed, and traced, once


def test_levels_are_recorded_as_langfuse_accepts_them(traced: Traced) -> None:
    with autotrace.start_span("lower", level="error"):
        pass
    autotrace.event("event", level="warning")
    with autotrace.start_span("unknown") as span:
        span.set_level("loud")
    levels = {r["name"]: (r["level"], r["error"]) for r in traced.records()}
    assert levels == {"lower": ("ERROR", True), "event": ("WARNING", False), "unknown": ("DEFAULT", False)}
    assert autotrace.stats()["levels_invalid"] == 1


def test_names_that_are_not_strings_and_a_tool_named_apart(traced: Traced) -> None:
    with autotrace.start_span(None), autotrace.start_chain(42):  # type: ignore[arg-type]
        with autotrace.start_tool("lookup", tool_name="kb.lookup"):
            pass

    @autotrace.traced_tool(tool_name="kb.refund")
    def refund() -> str:
        return "ok"

    assert refund() == "ok"
    records = traced.records()
    assert shape(records) == [("span", "span", [("chain", "42", [("tool", "lookup", [])])]),
                              ("tool", "refund", [])]
    assert [r["metadata"]["tool_name"] for r in records if r["type"] == "tool"] == ["kb.lookup", "kb.refund"]
    assert "spans_dropped.redaction_failed" not in autotrace.stats()


def test_a_handle_entered_again_within_its_block_restores_the_context(traced: Traced) -> None:
    outer = autotrace.start_span("outer")
    with outer:
        with outer:  # e.g. a helper given the handle makes it current again
            pass
    with autotrace.start_span("after"):
        pass  # a root again: the ended span was not left current
    assert shape(traced.records()) == [("span", "outer", []), ("span", "after", [])]
