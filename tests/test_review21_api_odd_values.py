"""Review 21 of the manual API: a mock given to or returned by observed code is recorded as its
text without calling it (its ``model_dump`` would be made up, recorded in its calls, and give
another mock, down to the recursion limit), a field whose ``str()`` raises keeps the observation
(its type, input and output), and an exception leaving many nested observations is written
with its innermost frames only (each level formatting the whole traceback was quadratic)."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

import autotrace
from autotrace.spans import MAX_TRACEBACK_FRAMES
from tests.helpers import Traced, shape


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_a_mock_is_recorded_as_its_repr_and_never_called(traced: Traced) -> None:
    client, reply = mock.MagicMock(name="client"), mock.Mock(name="reply")

    @autotrace.observe
    def ask(llm: Any) -> Any:
        return reply

    assert ask(client) is reply
    record = traced.one()
    # (the id compared apart: redaction may read some ids as card numbers)
    assert record["input"]["llm"].startswith("<MagicMock name='client' id='")
    assert record["output"].startswith("<Mock name='reply' id='")
    assert (client.mock_calls, reply.mock_calls) == ([], [])  # (a made-up ``model_dump`` was called)
    assert autotrace.stats().get("serialization_fallbacks", 0) == 0


def test_a_field_whose_text_raises_keeps_the_observation(traced: Traced) -> None:
    model, tool = _Unprintable(), _Unprintable()
    with autotrace.start_generation("answer", model=model, input="hi") as gen:
        gen.set_output("hello")
    with autotrace.start_tool("lookup", tool_name=tool, arguments={"q": 1}, version=model) as call:
        call.set_output([1])
    records = traced.records()
    assert shape(records) == [("generation", "answer", []), ("tool", "lookup", [])]
    assert [(r["input"], r["output"], r["model"]) for r in records] == [
        ("hi", "hello", object.__repr__(model)), ({"q": 1}, [1], None)]
    assert "internal_errors.finish" not in autotrace.stats()


def _nested(depth: int) -> Any:
    @autotrace.observe(name="level")
    def level(n: int) -> None:
        if n == 0:
            raise ValueError("bottom")
        level(n - 1)

    return level(depth)


def test_an_exception_leaving_deep_nesting_shows_its_innermost_frames(traced: Traced) -> None:
    with pytest.raises(ValueError, match="bottom"):
        _nested(40)  # two frames a level (``level`` and its wrapper)
    records = sorted(traced.records(), key=lambda r: r["input"]["n"])
    traces = [r["events"][0]["attributes"]["exception.stacktrace"] for r in records]
    assert [r["level"] for r in records] == ["ERROR"] * 41
    frames = [t.count('  File "') for t in traces]
    # each level's traceback runs from its wrapper down to the raise: 2 frames a level, within the limit
    assert frames == [min(2 * n + 2, MAX_TRACEBACK_FRAMES) for n in range(41)]
    cut = [n for n in range(41) if 2 * n + 2 > MAX_TRACEBACK_FRAMES]
    assert cut and all(f"  [{2 * n + 2 - MAX_TRACEBACK_FRAMES} outer frames left out]\n" in traces[n] for n in cut)
    assert all(t.startswith("Traceback (most recent call last):\n") and t.endswith("ValueError: bottom\n")
               and 'raise ValueError("bottom")' in t for t in traces)
    assert not any("left out" in traces[n] for n in range(41) if n not in cut)
