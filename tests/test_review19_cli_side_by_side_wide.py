"""Review 19: ``autotrace replay``'s side-by-side padded and cut the original's column by characters, not
terminal columns: a tree whose names are Japanese or Chinese (two columns a character) pushed the replay's
column out of line on those rows, and a line cut to fit could still be wider than the column. Real spans
recorded into a real local store."""

from __future__ import annotations

from typing import Any

import autotrace
from autotrace.render import columns, render_tree
from autotrace.replay import side_by_side
from tests.helpers import Traced


def _trees(traced: Traced) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with autotrace.start_chain("日本語の質問"), autotrace.start_tool("検索ツール"):
        pass
    with autotrace.start_chain("turn"), autotrace.start_tool("lookup"):
        pass
    records = traced.records()
    first, second = records[0]["trace_id"], records[-1]["trace_id"]
    return traced.trace(first), traced.trace(second)


def _left_columns(rows: list[str], right: list[str]) -> list[int]:
    """The terminal columns before each row's replay line (``right``), its header ``REPLAY`` included."""
    assert [row.endswith(line) for row, line in zip(rows, ["REPLAY", *right], strict=True)] == [True] * len(rows)
    return [columns(row[:len(row) - len(line)]) for row, line in zip(rows, ["REPLAY", *right], strict=True)]


def test_the_replay_column_stays_in_line_beside_wide_characters(traced: Traced) -> None:
    original, replayed = _trees(traced)
    left, right = render_tree(original, io=False).splitlines(), render_tree(replayed, io=False).splitlines()
    assert "日本語の質問" in left[1] and "検索ツール" in left[2]
    width = max(map(columns, left))
    assert width == max(len(left[0]), len(left[1]) + 6, len(left[2]) + 5)  # each wide character: one more
    rows = side_by_side(original, replayed).splitlines()
    assert _left_columns(rows, right) == [width + 2] * 4
    assert rows[2] == left[1] + " " * (width - columns(left[1])) + "  " + right[1]


def test_a_line_cut_to_the_column_is_no_wider_than_it(traced: Traced) -> None:
    original, replayed = _trees(traced)
    right = render_tree(replayed, io=False).splitlines()
    rows = side_by_side(original, replayed, width=16).splitlines()
    assert _left_columns(rows, right) == [18] * 4
    assert rows[2].startswith("└─ [CHAIN] 日本…  ") and rows[3].startswith("   └─ [TOOL] 検…  ")
