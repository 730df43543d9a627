"""Observed generator and async generator functions called with arguments that do not fit: the
TypeError comes at the call, as for the undecorated function (Python binds a generator function's
arguments when it is called, not at its first step). Observations are read back from the local store."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import inspect
import pickle
import weakref
from collections.abc import AsyncIterator, Iterator

import pytest

import autotrace
from autotrace.bounds import TRUNCATION_MARK
from tests.helpers import Traced


def _message(call: object) -> str:
    with pytest.raises(TypeError) as raised:
        call()  # type: ignore[operator]
    return str(raised.value)


@autotrace.observe(name="numbers")
def numbers(limit: int) -> Iterator[int]:
    yield from range(limit)


def test_a_generator_function_called_with_wrong_arguments_raises_at_the_call(traced: Traced) -> None:
    """Before: ``numbers(1, 2)`` returned a generator, and the TypeError came at its first ``next()``
    (or never, when it was not read), unlike the undecorated function's."""

    def plain(limit: int) -> Iterator[int]:
        yield from range(limit)

    assert _message(lambda: numbers(1, 2)) == "numbers() takes 1 positional argument but 2 were given"
    assert _message(lambda: plain(1, 2)) == "test_a_generator_function_called_with_wrong_arguments_raises_at_" \
        "the_call.<locals>.plain() takes 1 positional argument but 2 were given"
    assert _message(lambda: numbers(limit=1, step=2)) == "numbers() got an unexpected keyword argument 'step'"
    with pytest.raises(TypeError, match="numbers"):
        contextlib.contextmanager(numbers)(1, 2)  # a context manager built on it: at the ``with``'s call too
    assert list(numbers(3)) == [0, 1, 2]
    assert inspect.isgeneratorfunction(numbers) and str(inspect.signature(numbers)) == "(limit: 'int') -> 'Iterator[int]'"
    assert pickle.loads(pickle.dumps(numbers)) is numbers and copy.deepcopy(numbers) is numbers
    assert [(r["name"], r["input"], r["output"], r["level"]) for r in traced.records()] == [
        ("numbers", {"limit": 3}, [0, 1, 2], "DEFAULT")]


def test_an_async_generator_function_called_with_wrong_arguments_raises_at_the_call(traced: Traced) -> None:
    @autotrace.observe(name="ticks")
    async def ticks(limit: int) -> AsyncIterator[int]:
        for n in range(limit):
            yield n

    async def main() -> list[int]:
        return [n async for n in ticks(2)]

    assert _message(lambda: ticks()) == "test_an_async_generator_function_called_with_wrong_arguments_raises_at_" \
        "the_call.<locals>.ticks() missing 1 required positional argument: 'limit'"
    assert asyncio.run(main()) == [0, 1]
    assert inspect.isasyncgenfunction(ticks)
    assert [(r["name"], r["input"], r["output"]) for r in traced.records()] == [("ticks", {"limit": 2}, [0, 1])]


def test_generator_methods_static_and_class_methods_are_bound_and_raise_at_the_call(traced: Traced) -> None:
    class Source:
        scale = 10

        @autotrace.observe(name="method")
        def items(self, limit: int) -> Iterator[int]:
            yield from range(limit)

        @staticmethod
        @autotrace.observe(name="static")
        def fixed(limit: int) -> Iterator[int]:
            yield from range(limit)

        @classmethod
        @autotrace.observe(name="class")
        def scaled(cls, limit: int) -> Iterator[int]:
            yield from (n * cls.scale for n in range(limit))

        @autotrace.observe(name="async-method")
        async def stream(self, limit: int) -> AsyncIterator[int]:
            for n in range(limit):
                yield n

    source = Source()
    assert _message(lambda: source.items(1, 2)).endswith("items() takes 2 positional arguments but 3 were given")
    assert _message(lambda: source.fixed()).endswith("fixed() missing 1 required positional argument: 'limit'")
    assert _message(lambda: Source.scaled(1, 2)).endswith("scaled() takes 2 positional arguments but 3 were given")
    assert _message(lambda: source.stream()).endswith("stream() missing 1 required positional argument: 'limit'")

    async def read() -> list[int]:
        return [n async for n in source.stream(1)]

    assert list(source.items(2)) == [0, 1] and list(Source.fixed(1)) == [0] and list(source.scaled(2)) == [0, 10]
    assert asyncio.run(read()) == [0]
    assert list(Source.items(source, 1)) == [0]  # through the class, the instance given
    assert inspect.isgeneratorfunction(source.items) and inspect.isgeneratorfunction(Source.items)
    assert inspect.isasyncgenfunction(source.stream) and str(inspect.signature(source.items)) == "(limit: 'int') -> 'Iterator[int]'"
    assert [(r["name"], r["input"], r["output"]) for r in traced.records()] == [
        ("method", {"limit": 2}, [0, 1]), ("static", {"limit": 1}, [0]), ("class", {"limit": 2}, [0, 10]),
        ("async-method", {"limit": 1}, [0]), ("method", {"limit": 1}, [0])]


