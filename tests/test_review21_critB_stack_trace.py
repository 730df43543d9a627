"""Review 21 critique of the stack trace's innermost frames: for an exception group (written in a
box, under its own header) the line saying how many outer frames are left out was put in the
traceback of the exception it was raised while handling (which lost none), or nowhere."""

from __future__ import annotations

from typing import Any

import pytest

import autotrace
from autotrace.spans import MAX_TRACEBACK_FRAMES
from tests.helpers import Traced

DEPTH = 40  # two frames a level (``level`` and its wrapper): past the limit at the outer levels


def _nested(depth: int) -> Any:
    @autotrace.observe(name="level")
    def level(n: int) -> None:
        if n == 0:
            try:
                {}["missing"]
            except KeyError:  # the group is raised while handling it: its context, written first
                raise ExceptionGroup("bottom", [ValueError("one"), TypeError("two")])  # noqa: B904
        level(n - 1)

    return level(depth)


def test_an_exception_group_says_in_its_own_box_how_many_frames_are_left_out(traced: Traced) -> None:
    with pytest.raises(ExceptionGroup, match="bottom"):
        _nested(DEPTH)
    records = sorted(traced.records(), key=lambda r: r["input"]["n"])
    traces = [r["events"][0]["attributes"]["exception.stacktrace"] for r in records]
    assert len(traces) == DEPTH + 1
    for n, text in enumerate(traces):
        context, _, own = text.partition("\nDuring handling of the above exception, another exception occurred:\n")
        assert context.startswith("Traceback (most recent call last):\n") and context.endswith("KeyError: 'missing'\n")
        assert "left out" not in context  # (its own 1 frame)
        assert own.startswith("\n  + Exception Group Traceback (most recent call last):\n")
        assert own.count('  |   File "') == min(2 * n + 2, MAX_TRACEBACK_FRAMES)
        left_out = 2 * n + 2 - MAX_TRACEBACK_FRAMES
        note = f"  + Exception Group Traceback (most recent call last):\n  |   [{left_out} outer frames left out]\n"
        assert (note in own) is (left_out > 0), n
        assert "  | ExceptionGroup: bottom (2 sub-exceptions)\n" in own and "    | TypeError: two\n" in own
