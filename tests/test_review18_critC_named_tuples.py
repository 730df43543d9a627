"""Review 18 (critique C): a named tuple (or any list or tuple subclass) holding a float that is not
finite made the whole input or output one text, its repr: JSON has no NaN, and ``plain``, which writes
such a float null, did not walk into the subclass the encoder writes as an array. Real decorated code,
the real pipeline and local store, and the bytes Langfuse gets."""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import autotrace
from tests.helpers import Traced, install_one_tenant

Point = namedtuple("Point", "x y")


class Row(list):
    """A list subclass, written as an array by the JSON encoder."""


def _record() -> None:
    with autotrace.start_span("fit", input={"points": [Point(1.5, math.nan), Point(2.0, 3.0)]}) as span:
        span.set_output(Row([math.inf, 4]))


def test_a_named_tuple_holding_a_nan_stays_json(traced: Traced) -> None:
    _record()
    (record,) = traced.records()
    assert (record["input"], record["output"]) == ({"points": [[1.5, None], [2.0, 3.0]]}, [None, 4])


def test_langfuse_gets_the_json_too(rx: Any) -> None:
    install_one_tenant(rx)
    with autotrace.tenant("t"):
        _record()
    assert autotrace.flush(10)
    (span,) = rx.wait_for_spans(1)
    assert (span.attributes["langfuse.observation.input"], span.attributes["langfuse.observation.output"]) == (
        '{"points": [[1.5, null], [2.0, 3.0]]}', "[null, 4]")
