"""Review 17 of the manual API: what an observed function returns is given back as it is when it is
not the call's own work to follow, and content far over the size limit is not serialised whole."""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from typing import Any

import numpy as np

import autotrace
from autotrace import bounds
from autotrace.runtime import state
from autotrace.schema import serialize_io
from tests.helpers import Traced, shape


def _primed(fn: Callable[..., Generator[int, int, None]]) -> Callable[..., Generator[int, int, None]]:
    """The classic decorator of a coroutine-style generator: started, so ``send`` works at once."""
    @functools.wraps(fn)
    def start(*args: Any, **kwargs: Any) -> Generator[int, int, None]:
        generator = fn(*args, **kwargs)
        next(generator)
        made.append(generator)
        return generator

    made: list[Generator[int, int, None]] = []
    start.made = made  # type: ignore[attr-defined]
    return start


def test_a_started_generator_returned_by_an_observed_function_is_given_back_as_it_is(traced: Traced) -> None:
    @autotrace.observe(name="accumulate")
    @_primed
    def accumulate(start: int) -> Generator[int, int, None]:
        total = start
        while True:
            total += yield total

    running = accumulate(1)
    assert running is accumulate.__wrapped__.made[0]  # type: ignore[attr-defined]
    assert running.send(2) == 3  # undecorated, as here; a follower would raise TypeError (just started)
    assert running.send(4) == 7
    running.close()
    records = traced.records()
    assert shape(records) == [("span", "accumulate", [])]
    (record,) = records
    assert (record["level"], record["input"]) == ("DEFAULT", {"start": 1})
    assert record["output"].startswith("<generator object")


class _Cell:
    """An object serialised as its text, counting how often it is."""

    texts = 0

    def __str__(self) -> str:
        _Cell.texts += 1
        return "cell"


def _recorded(value: Any) -> str:
    """What autotrace records of ``value`` as content longer than the size limit: its JSON text cut
    at the limit (serialised whole here, its cells' texts not counted)."""
    limit = state.max_value_bytes
    text = bounds.truncate(bounds.hold(serialize_io(value), limit), limit)
    _Cell.texts = 0
    return text


def test_content_far_over_the_size_limit_is_not_serialised_whole(traced: Traced) -> None:
    cells = [_Cell() for _ in range(200_000)]  # its JSON text: 1.6 MB, 25 times the limit

    @autotrace.traced_tool
    def tabulate(rows: list[_Cell]) -> list[_Cell]:
        return rows

    expected_input, expected_output = _recorded({"rows": cells}), _recorded(cells)
    assert tabulate(cells) is cells
    record = traced.one()
    assert (record["input"], record["output"]) == (expected_input, expected_output)
    assert record["input"].endswith(bounds.TRUNCATION_MARK)
    # each field serialised no further than the limit (and the margin redaction needs) could need:
    # every item at least a byte and a separator (the whole: 200,000 texts each)
    room = state.max_value_bytes + bounds.REDACTION_MARGIN + 1
    assert 0 < _Cell.texts <= 2 * (room // 3 + 1)


def test_an_array_far_over_the_size_limit_is_not_serialised_whole(traced: Traced) -> None:
    table = np.array([_Cell() for _ in range(200_000)], dtype=object).reshape(2_000, 100)

    @autotrace.observe(name="embed", as_type="embedding")
    def embed() -> np.ndarray:
        return table

    expected = _recorded(table)
    assert embed() is table
    record = traced.one()
    assert record["output"] == expected and expected.endswith(bounds.TRUNCATION_MARK)
    room = state.max_value_bytes + bounds.REDACTION_MARGIN + 1
    assert 0 < _Cell.texts <= room // 3 + 1


def test_content_under_the_size_limit_is_recorded_whole_and_unchanged(traced: Traced) -> None:
    rows = {"vector": [0.5] * 1_000, "nested": [[1, "two", None, True]] * 100, "array": np.arange(6).reshape(2, 3)}

    @autotrace.observe(name="small")
    def small(value: dict[str, Any]) -> dict[str, Any]:
        return value

    assert small(rows) is rows
    record = traced.one()
    plain = {"vector": [0.5] * 1_000, "nested": [[1, "two", None, True]] * 100, "array": [[0, 1, 2], [3, 4, 5]]}
    assert (record["input"], record["output"]) == ({"value": plain}, plain)


def test_a_block_an_observed_generator_keeps_open_across_its_yields_is_current_when_it_resumes(
        traced: Traced) -> None:
    @autotrace.observe(name="outer")
    def pages(n: int) -> Generator[int, None, None]:
        with autotrace.start_span("page-block"):
            for page in range(n):
                yield page
                with autotrace.start_span(f"fetched-{page}"):
                    pass
        with autotrace.start_span("after"):
            pass

    with autotrace.start_span("root"):
        for _ in pages(2):
            with autotrace.start_span("reader"):  # the reader's own steps stay the reader's
                pass
        early = pages(5)
        next(early)
        early.close()  # closed inside the block: it ends, the generator's block with it
    assert shape(traced.records()) == [("span", "root", [
        ("span", "outer", [("span", "page-block", [("span", "fetched-0", []), ("span", "fetched-1", [])]),
                           ("span", "after", [])]),
        ("span", "reader", []), ("span", "reader", []),
        ("span", "outer", [("span", "page-block", [])]),
    ])]
    levels = {r["name"]: r["level"] for r in traced.records()[-2:]}
    assert levels == {"outer": "WARNING", "page-block": "WARNING"}


async def test_a_block_an_observed_async_generator_keeps_open_across_its_yields_is_current_when_it_resumes(
        traced: Traced) -> None:
    @autotrace.observe(name="outer")
    async def pages(n: int) -> Any:
        async with autotrace.start_span("page-block"):
            for page in range(n):
                yield page
                with autotrace.start_span(f"fetched-{page}"):
                    pass

    with autotrace.start_span("root"):
        async for _ in pages(2):
            with autotrace.start_span("reader"):
                pass
        early = pages(5)
        async for _ in early:
            break
        await early.aclose()
    assert shape(traced.records()) == [("span", "root", [
        ("span", "outer", [("span", "page-block", [("span", "fetched-0", []), ("span", "fetched-1", [])])]),
        ("span", "reader", []), ("span", "reader", []),
        ("span", "outer", [("span", "page-block", [])]),
    ])]
