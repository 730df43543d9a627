"""Edges of the manual API: exceptions that misbehave, callable objects, properties, levels, names."""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import Traced, install_one_tenant, shape


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


def test_traced_tool_on_top_of_a_property_is_named_after_its_getter(traced: Traced) -> None:
    class Order:
        @autotrace.traced_tool
        @property
        def status(self) -> str:
            return "shipped"

        @autotrace.traced_tool
        @functools.cached_property
        def total(self) -> int:
            return 42

    order = Order()
    assert (order.status, order.total, order.total) == ("shipped", 42, 42)
    assert isinstance(Order.__dict__["status"], property)
    tools = [(r["type"], r["name"], r["metadata"].get("tool_name"), r["output"]) for r in traced.records()]
    assert tools == [("tool", "status", "status", "shipped"), ("tool", "total", "total", 42)]


def test_observe_on_a_write_only_property_leaves_it_as_it_is(traced: Traced) -> None:
    class Account:
        def _set_limit(self, value: int) -> None:
            self.set_to = value

        limit = autotrace.observe(property(None, _set_limit))

    account = Account()
    account.limit = 9
    assert isinstance(Account.__dict__["limit"], property) and account.set_to == 9
    assert "limit" not in account.__dict__ and traced.records() == []


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


def _logged(fn):  # type: ignore[no-untyped-def]
    """An application's own decorator: a plain function that returns what ``fn`` returns."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        return fn(*args, **kwargs)

    return wrapper


async def test_a_plain_function_returning_a_coroutine_or_generator_is_observed_while_it_runs(
    traced: Traced,
) -> None:
    @autotrace.observe(name="coroutine")
    @_logged
    async def work(x: int) -> int:
        with autotrace.start_span("in-coroutine"):
            await asyncio.sleep(0)
        return x + 1

    @autotrace.observe(name="generator")
    @_logged
    def items(n: int) -> Iterator[int]:
        for i in range(n):
            with autotrace.start_span(f"in-generator-{i}"):
                yield i

    async def agen() -> AsyncIterator[str]:
        with autotrace.start_span("in-async-generator"):
            yield "a"
        yield "b"

    @autotrace.observe(name="async-generator")
    def astream() -> AsyncIterator[str]:
        return agen()

    @autotrace.observe(name="fails-later")
    @_logged
    async def fails() -> None:
        raise KeyError("k")

    @autotrace.observe(name="never-run")
    @_logged
    def never(n: int) -> Iterator[int]:
        yield n

    assert await work(1) == 2
    assert list(items(2)) == [0, 1]
    assert [x async for x in astream()] == ["a", "b"]
    with pytest.raises(KeyError):
        await fails()
    unused = never(1)
    del unused
    gc.collect()
    records = traced.records()
    assert shape(records) == [
        ("span", "coroutine", [("span", "in-coroutine", [])]),
        ("span", "generator", [("span", "in-generator-0", []), ("span", "in-generator-1", [])]),
        ("span", "async-generator", [("span", "in-async-generator", [])]),
        ("span", "fails-later", []),
        ("span", "never-run", []),  # ended when freed, not left open
    ]
    outcome = {r["name"]: (r["output"], r["level"]) for r in records if not r["name"].startswith("in-")}
    assert outcome == {"coroutine": (2, "DEFAULT"), "generator": ([0, 1], "DEFAULT"),
                       "async-generator": ("ab", "DEFAULT"), "fails-later": (None, "ERROR"),
                       "never-run": (None, "DEFAULT")}


def test_trace_environment_langfuse_would_reject_is_left_out(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    with autotrace.tenant("t"):
        for environment in ("prod:eu", "langfuse-x", "e" * 41, 7, "Staging"):
            with autotrace.trace_attributes(environment=environment, tags="vip"):  # type: ignore[arg-type]
                autotrace.event(f"env-{str(environment)[:8]}")
    assert autotrace.flush(10.0)
    spans = {s.name: s.attributes for s in rx.wait_for_spans(5)}
    # Langfuse answers 400 to a whole export holding an environment off its pattern (lower-cased
    # first): one such span lost every span sent with it
    assert {name: attrs.get("langfuse.environment") for name, attrs in spans.items()} == {
        "env-prod:eu": None, "env-langfuse": None, "env-eeeeeeee": None, "env-7": None, "env-Staging": "staging"}
    assert all(attrs["langfuse.trace.tags"] == ["vip"] for attrs in spans.values())  # one tag, not three
    assert autotrace.stats()["trace_attributes_invalid"] == 4


@pytest.mark.parametrize("main_ends_first", [False, True])
def test_a_handle_entered_in_another_thread_leaves_no_context_behind(traced: Traced, main_ends_first: bool) -> None:
    with autotrace.tenant("acme"):
        parent = autotrace.start_agent("parent")
    entered, main_done = threading.Event(), threading.Event()

    def worker() -> None:
        with parent:  # a worker makes the shared handle current in its own thread
            with autotrace.start_tool("in-thread"):
                pass
            entered.set()
            if main_ends_first:
                main_done.wait(5)

    with autotrace.tenant("acme"), parent:
        thread = threading.Thread(target=worker)
        thread.start()
        entered.wait(5)
        if not main_ends_first:
            thread.join()
        parent.set_output("done")  # the worker's block ending did not end the observation
    main_done.set()
    thread.join()
    assert not trace.get_current_span().get_span_context().is_valid  # the ended span is not left current
    with autotrace.tenant("beta"), autotrace.start_span("next-request"):
        pass  # a new trace of its own tenant, not a child in acme's trace
    records = traced.records()
    assert shape(records) == [("agent", "parent", [("tool", "in-thread", [])]), ("span", "next-request", [])]
    assert {r["name"]: (r["tenant"], r["output"]) for r in records} == {
        "parent": ("acme", "done"), "in-thread": ("acme", None), "next-request": ("beta", None)}
