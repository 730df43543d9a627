"""A node postprocessor's async call, ``apostprocess_nodes``: LlamaIndex makes the abstract
``_postprocess_nodes`` a span, not the ``_apostprocess_nodes`` an LLM reranker (``LLMRerank``)
overrides to call its LLM asynchronously. The async call is recorded as a sync one is (a retriever,
``operation="rerank"``), with the spans it starts (its LLM calls) under it; its ``_postprocess_nodes``
(the default ``_apostprocess_nodes`` runs it in a thread) is the same rerank, not recorded again.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from typing import Any

from ..._internal import guarded_failure
from ._responses import _READING

PARAMETERS = ("nodes", "query_bundle", "query_str")  # ``apostprocess_nodes``' own, after ``self``


def rerank_wrapper(tracker: Callable[[], Any]) -> Callable[..., Any]:
    """The wrapt wrapper of ``BaseNodePostprocessor.apostprocess_nodes``, recording into ``tracker()``."""

    def apostprocess_nodes(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = wrapped(*args, **kwargs)
        current = tracker()
        if current is None or not inspect.isawaitable(call):
            return call
        return _reranking(current, instance, call, {**dict(zip(PARAMETERS, args, strict=False)), **kwargs})

    return apostprocess_nodes


async def _reranking(tracker: Any, instance: Any, call: Any, arguments: dict[str, Any]) -> Any:
    started = _start(tracker, instance, arguments)
    try:
        result = await call
    except BaseException as exc:
        _exit(tracker, started, instance, error=exc)
        raise
    _exit(tracker, started, instance, result=result)
    return result


def _start(tracker: Any, instance: Any, arguments: dict[str, Any]) -> tuple[str, Any] | None:
    """Start the rerank as a span of the tracker's (under the LlamaIndex span running), and have the
    spans started under that one while it runs belong to it (as a relayed stream's steps do)."""
    try:
        from llama_index.core.instrumentation.span import active_span_id

        parent = active_span_id.get()
        id_ = f"{type(instance).__name__}.apostprocess_nodes-{uuid.uuid4()}"
        tracker.start(id_, instance, parent, arguments)
        return (id_, _READING.set((id_, parent))) if id_ in tracker.open else None
    except Exception as exc:  # the call goes on untraced
        guarded_failure("llama_index.rerank", exc)
        return None


def _exit(tracker: Any, started: tuple[str, Any] | None, instance: Any, result: Any = None,
          error: BaseException | None = None) -> None:
    if started is None:
        return
    try:
        _READING.reset(started[1])
        tracker.exit(started[0], result=result, error=error, instance=instance)
    except Exception as exc:
        guarded_failure("llama_index.rerank", exc)
