"""The query language: one numeric grammar for typed values and stored text, keywords
usable as field names, and a fuzz of the parser and evaluator."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from autotrace.query import QueryError, compile_query

# Written out here, not imported, so the tests check the grammar the docs state.
_GRAMMAR = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_IS_NUMBER = "x>=0 or x<0"  # true exactly when ``x`` reads as a finite number


def _finite_number(text: str) -> bool:
    return _GRAMMAR.fullmatch(text) is not None and math.isfinite(float(text))


def test_ordering_reads_stored_text_by_the_grammar() -> None:
    query = compile_query(_IS_NUMBER)
    not_numbers = ["1_000", " 5 ", "5 ", "\t5", "\u0663", "\uff15", "\u00b2", "nan", "NaN", "-nan", "inf", "+inf",
                   "Infinity", "1e309", "-1e309", "0x10", "1__0", "", "-", ".", "e3", "1e", "1.2.3", "--1"]
    numbers = ["0", "-0", "+5", "5.", ".5", "-.5e1", "1e3", "1E-3", "2.5e+3", "0042", "9" * 300]
    assert [s for s in not_numbers if query.matches({"x": s})] == []
    assert [s for s in numbers if not query.matches({"x": s})] == []
    assert compile_query("x<2000").matches({"x": "1_000"}) is False
    assert compile_query("x>4").matches({"x": " 5 "}) is False
    assert compile_query("x>2").matches({"x": "\u0663"}) is False  # Arabic-Indic three
    assert compile_query("x>999").matches({"x": "1e3"}) is True
    assert compile_query("x<=-5").matches({"x": "-.5e1"}) is True
    for op in ("<", "<=", ">", ">="):  # nan, stored as a number or as text, orders against nothing
        for stored in (float("nan"), "nan", float("inf"), "inf"):
            assert compile_query(f"x{op}0").matches({"x": stored}) is False


@pytest.mark.parametrize(("text", "obs", "expected"), [
    ("x=\u0663", {"x": 3}, False),  # another script's digit is a word, compared as text
    ("x=\u0663", {"x": "\u0663"}, True),
    ("x<\u0664", {"x": 3}, False),
    ("x>\u0662", {"x": "\u0663"}, True),  # text against text, in code point order
    ("x>+4", {"x": 5}, True),  # an explicit plus sign, as a stored "+5" reads
    ("x=+5", {"x": 5}, True),
    ("x>=+.5e1", {"x": "5"}, True),
    ("x=+5", {"x": "+5"}, True),  # a text field equals the value as typed
    ("x=+5", {"x": "5"}, False),
])
def test_typed_values_use_the_same_grammar(text: str, obs: dict[str, Any], expected: bool) -> None:
    assert compile_query(text).matches(obs) is expected


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=12), st.from_regex(_GRAMMAR, fullmatch=True),
                 st.sampled_from(["1_000", " 5", "\u0663", "nan", "inf", "1e400", "+5", "-.5"])))
@example("1_000")
@example(" 5 ")
@example("\u0663")
def test_stored_text_is_a_number_exactly_by_the_grammar(text: str) -> None:
    assert compile_query(_IS_NUMBER).matches({"x": text}) is _finite_number(text)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(_GRAMMAR, fullmatch=True))
@example("+5")
def test_a_typed_number_orders_as_the_same_stored_text(text: str) -> None:
    """The literal and a stored text with its characters read alike: equal to each other, or both
    not finite numbers."""
    query = compile_query(f"x>={text} and x<={text}")
    assert query.matches({"x": text}) is _finite_number(text)
    if _finite_number(text):
        exact = float(text) if any(c in text for c in ".eE") else int(text)  # integers compare exactly
        assert query.matches({"x": exact}) is True


KEYWORDS: dict[str, Any] = {"has": 1, "not": 2, "and": 3, "or": "x", "x": 0, "HAS": "y"}


@pytest.mark.parametrize(("text", "expected"), [
    ("has=1", True),  # a keyword followed by an operator is a field name
    ("has ~ 1", True),
    ("has!=1", False),
    ("has>0 and has<2", True),
    ("not has=1", False),
    ("not has=2", True),
    ("has has", True),  # the 'has' test on a field named has
    ("has not", True),
    ("not=2", True),
    ("not not=2", False),
    ("not not not=2", True),
    ("and=3 and or=x", True),
    ("(or~X)", True),
    ("x=1 or not=2", True),
    ("HAS=y", True),  # field names stay case-sensitive
    ("has x", True),  # the existing meanings hold
    ("has missing", False),
    ("not has x", False),
    ("x=0 and not has missing", True),
])
def test_keywords_can_be_field_names(text: str, expected: bool) -> None:
    assert compile_query(text).matches(KEYWORDS) is expected


@pytest.mark.parametrize(("text", "message", "column"), [
    ("x=1 and=1", "expected a field name, found '='", 8),  # after a field comparison 'and' joins
    ("has", "unexpected end of query", 4),
    ("has (", "'has' needs a field name", 5),
    ("not", "unexpected end of query", 4),
    ("has=", "unexpected end of query", 5),
    ("x>+", "unexpected character '+'", 3),
])
def test_keyword_and_sign_errors(text: str, message: str, column: int) -> None:
    with pytest.raises(QueryError) as raised:
        compile_query(text)
    assert message in str(raised.value)
    assert raised.value.position == column - 1


_SOUP = st.sampled_from(["x", "x.0", "x.a", "x.\u0663", "has", "not", "and", "or", "HAS", "=", "==", "!=", "<", "<=",
                         ">", ">=", "~", "!~", "(", ")", "1", "-1", "+1", ".5", "1e3", "1e309", "1.", "\u0663",
                         "\u00b2", "nan", "inf", "'a'", '"b"', "'", "\\", "null", "true", "1_0", "+", "$", "\n"])
_STORED = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=6)
    | st.sampled_from(["nan", "inf", "1_000", " 5 ", "\u0663", "1e3", "+5", "9" * 5000]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["0", "a", "\u0663"]), children,
                                                                      max_size=3), max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(st.lists(_SOUP, max_size=14), st.booleans(), st.dictionaries(st.sampled_from(["x", "has", "not", "or"]),
                                                                     _STORED))
def test_fuzzed_queries_compile_or_raise_query_error_and_evaluate_to_a_bool(
        tokens: list[str], spaced: bool, obs: dict[str, Any]) -> None:
    """The predicate itself, not ``matches`` (which would hide an exception as a non-match)."""
    try:
        query = compile_query((" " if spaced else "").join(tokens))
    except QueryError:
        return
    assert query._predicate(obs) in (True, False)
