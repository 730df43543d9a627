"""An evaluator's observation of another tenant's work is started in that tenant's scope
(``scores.start_evaluation``); a failure of autotrace's after it started (noting what it evaluates)
must not lose it: before, ``begin`` never got the started observation back, so the evaluator's span
was never ended (missing from the trace, left open) while the call ran on untraced."""

from __future__ import annotations

import weakref
from typing import Any

import pytest

import autotrace
from autotrace import scores
from tests.helpers import Traced


class _Refusing(weakref.WeakKeyDictionary):  # type: ignore[type-arg]
    def __setitem__(self, key: Any, value: Any) -> None:
        raise RuntimeError("internal")


def _answer() -> autotrace.Observation:
    with autotrace.tenant("acme"), autotrace.start_generation("answer", model="m") as answer:
        answer.set_output("the refund is on its way")
    return answer


def test_an_evaluator_whose_noting_fails_is_still_ended_with_its_call(
        traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = _answer()
    monkeypatch.setattr(scores, "_EVALUATED", _Refusing())

    @autotrace.observe(as_type="evaluator", name="judge")
    def judge(evaluated: autotrace.Observation) -> str:
        return f"judged in {autotrace.current_tenant()}"

    with autotrace.tenant("globex"):
        assert judge(answer) == "judged in globex"  # not noted: the body runs in the caller's scope
        assert autotrace.current_tenant() == "globex"
    records = traced.records()
    assert [(r["name"], r["tenant"], r["type"], r["end_ns"] is not None) for r in records] == [
        ("answer", "acme", "generation", True), ("judge", "acme", "evaluator", True)]
    assert records[1]["metadata"]["evaluates"] == answer.id
    assert records[1]["output"] == "judged in globex"
    assert autotrace.stats()["internal_errors.observe.begin"] == 1


def test_an_evaluator_whose_scope_fails_runs_its_body_unchanged(
        traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    from autotrace import decorators

    def failing(owner: str | None) -> None:
        raise RuntimeError("internal")

    answer = _answer()
    monkeypatch.setattr(decorators, "evaluation_scope", failing)

    @autotrace.observe(as_type="evaluator", name="judge")
    def judge(evaluated: autotrace.Observation) -> str:
        raise KeyError("the user's")

    with autotrace.tenant("globex"), pytest.raises(KeyError, match="the user's"):
        judge(answer)
    assert autotrace.current_tenant() is None
    records = traced.records()
    assert [(r["name"], r["tenant"], r["level"]) for r in records] == [
        ("answer", "acme", "DEFAULT"), ("judge", "acme", "ERROR")]
    assert autotrace.stats()["internal_errors.observe.begin"] == 1
