"""Fuzzing review 15: the query language, by what a parse must keep.

Properties: a query built as a tree and rendered as text (any spacing, keyword case, redundant
parentheses) compiles to the same query: the fields it reads, and on any observation the match
the tree's own ``not``/``and``/``or`` of its comparisons gives; a value printed as ``show``
prints it and quoted matches exactly that value; through ``autotrace query`` any text is a
listing (exit 0) or one error line with its column (exit 2), never a traceback."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from autotrace import cli
from autotrace.export.local_store import LocalStore
from autotrace.query import compile_query
from autotrace.render import clean

_FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_FIELDS = ["type", "name", "level", "usage.total", "metadata.k8s.pod", "has", "not", "or", "AND", "x"]
_VALUES = ["generation", "GEN", "ERROR", "1", "-2.5", "2e3", "true", "null", "'a b'", '"q\\"x"', "k8s.pod", "ab"]


@dataclass(frozen=True)
class _Leaf:
    text: str


@dataclass(frozen=True)
class _Node:
    op: str  # "and", "or", "not"
    parts: tuple[Any, ...]


_LEAF = st.one_of(
    st.builds(lambda f, op, v: _Leaf(f"{f}{op}{v}"), st.sampled_from(_FIELDS),
              st.sampled_from(["=", "==", "!=", "<", "<=", ">", ">=", "~", "!~"]), st.sampled_from(_VALUES)),
    st.builds(lambda f: _Leaf(f"has {f}"), st.sampled_from(["usage.total", "metadata", "x"])),
)
_TREE = st.recursive(_LEAF, lambda inner: st.one_of(
    st.builds(lambda p: _Node("not", (p,)), inner),
    st.builds(lambda op, ps: _Node(op, tuple(ps)), st.sampled_from(["and", "or"]), st.lists(inner, min_size=2,
                                                                                           max_size=3))),
    max_leaves=10)
_OBS = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["generation", "tool", "GENERATION"]), "name": st.sampled_from(["a b", 'q"x', "ab"]),
    "level": st.sampled_from(["ERROR", "default"]), "has": st.sampled_from([1, "1", None]),
    "usage": st.fixed_dictionaries({}, optional={"total": st.sampled_from([1, 2000, "2e3", -3])}),
    "metadata": st.dictionaries(st.sampled_from(["k8s.pod", "k8s"]), st.sampled_from(["ab", {"pod": "ab"}])),
    "x": st.sampled_from([True, "true", 1.0, [1], "null"]), "not": st.just("generation"), "or": st.just(-2.5),
    "AND": st.just("ab")})


def _render(tree: Any, draw: st.DataObject) -> str:
    """``tree`` as query text, parenthesised where precedence needs it and, at random, where not."""
    space = draw.draw(st.sampled_from([" ", "  ", "\t", "\n "]))
    if isinstance(tree, _Leaf):
        text = tree.text
    elif tree.op == "not":
        inner = _render(tree.parts[0], draw)
        if isinstance(tree.parts[0], _Node) and tree.parts[0].op != "not":
            inner = f"({inner})"
        text = f"{draw.draw(st.sampled_from(['not', 'NOT', 'Not']))}{space}{inner}"
    else:
        word = draw.draw(st.sampled_from([tree.op, tree.op.upper()]))
        text = f"{space}{word}{space}".join(f"({_render(p, draw)})" if isinstance(p, _Node) and p.op != "not"
                                            else _render(p, draw) for p in tree.parts)
    return f"({space}{text}{space})" if draw.draw(st.booleans()) else text


def _evaluate(tree: Any, obs: dict[str, Any]) -> bool:
    if isinstance(tree, _Leaf):
        return compile_query(tree.text).matches(obs)
    found = [_evaluate(p, obs) for p in tree.parts]
    return not found[0] if tree.op == "not" else all(found) if tree.op == "and" else any(found)


def _leaves(tree: Any) -> list[str]:
    return [tree.text] if isinstance(tree, _Leaf) else [leaf for p in tree.parts for leaf in _leaves(p)]


@_FAST
@given(_TREE, st.data(), st.lists(_OBS, min_size=1, max_size=4))
def test_a_rendered_query_parses_as_the_same_query(tree: Any, data: st.DataObject, observations: list[dict]) -> None:
    query = compile_query(_render(tree, data))
    assert query.fields == tuple(f for leaf in _leaves(tree) for f in compile_query(leaf).fields)
    for obs in observations:
        assert query.matches(obs) == _evaluate(tree, obs)


def _quoted(value: str) -> str:
    """``value`` quoted as a user types it from ``show``'s output: ``\\`` and ``"`` escaped, then
    control and invisible characters as ``show`` prints them (``render.clean``)."""
    return '"' + clean(value.replace("\\", "\\\\").replace('"', '\\"')) + '"'


@_FAST
@given(st.text(max_size=30))
@example("step\x1b\u200b\u202e\n\t\r\\x1b\\\"'")
def test_a_value_as_show_prints_it_matches_exactly_that_value(value: str) -> None:
    query = compile_query(f"name={_quoted(value)}")
    assert query.matches({"name": value})
    assert not query.matches({"name": value + "x"})
    assert compile_query(f"name~{_quoted(value)}").matches({"name": f"<{value}>"})


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    now = time.time_ns()
    path = tmp_path_factory.mktemp("q") / "t.db"
    store = LocalStore(path)
    store.write([{"trace_id": "ab" * 16, "id": f"{i:016x}", "parent_id": None, "name": name, "type": kind,
                  "tenant": "acme", "start_ns": now + i, "end_ns": now + i + 1, "level": "DEFAULT", "model": "m",
                  "usage": {"total": 10 * i}, "cost": None, "duration_ms": 1.0}
                 for i, (name, kind) in enumerate([("answer", "generation"), ("look\x1bup", "tool")], 1)])
    store.close()
    return str(path)


@_FAST
@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(
    ["(", ")", "and", "or", "not", "has", "name", "=", "~", "<", '"', "'", "\\", "\\x1", "1e", "usage.total", " ",
     "\x00", "\u202e", "é"]), max_size=12).map("".join)), st.booleans())
@example('name="look\\x1bup"', False)
@example('name="\\u12"', True)
def test_any_text_lists_or_is_one_error_line_with_its_column(db: str, capsys: pytest.CaptureFixture[str],
                                                              text: str, as_json: bool) -> None:
    code = cli.main(["--db", db, "query", *(["--json"] if as_json else []), "--", text])  # "--": text may start with -
    captured = capsys.readouterr()
    assert code in (0, 2)
    if code == 2:
        (line,) = captured.err.splitlines()
        assert line.startswith("autotrace: ") and line.endswith(")") and " (at column " in line
        assert line.isprintable()
        if as_json:
            error = json.loads(captured.out)["error"]
            assert error["kind"] == "query" and f"autotrace: {error['message']}" == line
    elif as_json:
        assert isinstance(json.loads(captured.out), list)
    assert "Traceback" not in captured.err


def test_the_stored_control_character_is_found_as_show_prints_it(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--db", db, "query", "--json", f"name={_quoted('look' + chr(27) + 'up')}"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["look\x1bup"]


def test_a_rendered_query_example(tmp_path: Path) -> None:
    """The precedence a rendering relies on: ``not`` binds tighter than ``and``, ``and`` than ``or``."""
    query = compile_query("NOT type=tool AND name~a OR\n level=ERROR")
    assert query.matches({"type": "generation", "name": "ab"}) and query.matches({"type": "tool", "level": "error"})
    assert not query.matches({"type": "tool", "name": "ab"})
