"""The query language: operators, precedence, missing fields, errors with positions, fuzzing."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotrace.query import QueryError, compile_query

OBS: dict[str, Any] = {
    "type": "generation", "name": "knowledge-search", "tenant": "acme", "level": "DEFAULT", "model": "gpt-4o",
    "usage": {"input": 2000, "output": 500, "total": 2500}, "doc_count": 0, "duration_ms": 1500.5,
    "metadata": {"user_id": "u-1", "score": "0.75"}, "prompt": {"name": "answer", "version": 3}, "error": False,
    "output": {"role": "assistant", "content": "Refund issued"},
}


@pytest.mark.parametrize(("text", "expected"), [
    ("type=generation and usage.total>2000", True),
    ("type=GENERATION", True),
    ("name=Knowledge-Search", False),
    ("usage.total>=2500 and usage.total<=2500", True),
    ("usage.total > 2500", False),
    ("doc_count<1", True),
    ("model == \"gpt-4o\" and duration_ms >= 1500.5", True),
    ("name~SEARCH and not (tenant=acme)", False),
    ("name~search and not tenant=other", True),
    ("output~refund", True),
    ("output!~refund", False),
    ("level=error or error=true", False),
    ("error=false", True),
    ("metadata.score>0.5", True),
    ("prompt.version=3 and prompt.name=answer", True),
    ("missing.field=1", False),
    ("missing.field!=1", True),
    ("has prompt.version", True),
    ("has prompt.label", False),
    ("not has metadata.user_id", False),
    ("type=retriever or type=generation and tenant=acme", True),
    ("(type=retriever or type=generation) and tenant=other", False),
    ("tenant='acme'", True),
    ("name='knowledge\\-search'", True),
    ("usage.total=2500", True),
    ("model=null", False),
    ("model!=null", True),
    ("prompt.label=null", True),  # a missing field equals null
    ("prompt.label!=null", False),
    ("not prompt.label=null", False),
])
def test_matches(text: str, expected: bool) -> None:
    assert compile_query(text).matches(OBS) is expected


TEXTS: dict[str, Any] = {
    "name": "error-404", "id": "1234e56789012345", "prompt": {"version": "1.1"}, "usage": {"total": 2500},
    "input": [{"role": "user", "content": "Grüße aus café 日本"}], "metadata": {"build": "0042", "ratio": "0.5"},
    "cost": {"total": 0.25}, "big": 12345678901234567891,
}


@pytest.mark.parametrize(("text", "expected"), [
    ("name~404", True),  # the value as typed, not "404.0"
    ("name!~404", False),
    ("name~-404", True),
    ("input~café", True),  # structured fields keep non-ASCII text
    ("input~日本", True),
    ("input~GRÜSSE", True),
    ("usage~2500", True),
    ("id=1234e56789012345", True),  # a text field equals the text, not a number
    ("id=9999e99999999999", False),  # both would be infinity as numbers
    ("id!=9999e99999999999", True),
    ("prompt.version=1.10", False),
    ("prompt.version=1.1", True),
    ("metadata.build=42", False),
    ("metadata.build=0042", True),
    ("metadata.ratio<1", True),  # ordering reads a text field that holds a finite number
    ("usage.total=2.5e3", True),
    ("usage.total>1e309", False),  # not a finite number: no numeric comparison
    ("usage.total<1e309", False),
    ("usage.total='2500'", True),
    ("cost.total=0.25", True),
    ("cost.total=.25", True),  # a number without a leading or trailing digit is still a number
    ("cost.total<.3", True),
    ("cost.total>-.5", True),
    ("metadata.ratio<.6", True),
    ("usage.total>=2500.", True),
    ("usage.total=25e2", True),
    ("big=12345678901234567891", True),  # integers compare exactly
    ("big=12345678901234567890", False),
])
def test_values_compare_as_typed(text: str, expected: bool) -> None:
    assert compile_query(text).matches(TEXTS) is expected


@pytest.mark.parametrize(("text", "message", "column"), [
    ("", "empty query", 1),
    ("   ", "empty query", 1),
    ("type", "unexpected end of query", 5),
    ("type generation", "expected an operator after 'type'", 6),
    ("type=", "unexpected end of query", 6),
    ("type=(", "expected a value", 6),
    ("(type=x", "missing ')'", 8),
    ("type=x)", "unexpected ')'", 7),
    ("name='open", "unterminated string", 6),
    ("type=x and", "unexpected end of query", 11),
    ("and type=x", "expected a field name", 1),
    ("type=x $", "unexpected character '$'", 8),
    ("(" * 70 + "type=x" + ")" * 70, "nesting deeper than 64", None),
    ("type=" + "x" * 4001, "longer than 4000", None),
])
def test_errors_point_at_the_problem(text: str, message: str, column: int | None) -> None:
    with pytest.raises(QueryError) as raised:
        compile_query(text)
    assert message in str(raised.value)
    if column is not None:
        assert raised.value.position == column - 1


_TOKENS = st.sampled_from(["type", "=", "!=", "<", ">=", "~", "and", "or", "not", "(", ")", "has", "usage.total",
                           "1", "-2.5", "'x'", '"y"', "generation", "true", "null", "\\", "'", "$"])
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                     lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children,
                                                                                        max_size=3), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_compiles_or_raises_query_error(text: str) -> None:
    try:
        compile_query(text)
    except QueryError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=12).map(" ".join), st.dictionaries(st.sampled_from(["type", "usage", "x"]), _JSON))
def test_token_soups_and_arbitrary_observations_never_raise(text: str, obs: dict[str, Any]) -> None:
    try:
        query = compile_query(text)
    except QueryError:
        return
    assert query.matches(obs) in (True, False)


@pytest.mark.parametrize(("text", "obs", "expected"), [
    ("not has a.²", {"a": [1]}, True),  # '²' is a digit to isdigit() but no index: int() raised, hidden as False
    ("a.²=null", {"a": [1]}, True),
    ("a.\u0661=1", {"a": [0, 1]}, True),  # a decimal digit of another script is an index, as int() reads it
    ("model!~null", {}, True),  # a missing field contains nothing, not even "null": !~ is the negation of ~
    ("model~null", {}, False),
    ("x=\"a\\\nb\"", {"x": "a\nb"}, True),  # a backslash before a newline escaped it, not "unterminated string"
])
def test_fuzzed_cases(text: str, obs: dict[str, Any], expected: bool) -> None:
    assert compile_query(text).matches(obs) is expected


_SOUP = ["x", "a.0", "a.1", "a.²", "a.x", "m.k", "type", "missing", "=", "!=", "<", ">=", "~", "!~", "and", "or",
         "not", "(", ")", "has", "1", "-2.5", ".5", "1e400", "'a b'", '"q\\"', "null", "true", "abc", "\u0661\u0662", "²"]
_VALUES: list[Any] = [None, True, 0, 1, -0.5, 2500, 1e309, float("nan"), 10**20, "1", "0.5", "abc", "", "null",
                      "1_000", "²", "\u0661", [1, "x", None], {"k": "0.5", "0": 1}, [[]]]


def test_random_queries_never_raise_while_evaluated() -> None:
    """Fixed-seed fuzz of the predicate itself (``matches`` hides an exception as a non-match), and
    each operator against its negation on every value, a missing one included."""
    rng = random.Random(6)
    for _ in range(1500):
        obs = {key: rng.choice(_VALUES) for key in ("x", "a", "m", "type") if rng.random() < 0.8}
        try:
            query = compile_query(" ".join(rng.choice(_SOUP) for _ in range(rng.randint(1, 9))))
        except QueryError:
            continue
        assert query._predicate(obs) in (True, False)
    for obs in ({}, *({"x": value} for value in _VALUES)):
        for value in ("null", "1", "abc", "'1'", "true"):
            for op, negation in (("=", "!="), ("~", "!~")):
                assert compile_query(f"x{op}{value}").matches(obs) is not compile_query(f"x{negation}{value}").matches(obs)
