"""Replay review 3: a replay started inside a span (an evaluation harness's observation, a web
request's span of another instrumentation) is a trace of its own, matched from its root; the real
OpenAI SDK against the loopback fake server."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import openai
import pytest
from opentelemetry import trace

import autotrace
from autotrace.replay import parse_overrides, replay
from tests import replay_app
from tests.helpers import Traced, shape
from tests.test_replay import TREE, _record
from tests.test_replay import fake as fake  # the fake server answering as replay_app's brain

pytestmark = pytest.mark.integrations("openai")


def _harness() -> AbstractContextManager[Any]:
    return autotrace.start_span("harness")


def _request() -> AbstractContextManager[Any]:
    return trace.get_tracer("web.framework").start_as_current_span("POST /replay")


@pytest.mark.parametrize(("outer", "name"), [(_harness, "harness"), (_request, "POST /replay")],
                         ids=["in-an-observation", "in-another-libraries-span"])
def test_a_replay_started_inside_a_span_is_a_trace_of_its_own(
        outer: Callable[[], AbstractContextManager[Any]], name: str, traced: Traced, fake: Any) -> None:
    """The replay's first call was matched under the enclosing span, which the recording does not
    have: "replay mismatch: call #1 under the root is span 'harness'"; nested, its calls would also
    have joined the enclosing trace instead of a new one."""
    client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    original = _record(client, traced)
    target = next(r for r in original if r["name"] == "answer-step")
    replay_app.CALLS.clear()
    sent_before = len(fake.requests)
    with outer():
        result = replay(original, target["id"], replay_app.pipeline, client, "where is my order?",
                        overrides=parse_overrides(["model=gpt-4o"]))
        enclosing = format(trace.get_current_span().get_span_context().trace_id, "032x")
    assert (result.reached, result.result) == (True, "[gpt-4o t=0.2] Your order ships today.")
    assert replay_app.CALLS == {}  # the search and the tool gave their recorded outputs
    assert [request["body"]["model"] for request in fake.requests[sent_before:]] == ["gpt-4o"]
    assert result.trace_id not in (enclosing, original[0]["trace_id"])
    replayed = traced.trace(result.trace_id)
    assert shape(replayed) == TREE
    assert {r["replay_of"] for r in replayed if r["type"] != "evaluator"} == {original[0]["trace_id"]}
    assert [r["name"] for r in traced.trace(enclosing)] == [name]  # the enclosing span alone


@pytest.mark.parametrize("setting", ["temperature=NaN", "temperature=-Infinity", "max_tokens=1e999",
                                     "logit_bias={\"50256\": NaN}"])
def test_a_setting_that_is_not_a_finite_number_is_refused(setting: str) -> None:
    """Python's JSON reader takes NaN, Infinity and 1e999: the override reached the replayed call, which
    the SDK failed inside the user's program ("Out of range float values are not JSON compliant")."""
    with pytest.raises(ValueError, match="not a finite number"):
        parse_overrides([setting])
    assert parse_overrides(["temperature=0.5", "max_tokens=1e3"]) == {
        "model_parameters": {"temperature": 0.5, "max_tokens": 1000.0}}
