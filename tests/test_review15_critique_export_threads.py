"""A redaction hook that hands its traced call to another thread with its context (review 15):
``asyncio.to_thread``, or an executor running ``copy_context().run``. That call is the hook's as
much as one it makes itself: not traced, never fed back to the hook."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

import autotrace
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

#: How many calls the hook makes at most (a bound for the old code, where each call's span came
#: back to the hook, which called again, without end).
_AT_MOST = 5


def _ask(client: openai.OpenAI, text: str) -> str | None:
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content


def _to_thread(call: Callable[[], Any]) -> Any:
    async def run() -> Any:
        return await asyncio.to_thread(call)

    return asyncio.run(run())


def _copied_context_in_a_pool(call: Callable[[], Any]) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(contextvars.copy_context().run, call).result()


@pytest.mark.parametrize("hand_on", [_to_thread, _copied_context_in_a_pool])
def test_a_hooks_call_run_on_another_thread_is_not_fed_back_to_the_hook(
        tmp_path: Path, fake: FakeOpenAI, client: openai.OpenAI, hand_on: Callable[[Callable[[], Any]], Any]) -> None:
    """Before: the call's span (no tenant) was exported and its name given to the hook, which
    called again: a call per export, without end."""
    asked: list[str] = []

    def llm_policy(key: str, value: Any, span_type: str) -> Any:
        if key == "span.name" and len(asked) < _AT_MOST:
            asked.append(value)
            hand_on(lambda: _ask(client, f"is {value!r} sensitive?"))
        return value

    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("openai",),
                      export_interval=0.05, redact=[llm_policy])
    with autotrace.tenant("acme"), autotrace.start_span("checkout"):
        pass
    records = Traced(tmp_path / "t.db").records()
    assert [(r["name"], r["tenant"]) for r in records] == [("checkout", "acme")]
    assert asked == ["checkout"]
    assert autotrace.stats() == {"spans_dropped.inside_export": 1, "spans_exported": 1, "spans_exported.local": 1}
