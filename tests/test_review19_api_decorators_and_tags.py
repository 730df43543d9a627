"""Review 19 of the manual API: nested ``trace_attributes`` tags join the enclosing block's, a name
given in place of the function (``@traced_tool("search")``) names the observation, and the
decorators keep the decorated function's type for type checkers."""

from __future__ import annotations

import asyncio
import typing
from typing import Any

import autotrace
from autotrace.context import Scope
from tests.helpers import Traced, shape


def test_nested_trace_attributes_tags_join_the_enclosing_blocks_tags(traced: Traced) -> None:
    with autotrace.trace_attributes(user_id="u-1", tags=["beta", "v2"]), autotrace.start_agent("turn"):
        with autotrace.start_generation("answer", model="m"):
            with autotrace.trace_attributes(session_id="s-1", tags=["retry", "beta"], metadata={"k": "v"}):
                with autotrace.start_tool("lookup"):
                    pass
        with autotrace.start_span("after"):
            pass
    records = traced.records()
    assert shape(records) == [("agent", "turn", [("generation", "answer", [("tool", "lookup", [])]),
                                                 ("span", "after", [])])]
    assert [(r["name"], r["tags"], r["user_id"], r["session_id"], r["trace_metadata"]) for r in records] == [
        ("turn", ["beta", "v2"], "u-1", None, {}),
        # current when the inner block was entered: it keeps its tags and gains the block's new one
        ("answer", ["beta", "v2", "retry"], "u-1", "s-1", {"k": "v"}),
        ("lookup", ["beta", "v2", "retry"], "u-1", "s-1", {"k": "v"}),
        ("after", ["beta", "v2"], "u-1", None, {}),
    ]


def test_nested_trace_attributes_as_decorators_join_tags_per_call(traced: Traced) -> None:
    @autotrace.trace_attributes(tags=["inner"])
    def step() -> str:
        with autotrace.start_span("step"):
            return "done"

    with autotrace.trace_attributes(tags=["outer"]):
        assert step() == "done"
    assert step() == "done"  # outside the outer block: its own tags only
    assert [(r["name"], r["tags"]) for r in traced.records()] == [("step", ["outer", "inner"]), ("step", ["inner"])]


def test_a_string_in_place_of_the_function_is_the_observations_name(traced: Traced) -> None:
    @autotrace.traced_tool("search")
    def search(query: str) -> list[str]:
        return [query]

    @autotrace.observe("rank", as_type="chain")
    async def rank(hits: list[str]) -> int:
        return len(hits)

    @autotrace.observe("explicit", name="kept")  # ``name=`` wins
    def other() -> int:
        return 1

    @autotrace.observe(autotrace.ObservationType.GUARDRAIL)  # a type there is the type, not a name
    def check() -> bool:
        return True

    assert search("q") == ["q"]
    assert asyncio.run(rank(["a", "b"])) == 2
    assert other() == 1
    assert check() is True
    records = traced.records()
    assert shape(records) == [("tool", "search", []), ("chain", "rank", []), ("span", "kept", []),
                              ("guardrail", check.__qualname__, [])]
    assert [(r["input"], r["output"], r["level"]) for r in records] == [
        ({"query": "q"}, ["q"], "DEFAULT"), ({"hits": ["a", "b"]}, 2, "DEFAULT"), ({}, 1, "DEFAULT"),
        ({}, True, "DEFAULT")]


def _returns_its_argument(function: Any) -> bool:
    """Whether a type checker reads ``function(f)`` as giving ``f``'s own type back."""
    hints = typing.get_type_hints(function)
    first = next(iter(hints))
    return isinstance(hints[first], typing.TypeVar) and hints["return"] is hints[first]


def test_decorators_keep_the_decorated_functions_type_for_type_checkers() -> None:
    for decorator in (autotrace.observe, autotrace.traced_tool):
        direct, with_arguments = typing.get_overloads(decorator)
        assert _returns_its_argument(direct), decorator  # ``@traced_tool``: not ``F | Callable[[F], F]``
        parameters, result = typing.get_args(typing.get_type_hints(with_arguments)["return"])
        assert isinstance(result, typing.TypeVar) and parameters == [result], decorator  # ``Callable[[F], F]``


def test_scope_decorators_keep_the_decorated_functions_type_for_type_checkers() -> None:
    # ``@tenant(...)``, ``@trace_attributes(...)``, ``@content_capture(...)``: not ``Any``
    assert _returns_its_argument(Scope.__call__)


def test_an_observed_functions_input_is_its_arguments_as_called_not_as_it_left_them(traced: Traced) -> None:
    class Agent:
        @autotrace.observe(name="turn")
        def turn(self, messages: list[dict[str, str]], options: dict[str, int], *extra: str,
                 **settings: list[str]) -> str:
            messages.append({"role": "assistant", "content": "reply"})  # the classic chat loop
            options["retries"] += 1
            settings["stop"].append("END")
            return "reply"

    history = [{"role": "user", "content": "hi"}]
    assert Agent().turn(history, {"retries": 0}, "x", stop=["\n"]) == "reply"
    assert len(history) == 2  # the caller's list is the one the function changed, as undecorated
    assert traced.one()["input"] == {"messages": [{"role": "user", "content": "hi"}], "options": {"retries": 0},
                                     "extra": ["x"], "settings": {"stop": ["\n"]}}
