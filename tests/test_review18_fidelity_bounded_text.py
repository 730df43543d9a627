"""Review 18 (fidelity): a value that cannot be serialised (a cycle, a failing model dump) is recorded
as its text, and that text was the repr of the WHOLE value, built on the caller's thread only to be
cut at the value size limit: seconds for a large value (one holding 100,000 numpy arrays took ~10 s
here). Now it is written only as far as it is recorded: the same text, or the same head."""

from __future__ import annotations

import json
from collections import OrderedDict, namedtuple
from typing import Any

import autotrace
from autotrace import bounds
from autotrace._serialize import as_text
from autotrace.runtime import state
from tests.helpers import Traced


class Counted:
    reprs = 0

    def __repr__(self) -> str:
        Counted.reprs += 1
        return f"Counted({'x' * 30})"


class Failing:
    def __repr__(self) -> str:
        raise ValueError("no repr")


def _cycle() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


def test_the_text_of_a_value_that_fits_is_its_whole_str() -> None:
    own: dict[Any, Any] = {"k": 1}
    own["me"] = own
    inner: list[Any] = [1]
    outer = (inner, "t")
    inner.append(outer)
    point = namedtuple("point", "x y")
    values = [[], {}, (), set(), frozenset(), (1,), {1}, frozenset({"a"}), _cycle(), own, outer, inner,
              [1, "it's", 'say "hi"', "é\n", b"b", None, True, 2.5, {(1, 2): frozenset({3})}],
              [Counted(), OrderedDict(a=[1]), point(1, [2]), [[[]]], {"a": [{"b": ()}]}], 7, None, Counted()]
    assert [as_text(value) for value in values] == [str(value) for value in values]
    for value in values:  # with a limit: the same text, or its head past the limit
        head, whole = as_text(value, 5), str(value)
        assert head == whole or (whole.startswith(head) and len(head) > 5), (head, whole)
    broken = [1, Failing()]
    assert as_text(broken) == object.__repr__(broken)  # as ``str`` raising: the default repr


def test_a_large_value_that_cannot_be_serialised_is_written_only_as_far_as_it_is_recorded(traced: Traced) -> None:
    value = {"run": {"steps": {"all": [_cycle(), *(Counted() for _ in range(100_000))]}}}
    limit = state.max_value_bytes
    expected = bounds.truncate(bounds.hold(json.dumps(str(value), ensure_ascii=False), limit), limit)
    Counted.reprs = 0
    with autotrace.start_span("s", metadata={"state": value}) as span:
        span.set_output(value)
    written = Counted.reprs
    record = traced.one()
    assert (record["output"], record["metadata"]["state"]) == (expected, expected)
    assert expected.startswith("\"{'run': {'steps': {'all': [[[...]], Counted(xxx")
    each = len(repr(Counted()))
    assert written <= 2 * ((limit + bounds.REDACTION_MARGIN) // each + 2)  # not 2 * 100,000