class _Chunk(list):  # type: ignore[type-arg]
    """A list that can be referenced weakly."""


def test_an_observed_generator_holds_no_more_yielded_items_than_its_output_keeps(traced: Traced) -> None:
    """Before: the first 1,000 yielded items were all held until the generator ended, whatever
    their size: 20 chunks of 800 KB stayed in memory for an output cut at 64 KB anyway. Now the
    items past what the output keeps once bounded are not held; the output is cut as before."""
    refs: list[weakref.ref[_Chunk]] = []

    @autotrace.observe(name="chunks")
    def chunks() -> Iterator[_Chunk]:
        for _ in range(20):
            chunk = _Chunk(range(100_000))
            refs.append(weakref.ref(chunk))
            yield chunk

    stream = chunks()
    for _ in range(20):
        next(stream)
    gc.collect()
    # the first, which alone fills the output, and the last, still the generator's own variable
    assert [ref() is not None for ref in refs] == [True] + [False] * 18 + [True]
    assert list(stream) == []
    (record,) = traced.records()
    assert record["name"] == "chunks" and record["output"].startswith("[[0, 1, 2, 3")
    assert record["output"].endswith(TRUNCATION_MARK) and len(record["output"].encode()) <= 64 * 1024


def test_an_observed_text_stream_is_recorded_cut_at_the_limit_as_a_whole_one_is(traced: Traced) -> None:
    @autotrace.observe(name="text")
    def text() -> Iterator[str]:
        for _ in range(30):
            yield "é" * 10_000

    assert "".join(text()) == "é" * 300_000
    (record,) = traced.records()
    assert record["output"] == "é" * ((64 * 1024 - len(TRUNCATION_MARK.encode())) // 2) + TRUNCATION_MARK


def test_items_not_held_for_lack_of_room_end_the_output_with_the_truncation_mark(traced: Traced) -> None:
    """Bytes are recorded by their length: the output of 10 chunks of 100 KB would not be cut, so
    the chunks not held say so with the mark (and are counted), as a replay needs to know. Small
    items all fit: their output is whole, as before."""

    @autotrace.observe(name="blobs")
    def blobs() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 100_000

    @autotrace.observe(name="rows")
    def rows() -> Iterator[dict[str, int]]:
        for n in range(999):
            yield {"n": n}

    assert len(list(blobs())) == 10 and len(list(rows())) == 999
    blob_record, row_record = traced.records()
    assert blob_record["output"] == ["<100000 bytes>"] * 3 + [TRUNCATION_MARK]
    assert row_record["output"] == [{"n": n} for n in range(999)]
    assert autotrace.stats()["attribute_items_dropped"] == 7


@autotrace.observe(name="blobs")
def _blobs() -> Iterator[bytes]:
    for _ in range(10):
        yield b"x" * 100_000


def test_a_frozen_generator_whose_items_were_not_all_held_stops_the_replay(traced: Traced) -> None:
    """The recording ends with the mark: a replay must not yield it (nor the first items alone) as
    what the generator yielded."""
    from autotrace.replay import ReplayStop, replay

    def turn() -> int:
        with autotrace.start_chain("turn"):
            count = len(list(_blobs()))
            with autotrace.start_generation("answer", model="m"):
                return count

    assert turn() == 10
    assert autotrace.flush(5)
    (summary,) = autotrace.local_store().traces()
    records = traced.trace(summary["trace_id"])
    at = next(r["id"] for r in records if r["name"] == "answer")
    with pytest.raises(ReplayStop, match="recording of 'blobs' does not hold the items it yielded"):
        replay(records, at, turn)
