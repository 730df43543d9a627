"""Review 20 of the decorators: a traced generator that yields large objects (arrays, models,
dataclasses) holds them only as far as its output can keep them, as it does for text and lists,
and records the same output as before."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pydantic

import autotrace
from tests.helpers import Traced


class Chunk(pydantic.BaseModel):
    text: str
    n: int


@dataclasses.dataclass
class Frame:
    index: int
    pixels: list[int]


def _alive(refs: list[weakref.ref[Any]]) -> int:
    gc.collect()
    return sum(ref() is not None for ref in refs)


def test_a_stream_of_large_arrays_is_not_held_until_its_end(traced: Traced) -> None:
    refs: list[weakref.ref[Any]] = []

    @autotrace.observe
    def frames(n: int) -> Iterator[np.ndarray]:
        for i in range(n):
            array = np.full(200_000, float(i))
            refs.append(weakref.ref(array))
            yield array

    stream = frames(30)
    for _ in range(20):  # each frame let go of by the reader, as a video or audio pipeline does
        next(stream)
    alive_midway = _alive(refs)
    assert list(stream) and len(refs) == 30
    with autotrace.start_span("reference") as reference:  # the output as a whole list records it
        reference.set_output([np.full(200_000, float(i)) for i in range(30)])
    stream_record, reference_record = traced.records()
    assert alive_midway == 1  # the generator's own last one; was 20: each yielded, 32 MB, held until the end
    assert (stream_record["name"], stream_record["level"]) == ("test_a_stream_of_large_arrays_is_not_held_until_its_end"
                                                               ".<locals>.frames", "DEFAULT")
    assert stream_record["output"] == reference_record["output"]
    assert stream_record["output"].startswith("[[0.0, 0.0, ") and stream_record["output"].endswith("…[truncated]")


def test_large_models_and_dataclasses_are_held_as_far_as_the_output_reaches(traced: Traced) -> None:
    refs: list[weakref.ref[Any]] = []

    @autotrace.observe
    def chunks() -> Iterator[Any]:
        for i in range(40):
            item: Any = Chunk(text="x" * 50_000, n=i) if i % 2 else Frame(i, list(range(20_000)))
            refs.append(weakref.ref(item))
            yield item

    stream = chunks()
    for _ in range(30):
        next(stream)
    alive_midway = _alive(refs)
    assert len(list(stream)) == 10
    records = traced.records()
    assert alive_midway == 1  # the generator's own last one; was 30, all held by the output until its end
    with autotrace.start_span("reference") as reference:
        reference.set_output([Chunk(text="x" * 50_000, n=i) if i % 2 else Frame(i, list(range(20_000)))
                              for i in range(40)])
    assert records[0]["output"] == traced.records()[1]["output"]


def test_small_objects_yielded_are_recorded_whole_and_in_order(traced: Traced) -> None:
    @autotrace.observe
    def mixed() -> Iterator[Any]:
        yield Chunk(text="a", n=1)
        yield np.arange(3)
        yield Frame(2, [7])
        yield np.float64(0.5)
        yield b"\x00\x01"
        yield "tail"

    assert len(list(mixed())) == 6
    assert traced.one()["output"] == [{"text": "a", "n": 1}, [0, 1, 2], {"index": 2, "pixels": [7]}, 0.5,
                                      "<2 bytes>", "tail"]


def test_objects_written_as_text_stay_a_list_of_items(traced: Traced) -> None:
    import datetime as dt
    import enum

    class Colour(enum.Enum):
        RED = "red"

    @autotrace.observe
    def values() -> Iterator[Any]:
        yield dt.date(2026, 1, 2)
        yield Colour.RED

    assert len(list(values())) == 2
    assert traced.one()["output"] == ["2026-01-02", "red"]  # not joined as streamed text would be


def test_items_the_generator_changes_after_yielding_them_are_recorded_as_yielded(traced: Traced) -> None:
    @autotrace.observe
    def progress() -> Iterator[Any]:
        status: dict[str, Any] = {"step": 0}
        done: list[int] = []
        for step in range(3):
            status["step"] = step
            done.append(step)
            yield status
            yield done

    @autotrace.observe
    async def events() -> AsyncIterator[dict[str, int]]:
        event = {"n": 0}
        for n in range(2):
            event["n"] = n
            yield event

    async def read() -> list[int]:
        return [item["n"] async for item in events()]

    seen = [dict(item) if isinstance(item, dict) else list(item) for item in progress()]  # as a reader sees them
    assert asyncio.run(read()) == [0, 1]
    assert seen == [{"step": 0}, [0], {"step": 1}, [0, 1], {"step": 2}, [0, 1, 2]]
    records = traced.records()
    # before: [{"step": 2}, [0, 1, 2]] * 3 and [{"n": 1}, {"n": 1}], each item as it was at the end
    assert [(r["name"].rsplit(".", 1)[-1], r["output"]) for r in records] == [
        ("progress", seen), ("events", [{"n": 0}, {"n": 1}])]
