"""Review 21 (real langchain-core, langchain-openai over the loopback server): a sync chat model
``generate`` of many prompts that raises. LangChain starts every prompt's run first, stops at the
prompt that raises (or whose handler raises) and ends no other run: they stayed open, in the
handler's maps, and the last one started stayed current in the caller's context after the call
(what the caller did next nested in it). They end as interrupted now, with a reply generated, and
the caller's context is the one it called in."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage
from langchain_core.prompt_values import StringPromptValue
from langchain_core.runnables import RunnableLambda
from langchain_openai import ChatOpenAI
from openai import BadRequestError
from opentelemetry import context as otel_context
from opentelemetry import trace

import autotrace
from autotrace.integrations.langchain_runs import BATCH_RAISED
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain")

_RAISED = BATCH_RAISED.format("ValueError: boom")


class _Boom(FakeListChatModel):
    """Answers "ok", except to the prompt "bad" (ValueError) or "stop" (KeyboardInterrupt)."""

    def _call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        text = messages[0].content
        if text == "bad":
            raise ValueError("boom")
        if text == "stop":
            raise KeyboardInterrupt
        return "ok"


class _Raising(BaseCallbackHandler):
    """Raises (``raise_error``) from its ``nth`` ``event`` ("start" or "end") of a model run."""

    raise_error = True

    def __init__(self, event: str, nth: int) -> None:
        self.event, self.nth, self.seen = event, nth, 0

    def _told(self, event: str) -> None:
        if event == self.event:
            self.seen += 1
            if self.seen == self.nth:
                raise RuntimeError(f"handler {event}")

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self._told("start")

    def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        self._told("end")


def _prompts(*texts: str) -> list[list[HumanMessage]]:
    return [[HumanMessage(text)] for text in texts]


def _fields(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(input text, level, status message, output text) of each generation, in start order."""
    return [(r["input"][0]["content"], r["level"], r["status_message"], (r["output"] or {}).get("content"))
            for r in records]


def _unchanged(before: Any) -> None:
    assert otel_context.get_current() is before  # was: the last prompt's run's span current
    _nothing_open()


@pytest.mark.parametrize("texts", [("bad", "good"), ("good", "bad", "good")])
def test_a_failed_prompt_leaves_no_run_open_or_current(traced: Traced, texts: tuple[str, ...]) -> None:
    before = otel_context.get_current()
    with pytest.raises(ValueError, match=r"^boom$"):
        _Boom(responses=["ok"]).generate(_prompts(*texts))
    _unchanged(before)
    records = traced.records()
    assert shape(records) == [("generation", "_Boom", [])] * len(texts)
    assert len({r["trace_id"] for r in records}) == len(texts)
    expected = {"bad": ("bad", "ERROR", "ValueError: boom", None)}
    if texts[0] == "good":  # generated before the failure: its reply kept; the one after never ran
        assert _fields(records) == [("good", "WARNING", _RAISED, "ok"), expected["bad"], ("good", "WARNING", _RAISED, None)]
    else:
        assert _fields(records) == [expected["bad"], ("good", "WARNING", _RAISED, None)]


def test_inside_a_chain_the_caller_goes_on_in_its_step(traced: Traced) -> None:
    model = _Boom(responses=["ok"])

    def step(text: str) -> str:
        try:
            model.generate(_prompts(text, "good"))
        except ValueError:
            pass
        autotrace.event("after")  # was: nested in the second prompt's run
        return "handled"

    assert RunnableLambda(step).invoke("bad") == "handled"
    records = traced.records()
    assert shape(records) == [("chain", "step", [("generation", "_Boom", []), ("generation", "_Boom", []),
                                                 ("event", "after", [])])]
    assert [r["level"] for r in records[1:3]] == ["ERROR", "WARNING"]
    _nothing_open()


def test_generate_prompt_and_an_interruption(traced: Traced) -> None:
    model = _Boom(responses=["ok"])
    before = otel_context.get_current()
    with pytest.raises(ValueError):
        model.generate_prompt([StringPromptValue(text="bad"), StringPromptValue(text="good")])
    with pytest.raises(KeyboardInterrupt):
        model.generate(_prompts("stop", "good"))
    _unchanged(before)
    assert _fields(traced.records()) == [
        ("bad", "ERROR", "ValueError: boom", None), ("good", "WARNING", _RAISED, None),
        ("stop", "WARNING", "KeyboardInterrupt", None),
        ("good", "WARNING", BATCH_RAISED.format("KeyboardInterrupt"), None)]


@pytest.mark.parametrize(("event", "nth"), [("start", 2), ("end", 1)])
def test_a_raising_handler_leaves_no_run_open(traced: Traced, event: str, nth: int) -> None:
    before = otel_context.get_current()
    with pytest.raises(RuntimeError, match=f"handler {event}"):
        _Boom(responses=["ok"]).generate(_prompts("a", "b", "c"), callbacks=[_Raising(event, nth)])
    _unchanged(before)
    raised = BATCH_RAISED.format(f"RuntimeError: handler {event}")
    if event == "start":  # the second prompt's start raised before autotrace's handler was told it
        expected = [("a", "WARNING", raised, None)]
    else:  # the first prompt's end raised: every prompt was generated
        expected = [("a", "ERROR", "RuntimeError: handler end", "ok"), ("b", "WARNING", raised, "ok"),
                    ("c", "WARNING", raised, "ok")]
    assert _fields(traced.records()) == expected


def test_successful_batches_are_as_they_were(traced: Traced) -> None:
    model = FakeListChatModel(responses=["x", "y"])
    assert [g[0].text for g in model.generate(_prompts("a", "b")).generations] == ["x", "y"]
    assert model.invoke("c").content == "x"
    assert _fields(traced.records()) == [("a", "DEFAULT", None, "x"), ("b", "DEFAULT", None, "y"),
                                         ("c", "DEFAULT", None, "x")]
    assert autotrace.stats().get("langchain_batch_runs_interrupted", 0) == 0
    _nothing_open()


@pytest.mark.integrations("langchain", "openai")
def test_a_prompt_generated_before_the_failure_keeps_its_usage(traced: Traced, fake: FakeOpenAI) -> None:
    fake.script().script(error=(400, "nope"))
    model = ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="sk-test", max_retries=0)
    with pytest.raises(BadRequestError):
        model.generate(_prompts("one", "two two"))
    records = traced.records()
    assert shape(records) == [("generation", "ChatOpenAI", [])] * 2
    first, second = records
    raised = BATCH_RAISED.format(second["status_message"])
    assert (first["level"], first["status_message"], first["output"]["content"]) == ("WARNING", raised, "echo: one")
    assert first["usage"]["input"] == 7  # was: no usage, its run never ended
    assert second["level"] == "ERROR" and second["status_message"].endswith("Error: Error code: 400 - nope")
    assert autotrace.stats()["langchain_batch_runs_interrupted"] == 1
    assert not trace.get_current_span().get_span_context().is_valid
    _nothing_open()
