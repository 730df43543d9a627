"""NaN and infinity, which JSON cannot hold: recorded inputs, outputs and metadata are exported as
strict JSON (Langfuse parses them), with such a float as null, and the local store keeps records
SQLite's JSON functions read (the store's queries and error counts use them). A dict key JSON
cannot hold (a tuple) is written as its text, the rest of the value staying structured."""

from __future__ import annotations

import collections
import dataclasses
import json
import sqlite3
from typing import Any

import numpy as np
import pydantic
import pytest
from opentelemetry import trace

import autotrace
from autotrace import schema
from tests.helpers import Traced

NAN, INF = float("nan"), float("inf")


@dataclasses.dataclass
class Ratio:
    value: float


class Reading(pydantic.BaseModel):
    value: float


@pytest.mark.parametrize(("value", "text"), [
    ({"a": NAN, "b": [1.5, INF, (-INF,)]}, '{"a": null, "b": [1.5, null, [null]]}'),
    ([np.float64("nan"), np.float64(2.0)], "[null, 2.0]"),
    (Ratio(NAN), '{"value": null}'),
    (Reading(value=INF), '{"value": null}'),
    (NAN, "null"),
    ({"ok": 1.0, "s": "NaN"}, '{"ok": 1.0, "s": "NaN"}'),  # finite values and texts stay as they are
    # keys JSON cannot hold are written as their text; the rest of the value stays structured
    ({("acme",): [1, 2], 3: {frozenset(): NAN}}, '{"(\'acme\',)": [1, 2], "3": {"frozenset()": null}}'),
    (collections.OrderedDict([((7,), "x")]), '{"(7,)": "x"}'),
    ([{"k": Reading(value=1.0), (0,): True}], '[{"k": {"value": 1.0}, "(0,)": true}]'),
    ({"schema": Reading, "n": 1}, '{"schema": "Reading", "n": 1}'),  # a class is its name, not the value's repr
])
def test_serialised_values_are_strict_json(value: Any, text: str) -> None:
    assert schema.dumps(value) == text
    assert schema.dumps(value, compact=True) == text.replace(", ", ",").replace(": ", ":")
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON text"))


def test_a_span_holding_nan_is_exported_and_stored_as_strict_json(traced: Traced) -> None:
    with autotrace.start_span("scoring", input={"score": NAN}, metadata={"ratio": INF}) as span:
        span.set_output([NAN, 1.0])
        # a float attribute set through OpenTelemetry reaches the record as a float
        trace.get_current_span().set_attribute("langfuse.observation.metadata.weight", NAN)
    (record,) = traced.records()
    assert (record["input"], record["output"]) == ({"score": None}, [None, 1.0])
    assert record["metadata"] == {"ratio": None, "weight": None}
    with sqlite3.connect(traced.path) as db:  # what the store's queries read: valid JSON
        assert db.execute("SELECT json_valid(record) FROM observations").fetchall() == [(1,)]
