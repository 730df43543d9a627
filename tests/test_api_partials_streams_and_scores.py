"""The API as a user calls it by hand: partials, receivers, cached functions, streams whose output is not
kept, metadata and tool errors as a user passes them, blocks left in another task, numpy scores."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import functools
import gc
import logging
import types
import weakref
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
from opentelemetry import trace

import autotrace
from tests.helpers import Traced, shape


def _multiply(a: int, b: int) -> int:
    return a * b


def test_a_partial_is_named_after_its_function(traced: Traced) -> None:
    observed = autotrace.observe(functools.partial(_multiply, 3))
    tool = autotrace.traced_tool(functools.partial(functools.partial(_multiply, 2), b=5))
    assert (observed(4), tool()) == (12, 10)
    records = traced.records()
    assert shape(records) == [("span", "_multiply", []), ("tool", "_multiply", [])]
    assert [(r["input"], r["output"]) for r in records] == [({"b": 4}, 12), ({"b": 5}, 10)]
    assert records[1]["metadata"] == {"tool_name": "_multiply"}


def test_only_a_methods_receiver_is_left_out_of_the_input(traced: Traced) -> None:
    class Classifier:
        @autotrace.observe(name="method")
        def method(self, text: str) -> str:
            return text

        @autotrace.observe(name="factory")
        @classmethod
        def factory(cls, size: int) -> int:
            return size

    @autotrace.observe(name="plain")
    def plain(text: str, cls: str, self: int = 1) -> str:  # arguments a user happened to name so
        return cls

    assert (Classifier().method("t"), Classifier.factory(2), plain("t", cls="spam")) == ("t", 2, "spam")
    inputs = {r["name"]: r["input"] for r in traced.records()}
    assert inputs == {"method": {"text": "t"}, "factory": {"size": 2},
                      "plain": {"text": "t", "cls": "spam", "self": 1}}


def test_observe_on_a_cached_function_keeps_its_cache_methods(traced: Traced) -> None:
    @autotrace.observe(name="cached")
    @functools.lru_cache(maxsize=8)
    def cached(key: int) -> int:
        return key * 2

    assert (cached(2), cached(2)) == (4, 4)
    info = cached.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 1, 1)
    assert cached.cache_parameters() == {"maxsize": 8, "typed": False}
    cached.cache_clear()
    assert cached.cache_info().currsize == 0
    assert [(r["name"], r["output"]) for r in traced.records()] == [("cached", 4), ("cached", 4)]


class _Chunk:
    """A yielded object; a weak reference tells whether autotrace still holds it."""


def test_a_stream_whose_output_is_not_recorded_holds_no_yielded_item(traced: Traced) -> None:
    @autotrace.observe(name="uncaptured", capture_output=False)
    def uncaptured() -> Iterator[_Chunk]:
        yield _Chunk()
        yield _Chunk()

    @autotrace.observe(name="capture-off")
    def capture_off() -> Iterator[_Chunk]:
        yield _Chunk()
        yield _Chunk()

    def consume(stream: Iterator[_Chunk]) -> None:
        first = weakref.ref(next(stream))
        next(stream)  # (the wrapper's frame holds the latest item until the next step, as a loop variable does)
        gc.collect()
        assert first() is None, "the generator's observation kept a yielded item alive"
        assert list(stream) == []

    consume(uncaptured())
    with autotrace.content_capture(False):  # decided when the generator starts, as its input is
        consume(capture_off())
    records = traced.records()
    assert [(r["name"], r["level"], r["input"], r["output"]) for r in records] == [
        ("uncaptured", "DEFAULT", {}, None), ("capture-off", "DEFAULT", None, None)]


async def test_an_async_stream_whose_output_is_not_recorded_holds_no_yielded_item(traced: Traced) -> None:
    @autotrace.observe(name="uncaptured", capture_output=False)
    async def uncaptured() -> AsyncIterator[_Chunk]:
        yield _Chunk()
        yield _Chunk()

    stream = uncaptured()
    first = weakref.ref(await stream.__anext__())
    await stream.__anext__()
    gc.collect()
    assert first() is None
    assert [chunk async for chunk in stream] == []
    assert [(r["name"], r["output"]) for r in traced.records()] == [("uncaptured", None)]


def test_metadata_that_is_not_a_mapping_is_left_out_and_counted(traced: Traced) -> None:
    with autotrace.start_span("span", metadata=["not", "a", "mapping"]) as span:  # type: ignore[arg-type]
        span.update(metadata={"a": 1})  # raised AttributeError: 'list' object has no attribute 'update'
        span.update(metadata="text")
        span.update(metadata=types.MappingProxyType({"b": 2}))
        span.update(metadata={"c": 3})  # raised: 'mappingproxy' object has no attribute 'update'
    autotrace.event("event", metadata=("x",))  # type: ignore[arg-type]
    records = traced.records()
    assert [(r["name"], r["metadata"]) for r in records] == [("span", {"a": 1, "b": 2, "c": 3}), ("event", {})]
    assert autotrace.stats()["metadata_invalid"] == 3


def test_a_tools_error_field_marks_it_failed(traced: Traced) -> None:
    with autotrace.start_tool("timeout", arguments={"q": 1}) as tool:
        tool.update(result=None, error="upstream timed out after 30 s")
    with autotrace.start_tool("raised") as tool:
        tool.update(error=ConnectionError("refused"))
    with autotrace.start_tool("fine", error=False) as tool:
        tool.update(error="", result="ok")
    records = traced.records()
    assert [(r["name"], r["level"], r["status_message"], r["error"]) for r in records] == [
        ("timeout", "ERROR", "upstream timed out after 30 s", True),
        ("raised", "ERROR", "ConnectionError: refused", True),
        ("fine", "DEFAULT", None, False),
    ]


async def test_a_block_left_in_another_task_logs_no_traceback(traced: Traced, caplog: pytest.LogCaptureFixture) -> None:
    async def answer() -> AsyncIterator[int]:
        async with autotrace.start_span("inside-stream"):
            yield 1
            yield 2

    async def abandon() -> None:  # in a task of its own: the stream leaves its span current there
        stream = answer()
        async for _ in stream:
            break
        del stream  # the event loop closes it, in another task, where the block then ends

    caplog.set_level(logging.DEBUG)
    await asyncio.create_task(abandon())
    for _ in range(5):
        await asyncio.sleep(0)
    handle = autotrace.start_span("handed-over")

    async def enter() -> None:
        handle.__enter__()

    async def leave() -> None:
        handle.__exit__(None, None, None)

    await asyncio.create_task(enter())
    await asyncio.create_task(leave())
    assert not trace.get_current_span().get_span_context().is_valid
    assert "Failed to detach context" not in caplog.text
    assert autotrace.stats()["context_not_restored"] == 2
    records = traced.records()
    assert [(r["name"], r["level"], r["status_message"]) for r in records] == [
        ("inside-stream", "WARNING", "GeneratorExit"), ("handed-over", "DEFAULT", None)]


@autotrace.observe(as_type="evaluator", name="overlap")
def _overlap(answer: str, target: autotrace.Observation) -> np.int64:
    return np.sum(np.array([len(answer), 1]))


def test_scores_computed_with_numpy_or_fractions_are_plain_numbers(traced: Traced) -> None:
    with autotrace.start_span("judged") as span:
        _overlap("ab", span)  # an evaluator's np.int64 result: was not scored
        span.score("mean", np.mean([0.25, 0.75]))  # a float subclass: was stored as <REDACTION_FAILED>
        span.score("count", np.sum(np.array([1, 2])))  # np.int64: was dropped as not a number
        span.score("passed", np.mean([1.0]) > 0.5)  # np.bool_
        span.score("ratio", fractions.Fraction(1, 4))
        span.score("nan", np.float64("nan"))  # still refused
    traced.records()
    store = autotrace.local_store()
    assert store is not None
    scores = sorted(store.scores(span.trace_id), key=lambda s: s["name"])
    assert [(s["name"], s["value"], s["string_value"], s["data_type"]) for s in scores] == [
        ("count", 3.0, None, "NUMERIC"), ("mean", 0.5, None, "NUMERIC"), ("overlap", 3.0, None, "NUMERIC"),
        ("passed", 1.0, None, "BOOLEAN"), ("ratio", 0.25, None, "NUMERIC"),
    ]
    assert {s["observation_id"] for s in scores} == {span.id}
    stats = autotrace.stats()
    assert stats["scores_dropped.invalid"] == 1 and "redaction_unsupported_values" not in stats


def test_a_thousand_nested_blocks_and_a_deep_recursion_nest_exactly(traced: Traced) -> None:
    @autotrace.observe(name="step")
    def step(n: int) -> int:
        return 0 if n == 0 else step(n - 1) + 1

    with contextlib.ExitStack() as stack:
        for depth in range(1000):
            stack.enter_context(autotrace.start_span(f"d{depth}"))
        assert step(300) == 300
    records = traced.records()
    assert len(records) == 1301 and len({r["trace_id"] for r in records}) == 1
    by_id = {r["id"]: r for r in records}
    leaf = min((r for r in records if r["name"] == "step"), key=lambda r: r["input"]["n"])
    chain = []
    while leaf is not None:
        chain.append(leaf["name"])
        leaf = by_id.get(leaf["parent_id"])
    assert chain == ["step"] * 301 + [f"d{depth}" for depth in range(999, -1, -1)]


def test_a_retrieval_given_its_documents_counts_them(traced: Traced) -> None:
    @autotrace.observe(name="search", as_type="retriever")
    def search(query: str) -> list[dict[str, str]]:
        return [{"id": "a"}, {"id": "b"}]

    search("q")
    with autotrace.start_retrieval("by-output") as span:
        span.set_output([{"id": "c"}])
    with autotrace.start_retrieval("by-documents") as span:
        span.update(documents=[{"id": "d"}, {"id": "e"}, {"id": "f"}])
    with autotrace.start_retrieval("counted-by-the-caller") as span:
        span.update(documents=[{"id": "g"}], doc_count=40)  # the first of 40 found
    with autotrace.start_retrieval("not-a-list") as span:
        span.set_output("no documents")
    with autotrace.start_tool("a-tool") as span:
        span.set_output([1, 2])
    assert {r["name"]: r["doc_count"] for r in traced.records()} == {
        "search": 2, "by-output": 1, "by-documents": 3, "counted-by-the-caller": 40, "not-a-list": None, "a-tool": None}
