"""The contract every export target fulfils, and the outcome of one export attempt."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

from opentelemetry.sdk.trace import ReadableSpan


@dataclasses.dataclass(frozen=True, slots=True)
class SinkResult:
    """What happened to one batch: ``ok``; otherwise ``retryable`` (with an optional server delay)."""

    ok: bool
    retryable: bool = False
    retry_after: float | None = None
    reason: str = ""


OK = SinkResult(ok=True)


class Sink(Protocol):
    """An export target: Langfuse over OTLP/HTTP, any OTLP endpoint, or the local store."""

    name: str

    def export(self, spans: Sequence[ReadableSpan]) -> SinkResult: ...

    def close(self) -> None: ...
