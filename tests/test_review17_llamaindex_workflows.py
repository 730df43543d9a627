"""A LlamaIndex workflow of several steps (real llama-index-core workflows): each step is a chain under
the run, with the event it took and the event it gave; a typed start event's fields are the run's
input; a step that fails is recorded where it failed (and the run with it), each attempt of a retried
step is recorded, and the caller gets the step's own exception."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core.llms.mock import MockLLM
from llama_index.core.workflow import Event, StartEvent, StopEvent, Workflow, step
from llama_index.core.workflow.retry_policy import ConstantDelayRetryPolicy

from autotrace.integrations.llama_index import INTEGRATION
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("llama_index")


class Ask(StartEvent):
    topic: str


class Drafted(Event):
    text: str


class Answered(StopEvent):
    answer: str
    sources: list[str]


class Writer(Workflow):
    @step
    async def draft(self, ev: Ask) -> Drafted:
        return Drafted(text=(await MockLLM(max_tokens=2).acomplete(ev.topic)).text)

    @step
    def polish(self, ev: Drafted) -> Answered:  # a sync step: run in a thread of the loop's executor
        return Answered(answer=MockLLM(max_tokens=3).complete(ev.text).text, sources=["d1"])


class Flaky(Workflow):
    """Its ``check`` step fails on its first attempt; ``fail`` then fails on every one."""

    def __init__(self) -> None:
        super().__init__(timeout=10)
        self.attempts = 0

    @step(retry_policy=ConstantDelayRetryPolicy(maximum_attempts=2, delay=0))
    async def check(self, ev: StartEvent) -> Drafted:
        self.attempts += 1
        if self.attempts == 1:
            raise ConnectionError("index not ready")
        return Drafted(text="ready")

    @step
    async def fail(self, ev: Drafted) -> StopEvent:
        raise ValueError(f"cannot publish {ev.text}")


def assert_nothing_held() -> None:
    tracker = INTEGRATION.tracker
    assert tracker is not None
    assert not (tracker.open or tracker.skipped or tracker.workflow_runs)


def test_each_step_is_a_chain_under_the_run_with_the_events_it_took_and_gave(traced: Traced) -> None:
    """The steps were not recorded (their LLM calls were the run's, flat), and a typed start event's
    fields were left out of the run's input (``{}``): only its untyped keywords were read."""

    async def run() -> tuple[Answered, Answered]:
        return await Writer().run(start_event=Ask(topic="tides")), await Writer().run(topic="moons", tone="dry")

    answers = asyncio.run(run())
    assert [type(a).__name__ for a in answers] == ["Answered", "Answered"]  # a typed stop event: no ``result``
    records = traced.records()
    tree = ("chain", "Writer.run", [("chain", "Writer.draft", [("generation", "MockLLM.acomplete", [])]),
                                    ("chain", "Writer.polish", [("generation", "MockLLM.complete", [])])])
    assert shape(records) == [tree, tree]
    first = [(r["name"], r["input"], r["output"], r["metadata"], r["level"]) for r in records[:5]
             if r["type"] == "chain"]
    assert first == [
        ("Writer.run", {"topic": "tides"}, {"answer": "text text text", "sources": ["d1"]}, {}, "DEFAULT"),
        ("Writer.draft", {"topic": "tides"}, {"text": "text text"},
         {"input_event": "Ask", "output_event": "Drafted"}, "DEFAULT"),
        ("Writer.polish", {"text": "text text"}, {"answer": "text text text", "sources": ["d1"]},
         {"input_event": "Drafted"}, "DEFAULT"),
    ]
    # run(**keywords) builds the typed start event: its fields, and any keyword it does not declare
    assert records[5]["input"] == records[6]["input"] == {"topic": "moons", "tone": "dry"}
    assert {r["trace_id"] for r in records[:5]} != {r["trace_id"] for r in records[5:]}
    assert_nothing_held()


def test_a_failing_step_is_recorded_where_it_failed_and_each_attempt_of_a_retried_step(traced: Traced) -> None:
    """Only the run said something failed, not which step, nor that a retried step had failed once."""
    workflow = Flaky()

    async def run() -> object:
        return await workflow.run()

    with pytest.raises(ValueError, match="cannot publish ready"):
        asyncio.run(run())
    records = traced.records()
    assert shape(records) == [("chain", "Flaky.run", [("chain", "Flaky.check", []), ("chain", "Flaky.check", []),
                                                      ("chain", "Flaky.fail", [])])]
    assert [(r["name"], r["level"], r["status_message"], r["output"]) for r in records] == [
        ("Flaky.run", "ERROR", "ValueError: cannot publish ready", None),
        ("Flaky.check", "ERROR", "ConnectionError: index not ready", None),
        ("Flaky.check", "DEFAULT", None, {"text": "ready"}),
        ("Flaky.fail", "ERROR", "ValueError: cannot publish ready", None),
    ]
    assert workflow.attempts == 2
    assert_nothing_held()


class QuestionStartEvent(StartEvent):
    question: str
    top_k: int = 2


class AnswerStopEvent(StopEvent):
    answer: str


class Answerer(Workflow):
    @step
    async def answer(self, ev: QuestionStartEvent) -> AnswerStopEvent:
        return AnswerStopEvent(answer=f"{ev.question}: 24 hours")


def test_a_run_s_typed_start_and_stop_events_are_its_input_and_output(traced: Traced) -> None:
    """A typed start event's fields were not the run's input (``{}``: only keywords it does not
    declare were read), and a typed stop event (which has no ``result``) named ``*StopEvent`` left the
    run's output empty."""

    async def run() -> AnswerStopEvent:
        return await Answerer().run(question="when do orders ship", channel="chat")

    assert asyncio.run(run()).answer == "when do orders ship: 24 hours"
    run_record = traced.records()[0]
    assert (run_record["name"], run_record["input"], run_record["output"]) == (
        "Answerer.run", {"question": "when do orders ship", "top_k": 2, "channel": "chat"},
        {"answer": "when do orders ship: 24 hours"})
