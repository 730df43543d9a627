"""Review 21 (real langchain-core): a completion model's (``BaseLLM``) batch whose callback handler
raises (``raise_error``). LangChain starts every prompt's run first and stops at the event that
raised: in a sync ``generate`` the other prompts' runs stayed open and the last one current in the
caller's context; in an async ``agenerate`` (starts run concurrently) the other prompts' runs stayed
open. They end as interrupted now. And an application's own handler (not ``run_inline``, the
default) was never told an async LLM's starts, only its ends: LangChain skips such handlers for
that event when any handler is inline, as autotrace's is."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake import FakeListLLM
from opentelemetry import context as otel_context

from autotrace.integrations.langchain_runs import BATCH_RAISED
from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain")


class _Raising(BaseCallbackHandler):
    """Raises (``raise_error``) from the ``event`` ("start" or "end") of the run of prompt or reply ``text``."""

    raise_error = True

    def __init__(self, event: str, text: str) -> None:
        self.event, self.text = event, text

    def on_llm_start(self, serialized: Any, prompts: list[str], **kwargs: Any) -> None:
        if self.event == "start" and prompts[0] == self.text:
            raise RuntimeError("handler start")

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        if self.event == "end" and response.generations[0][0].text == self.text:
            raise RuntimeError("handler end")


class _InlineRaising(_Raising):
    run_inline = True


class _Seen(BaseCallbackHandler):
    """Notes the events it is told (``run_inline`` as given)."""

    def __init__(self, inline: bool) -> None:
        self.run_inline = inline
        self.seen: list[tuple[str, Any]] = []

    def on_llm_start(self, serialized: Any, prompts: list[str], **kwargs: Any) -> None:
        self.seen.append(("start", prompts[0]))

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.seen.append(("end", response.generations[0][0].text))


def _model() -> FakeListLLM:
    return FakeListLLM(responses=["x", "y", "z"])


def _fields(traced: Traced) -> list[tuple[Any, ...]]:
    """(prompt, level, status message, output) of each generation, in start order."""
    records = traced.records()
    assert shape(records) == [("generation", "FakeListLLM", [])] * len(records)
    return [(r["input"], r["level"], r["status_message"], r["output"]) for r in records]


@pytest.mark.parametrize(("event", "text"), [("start", "b"), ("end", "x"), ("end", "y")])
def test_a_raising_handler_leaves_no_run_of_a_sync_batch_open_or_current(traced: Traced, event: str, text: str) -> None:
    before = otel_context.get_current()
    with pytest.raises(RuntimeError, match=f"^handler {event}$"):
        _model().generate(["a", "b", "c"], callbacks=[_Raising(event, text)])
    assert otel_context.get_current() is before  # was: the last started prompt's run current
    _nothing_open()  # was: one or two runs open
    raised = BATCH_RAISED.format(f"RuntimeError: handler {event}")
    expected = {("start", "b"): [("a", "WARNING", raised, None)],  # the second start raised before autotrace was told
                ("end", "x"): [("a", "ERROR", "RuntimeError: handler end", "x"), ("b", "WARNING", raised, None),
                             ("c", "WARNING", raised, None)],
                ("end", "y"): [("a", "DEFAULT", None, "x"), ("b", "ERROR", "RuntimeError: handler end", "y"),
                             ("c", "WARNING", raised, None)]}
    assert _fields(traced) == expected[(event, text)]


@pytest.mark.parametrize("inline", [False, True])
def test_a_start_that_raises_leaves_no_run_of_an_async_batch_open(traced: Traced, inline: bool) -> None:
    handler = (_InlineRaising if inline else _Raising)("start", "b")
    with pytest.raises(RuntimeError, match=r"^handler start$"):
        asyncio.run(_model().agenerate(["a", "b", "c"], callbacks=[handler]))
    _nothing_open()  # was: the runs of "a" and "c" open
    raised = BATCH_RAISED.format("RuntimeError: handler start")
    if inline:  # told before autotrace's handler: "b" never started
        assert _fields(traced) == [("a", "WARNING", raised, None), ("c", "WARNING", raised, None)]
    else:  # told after it (``all_told``): "b"'s start failed
        assert _fields(traced) == [("a", "WARNING", raised, None), ("b", "ERROR", "RuntimeError: handler start", None),
                                   ("c", "WARNING", raised, None)]


@pytest.mark.parametrize("inline", [False, True])
def test_an_applications_handler_is_told_every_async_llm_start_once(traced: Traced, inline: bool) -> None:
    seen = _Seen(inline)
    result = asyncio.run(_model().agenerate(["a", "b"], callbacks=[seen]))
    assert [g[0].text for g in result.generations] == ["x", "y"]
    assert sorted(seen.seen) == [("end", "x"), ("end", "y"), ("start", "a"), ("start", "b")]  # was: no start
    assert asyncio.run(_model().ainvoke("c", config={"callbacks": [seen]})) == "x"
    assert seen.seen[4:] == [("start", "c"), ("end", "x")]
    assert _fields(traced) == [("a", "DEFAULT", None, "x"), ("b", "DEFAULT", None, "y"), ("c", "DEFAULT", None, "x")]
    _nothing_open()


def test_successful_sync_batches_are_as_they_were(traced: Traced) -> None:
    seen = _Seen(False)
    assert [g[0].text for g in _model().generate(["a", "b"], callbacks=[seen]).generations] == ["x", "y"]
    assert seen.seen == [("start", "a"), ("start", "b"), ("end", "x"), ("end", "y")]
    assert _fields(traced) == [("a", "DEFAULT", None, "x"), ("b", "DEFAULT", None, "y")]
    _nothing_open()
