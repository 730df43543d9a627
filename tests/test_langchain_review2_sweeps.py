"""Model calls and retrievals a long-lived task times out, one after another: each ends as
interrupted, and the task keeps nothing of them (their frames, their inputs) while it goes on."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, AsyncCallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.retrievers import BaseRetriever

from autotrace.integrations.langchain import INTEGRATION
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain")


class _Held:
    """What a call's frame holds while it waits (a request's payload, say)."""


_held: list[weakref.ref[_Held]] = []


async def _wait_forever() -> None:
    payload = _Held()  # alive as long as this frame is
    _held.append(weakref.ref(payload))
    await asyncio.Event().wait()


class _HangingModel(BaseChatModel):
    @property
    def _llm_type(self) -> str:
        return "hanging"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        raise NotImplementedError

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        await _wait_forever()
        raise AssertionError("never woken")


class _HangingRetriever(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        raise NotImplementedError

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun) -> list[Document]:
        await _wait_forever()
        return []


def test_calls_a_long_lived_task_times_out_end_interrupted_and_are_not_kept(traced: Traced) -> None:
    _held.clear()

    async def request(component: Any) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):  # a deadline, not a measure: the call never returns
                await component.ainvoke("hi")

    async def worker() -> None:  # one task serving request after request, each with a deadline
        for _ in range(3):
            await request(_HangingModel())
            await request(_HangingRetriever())
        await asyncio.sleep(0)  # one loop turn: asyncio lets go of the last deadline's cancellation
        gc.collect()
        assert len(_held) == 6 and [ref() for ref in _held] == [None] * 6
        assert INTEGRATION.handler is not None and INTEGRATION.handler.runs == {}

    asyncio.run(worker())
    records = traced.records()
    assert shape(records) == [("generation", "_HangingModel", []), ("retriever", "_HangingRetriever", [])] * 3
    assert {(r["level"], r["status_message"]) for r in records} == {("WARNING", "CancelledError")}
