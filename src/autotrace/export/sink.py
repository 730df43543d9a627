"""The contract every export target fulfils, and the outcome of one export attempt."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

from opentelemetry.sdk.trace import ReadableSpan

from ..scores import ScoreItem


@dataclasses.dataclass(frozen=True, slots=True)
class SinkResult:
    """What happened to one batch: ``ok``; otherwise ``retryable`` (with an optional server delay).
    ``status`` is the HTTP status, if any; ``rejected``, when ``ok``, the items of the batch the
    endpoint refused for good while taking the rest (counted as dropped, the rest as exported);
    ``rejected_spans``, when ``ok``, how many of its spans the endpoint refused without saying which,
    and ``message``, what it said of them (OTLP's ``partial_success``; a message alone is a warning).
    ``settled``, when not ok, the items whose outcome was known before the failure (taken, or
    refused for good as ``rejected``, ``rejected_spans`` and ``message`` say): counted so, and
    only the others are retried or dropped. ``detail``, when not ok, what the failure said beyond
    ``reason`` (why TLS failed: an untrusted certificate, a name it does not cover...), for the log."""

    ok: bool
    retryable: bool = False
    retry_after: float | None = None
    reason: str = ""
    status: int = 0
    rejected: tuple[Any, ...] = ()
    rejected_spans: int = 0
    message: str = ""
    settled: tuple[Any, ...] = ()
    detail: str = ""

    @property
    def described(self) -> str:
        """``reason``, with its ``detail`` if any: what a log line says of the failure."""
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


OK = SinkResult(ok=True)


class Sink(Protocol):
    """An export target: Langfuse over OTLP/HTTP, any OTLP endpoint, or the local store."""

    name: str

    def export(self, items: Sequence[Any]) -> SinkResult: ...

    def close(self) -> None: ...


def split(items: Sequence[Any]) -> tuple[list[ReadableSpan], list[ScoreItem]]:
    """A batch's finished spans (SDK spans or autotrace's own, both readable alike) and scores."""
    spans: list[ReadableSpan] = []
    scores: list[ScoreItem] = []
    for item in items:
        (scores if isinstance(item, ScoreItem) else spans).append(item)
    return spans, scores
