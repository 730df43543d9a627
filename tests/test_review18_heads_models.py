"""Review 18 of content cut short before it is serialised: models (pydantic, dataclasses, any object
the serialiser writes in its own form) are dumped as the value is walked, so a long list of them is
dumped only as far as the recorded text needs, each once, and what is recorded is byte for byte the
text of the whole value serialised and cut."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections import OrderedDict
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import BaseModel, Field

import autotrace
from autotrace import bounds
from autotrace._ended import plain_fields
from autotrace._heads import content_cut_short
from autotrace.runtime import state
from autotrace.schema import serialize_io
from tests.helpers import Traced


class Hit(BaseModel):
    """A model counting how often it is dumped."""

    dumps: ClassVar[int] = 0
    id: int
    text: str
    score: float | None = None
    tags: list[str] = Field(default_factory=list, alias="Tags")

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        type(self).dumps += 1
        return super().model_dump(**kwargs)


class Page(BaseModel):
    hits: list[Hit]
    at: dt.datetime


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Row:
    hit: Any
    color: Color = Color.RED
    raw: bytes = b"\x00\xff"
    seen: float = float("nan")


class Broken(BaseModel):
    x: int = 1

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("cannot dump")


def _hits(count: int, text: str = "chunk") -> list[Hit]:
    return [Hit(id=i, text=f"{text} {i} " * 3, score=None if i % 3 else 0.5, Tags=["a", "ß"]) for i in range(count)]


def _held(value: Any, max_bytes: int) -> str:
    """What is held of a content value serialised whole (as before any cutting short)."""
    return bounds.hold(serialize_io(value), max_bytes)


SPREAD = {
    "models longer than the limit": _hits(5_000),
    "few models": _hits(3),
    "nested models": [Page(hits=_hits(40, "ü"), at=dt.datetime(2024, 5, 1)) for _ in range(100)],
    "dataclasses holding models, enums, bytes, NaN": [Row(Hit(id=i, text="r", Tags=[])) for i in range(3_000)],
    "dict of models": {f"k{i}": Hit(id=i, text="日本語 " * 20, Tags=[]) for i in range(2_000)},
    "tuple of models and objects": tuple([*_hits(70), Color.RED, b"xy", {1}, dt.date(2020, 1, 2), Hit]),
    "non-ASCII and escapes": [Hit(id=i, text='"é\n\x00😀\\', Tags=[]) for i in range(9_000)],
    "array of models": np.array(_hits(2_000), dtype=object).reshape(1_000, 2),
    "OrderedDict of models": [OrderedDict(h=Hit(id=1, text="o", Tags=[]))] * 100,
    "failing dump first": [Broken(), *_hits(3_000)],
    "failing dump within what fits": [*_hits(2), Broken(), *_hits(10)],
    "an array holding a failing dump": [np.array([Broken()], dtype=object), *_hits(3_000)],
    "a tuple key": [{(1, 2): Hit(id=1, text="t", Tags=[])}] * 100,
    "nested past the depth walked": [[[[[[[[[[Hit(id=0, text="d", Tags=[])]]]]]]]]]] * 70,
}


@pytest.mark.parametrize("max_bytes", [300, 4096, 64 * 1024])
@pytest.mark.parametrize("name", list(SPREAD))
def test_what_is_held_is_the_whole_value_serialised_and_cut(name: str, max_bytes: int) -> None:
    value = SPREAD[name]
    fields = {"input": {"value": value}, "output": value, "metadata": {"k": 1}}
    expected = {"input": _held({"value": value}, max_bytes), "output": _held(value, max_bytes), "metadata": {"k": 1}}
    assert plain_fields(content_cut_short(fields, max_bytes), max_bytes) == expected


def test_a_value_that_fits_has_each_model_dumped_once_and_is_held_unchanged() -> None:
    hits = _hits(100)
    page = Page(hits=hits, at=dt.datetime(2024, 1, 1))
    fields = {"output": [page, *hits]}
    expected = _held([page, *hits], 1 << 20)
    Hit.dumps = 0
    held = plain_fields(content_cut_short(fields, 1 << 20), 1 << 20)
    assert held["output"] == expected and not expected.endswith(bounds.HELD_MARK)
    assert Hit.dumps == 100  # the page's own dump holds its hits' (not counted); each listed hit once


def test_a_long_list_of_models_is_dumped_only_as_far_as_the_recorded_text_needs(traced: Traced) -> None:
    """Each of the 50,000 models counted as a byte of text: about 22,000 dumped per field (over a
    second on the caller's thread) for a text cut at 64 KB."""
    hits = _hits(50_000)

    @autotrace.traced_tool
    def rank(found: list[Hit]) -> list[Hit]:
        return found

    limit = state.max_value_bytes
    expected = [bounds.truncate(_held(v, limit), limit) for v in ({"found": hits}, hits)]
    Hit.dumps = 0
    assert rank(hits) is hits
    shortest = min(len(serialize_io(hit).encode()) for hit in hits[:3])
    assert Hit.dumps <= 2 * ((limit + bounds.REDACTION_MARGIN) // shortest + 2)
    record = traced.one()
    assert [record["input"], record["output"]] == expected
    assert expected[1].endswith(bounds.TRUNCATION_MARK)


def test_a_model_holding_a_long_list_is_recorded_as_its_whole_dump_cut(traced: Traced) -> None:
    page = Page(hits=_hits(20_000), at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))

    @autotrace.observe(name="search")
    def search() -> Page:
        return page

    limit = state.max_value_bytes
    expected = bounds.truncate(_held(page, limit), limit)
    assert search() is page
    assert traced.one()["output"] == expected and expected.endswith(bounds.TRUNCATION_MARK)


def test_a_model_whose_dump_fails_does_not_break_the_call(traced: Traced) -> None:
    items = [Broken(), *_hits(30_000)]

    @autotrace.observe(name="broken")
    def broken(given: list[Any]) -> list[Any]:
        return given

    limit = state.max_value_bytes
    expected = bounds.truncate(_held(items, limit), limit)  # the whole written as its text
    assert broken(items) is items
    assert traced.one()["output"] == expected and expected.startswith('"[Broken(x=1)')


def test_a_model_past_the_cut_is_not_dumped_even_if_its_dump_would_fail() -> None:
    """Before, every model counted as a byte: those past the cut but within that many were dumped,
    and one failing turned the whole record into the value's repr. Now it is never reached."""
    items = [*_hits(100), Broken()]
    held = plain_fields(content_cut_short({"output": items}, 300), 300)["output"]
    assert held == _held(items[:100], 300) and held.startswith('[{"id": 0, "text": "chunk 0 ')
