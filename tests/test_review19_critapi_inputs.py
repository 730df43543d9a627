"""An observed function's list or dict argument is copied for its record (the call may change it
before the observation ends), but a long one only as far as its recorded text can reach: the
record keeps the head that fits ``max_value_bytes``, and copying a million items on every call
(then freeing them) cost more than the call's whole record, and kept every item alive for as long
as the call ran, after the function had let go of them. What is recorded is the same text."""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import autotrace
from tests.helpers import Traced


class Row:
    """An item that can be watched (``weakref``); serialised as its text."""

    __slots__ = ("__weakref__",)

    def __str__(self) -> str:
        return "row"


def _rows(n: int) -> list[Row]:
    return [Row() for _ in range(n)]


def test_items_past_the_recorded_head_are_freed_when_the_function_lets_go_of_them(traced: Traced) -> None:
    @autotrace.observe
    def consume(rows: list[Row], *more: list[Row], table: dict[int, Row]) -> list[bool]:
        watched = [weakref.ref(rows[-1]), weakref.ref(more[0][-1]), weakref.ref(table[len(table) - 1])]
        rows.clear()  # done with them: a queue drained, a batch handed on
        more[0].clear()
        table.clear()
        return [ref() is None for ref in watched]

    freed = consume(_rows(100_000), _rows(100_000), table=dict(enumerate(_rows(100_000))))
    assert freed == [True, True, True]


def test_a_long_argument_is_recorded_as_the_same_text(traced: Traced) -> None:
    @autotrace.observe(name="head")
    def head(rows: list[Row], table: dict[str, int], *more: list[int]) -> None:
        rows.append(Row())

    @autotrace.observe(name="stream")
    def stream(rows: list[int]) -> Iterator[int]:
        yield from rows

    rows, table, more = _rows(100_000), {f"k{i}": i for i in range(50_000)}, list(range(100_000))
    head(rows, table, more)
    assert list(stream(list(range(100_000)))) == list(range(100_000))
    with autotrace.start_span("whole") as whole:  # the full arguments, as recorded before the call
        whole.set_input({"rows": rows[:-1], "table": table, "more": (more,)})
    with autotrace.start_span("whole stream") as whole_stream:
        whole_stream.set_input({"rows": list(range(100_000))})
    inputs = {r["name"]: r["input"] for r in traced.records()}
    assert inputs["head"] == inputs["whole"] and inputs["stream"] == inputs["whole stream"]
    assert inputs["head"].endswith("…[truncated]")
