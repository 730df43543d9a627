"""A function-calling LLM's ``predict_and_call``/``apredict_and_call``: LlamaIndex makes a span of
``LLM.predict_and_call`` (a ReAct step, for LLMs that cannot call functions), not of the
``FunctionCallingLLM`` override that asks the model for tool calls and runs them. Its model call and
tool calls were unrelated traces; it is recorded as that span is (a chain), with them under it, as
``_rerank`` records an async rerank. Under a structured prediction (its program calls it) it is
that call, not recorded again.

A streamed structured prediction (``stream_structured_predict``/``astream_structured_predict``)
returns its stream of partial objects as its span ends, before its model is called: its wrapper
returns a relay of that stream instead (``ResponseRelay._relay_prediction``), which keeps its chain
open, with the model call it makes under it, until the stream ends; its output is the last object.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..._internal import guarded_failure
from ..base import Patcher
from ..class_family import ClassFamilyPatches, FamilyCall
from ._rerank import _arguments, finish, rerank_wrapper, start
from ._responses import _PREDICTING

_METHODS = {"predict_and_call": False, "apredict_and_call": True}


class PredictPatches(ClassFamilyPatches):
    """``predict_and_call``/``apredict_and_call`` of ``FunctionCallingLLM`` and of every subclass
    defining its own, recording into ``tracker()``."""

    def __init__(self, patcher: Patcher, tracker: Callable[[], Any]) -> None:
        super().__init__(patcher, "llama_index.core.llms.function_calling", "FunctionCallingLLM", (), (),
                         FamilyCall, "llama_index.predict_and_call")
        self.tracker = tracker

    def apply(self) -> None:
        super().apply()
        for name, asynchronous in (("stream_structured_predict", False), ("astream_structured_predict", True)):
            self.patcher.wrap("llama_index.core.llms.llm", f"LLM.{name}", _astreamed if asynchronous else _streamed,
                              optional=True)

    def wrap(self, cls: type) -> None:
        for name, asynchronous in _METHODS.items():
            method = cls.__dict__.get(name)
            if not inspect.isfunction(method) or inspect.iscoroutinefunction(method) != asynchronous:
                continue
            try:
                self.patcher.wrap_object(cls, name, _wrapper(self.tracker, name, asynchronous))
            except Exception as exc:  # a class that refuses it: left untraced
                guarded_failure(self.failure, exc)


def _wrapper(tracker: Callable[[], Any], method: str, asynchronous: bool) -> Callable[..., Any]:
    """The wrapt wrapper of ``method``, recording into ``tracker()`` (an async one as an async
    rerank is, ``rerank_wrapper``)."""
    if asynchronous:
        return rerank_wrapper(tracker, method, "llama_index.predict_and_call")

    def call(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            current = tracker()
            started = None if current is None else start(current, instance, method, _arguments(wrapped, args, kwargs))
        except Exception as exc:  # the call goes on untraced
            guarded_failure("llama_index.predict_and_call", exc)
            current = started = None
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            finish(current, started, instance, error=exc)
            raise
        finish(current, started, instance, result=result)
        return result

    return call


def _streamed(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``stream_structured_predict``: its stream, or the relay its span's end made of it."""
    holder: list[Any] = []
    token = _PREDICTING.set(holder)
    try:
        stream = wrapped(*args, **kwargs)
    finally:
        _PREDICTING.reset(token)
    return holder[0] if holder else stream


async def _astreamed(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``astream_structured_predict``: as ``_streamed``."""
    holder: list[Any] = []
    token = _PREDICTING.set(holder)
    try:
        stream = await wrapped(*args, **kwargs)
    finally:
        _PREDICTING.reset(token)
    return holder[0] if holder else stream
