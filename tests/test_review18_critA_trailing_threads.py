"""A sync stream left at its finish reason has its trailing usage read under a deadline: that
deadline costs no thread per stream (starting one took longer than the whole call's tracing), and
a deadline still shuts a stalled connection. Real SDK over HTTP to the loopback fake."""

from __future__ import annotations

import threading
from typing import Any

import openai
import pytest

import autotrace
from autotrace.integrations.openai import _trailing
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced
from tests.test_review18_openai_stream_usage import read_to_the_finish_of_a_stalling_server

pytestmark = pytest.mark.integrations("openai")

MESSAGES: list[Any] = [{"role": "user", "content": "weather in Paris?"}]


def test_streams_left_at_their_finish_reason_start_no_thread_each(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    def left_at_finish() -> None:
        fake.script(reply="abc", chunks=3, usage=(9, 4))
        for chunk in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
            if chunk.choices and chunk.choices[0].finish_reason:
                break

    left_at_finish()  # the export pipeline's thread (and the deadlines' one) started here
    caller = threading.current_thread()
    started: list[str] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        if threading.current_thread() is caller:  # the fake server's own threads are not the caller's
            started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    for _ in range(5):
        left_at_finish()
    monkeypatch.undo()
    assert len(started) <= 1, started  # no thread per stream (the deadlines' one, if it had ended idle)
    records = traced.records()
    assert [(r["level"], r["usage"]["total"]) for r in records] == [("DEFAULT", 13)] * 6


def test_the_deadlines_thread_ends_once_idle_and_a_later_stall_still_ends_in_a_moment(
        traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    """No thread of autotrace's is left running for good: the deadlines' one ends when idle, and the
    next stream left at its finish reason starts it again (its stalled connection still shut)."""
    monkeypatch.setattr(_trailing, "_IDLE", 0.05)

    def ours() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "autotrace-openai-trailing"]

    assert read_to_the_finish_of_a_stalling_server() == [None, "stop"]
    for thread in ours():
        thread.join(30)
    assert ours() == []
    assert read_to_the_finish_of_a_stalling_server() == [None, "stop"]
    assert [(r["level"], r["usage"]) for r in traced.records()] == [("DEFAULT", None)] * 2
    assert autotrace.stats()["openai.stream_trailing_timeout"] == 2
