"""A node postprocessor's async call, ``apostprocess_nodes``: LlamaIndex makes the abstract
``_postprocess_nodes`` a span, not the ``_apostprocess_nodes`` an LLM reranker (``LLMRerank``)
overrides to call its LLM asynchronously. The async call is recorded as a sync one is (a retriever,
``operation="rerank"``), with the spans it starts (its LLM calls) under it; its ``_postprocess_nodes``
(the default ``_apostprocess_nodes`` runs it in a thread) is the same rerank, not recorded again.
``apostprocess_nodes`` is wrapped wherever a postprocessor class defines it (``RankGPTRerank``
overrides it), classes defined later included (``RerankPatches``); one delegating to another's is
the same rerank.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from typing import Any

from ..._internal import guarded_failure
from ..base import Patcher
from ..class_family import ClassFamilyPatches, FamilyCall
from ._responses import _READING

_METHOD = "apostprocess_nodes"


class RerankPatches(ClassFamilyPatches):
    """``apostprocess_nodes`` of ``BaseNodePostprocessor`` and of every subclass defining its own,
    recording into ``tracker()``."""

    def __init__(self, patcher: Patcher, tracker: Callable[[], Any]) -> None:
        super().__init__(patcher, "llama_index.core.postprocessor.types", "BaseNodePostprocessor", (), (_METHOD,),
                         FamilyCall, "llama_index.rerank")
        self.wrapper = rerank_wrapper(tracker)

    def wrap(self, cls: type) -> None:
        if inspect.iscoroutinefunction(cls.__dict__.get(_METHOD)):
            try:
                self.patcher.wrap_object(cls, _METHOD, self.wrapper)
            except Exception as exc:  # a class that refuses it: left untraced
                guarded_failure(self.failure, exc)


def rerank_wrapper(tracker: Callable[[], Any], method: str = _METHOD,
                   failure: str = "llama_index.rerank") -> Callable[..., Any]:
    """The wrapt wrapper of an async ``method`` (``apostprocess_nodes``, or another call LlamaIndex
    makes no span of), recording into ``tracker()``; a failure of its own counted as ``failure``."""

    def awaited(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = wrapped(*args, **kwargs)
        try:
            current = tracker()
            if current is None or not inspect.isawaitable(call):
                return call
            arguments = _arguments(wrapped, args, kwargs)
        except Exception as exc:  # the call goes on untraced
            guarded_failure(failure, exc)
            return call
        return _awaiting(current, instance, method, call, arguments)

    return awaited


def _arguments(wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments by the names its method gives them (a subclass's may differ)."""
    try:
        return dict(inspect.signature(wrapped).bind(*args, **kwargs).arguments)
    except (TypeError, ValueError):
        return dict(kwargs)


async def _awaiting(tracker: Any, instance: Any, method: str, call: Any, arguments: dict[str, Any]) -> Any:
    started = start(tracker, instance, method, arguments)
    try:
        result = await call
    except BaseException as exc:
        finish(tracker, started, instance, error=exc)
        raise
    finish(tracker, started, instance, result=result)
    return result


def start(tracker: Any, instance: Any, method: str, arguments: dict[str, Any]) -> tuple[str, Any] | None:
    """Start a call LlamaIndex makes no span of (a rerank's ``method``) as a span of the tracker's
    (under the LlamaIndex span running), and have the spans started under that one while it runs
    belong to it (as a relayed stream's steps do)."""
    try:
        from llama_index.core.instrumentation.span import active_span_id

        parent = active_span_id.get()
        id_ = f"{type(instance).__name__}.{method}-{uuid.uuid4()}"
        tracker.start(id_, instance, parent, arguments)
        if id_ in tracker.open:
            return id_, _READING.set((id_, parent))
        tracker.skipped.pop(id_, None)  # the call it delegates from, or is called by: no exit to wait for
        return None
    except Exception as exc:  # the call goes on untraced
        guarded_failure("llama_index.rerank", exc)
        return None


def finish(tracker: Any, started: tuple[str, Any] | None, instance: Any, result: Any = None,
           error: BaseException | None = None) -> None:
    """End a call ``start`` started (its ``result`` or ``error``)."""
    if started is None:
        return
    try:
        _READING.reset(started[1])
        tracker.exit(started[0], result=result, error=error, instance=instance)
    except Exception as exc:
        guarded_failure("llama_index.rerank", exc)
