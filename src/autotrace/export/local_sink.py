"""The local store as an export target: each finished span becomes a record (``span_record``),
each score a row."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import schema
from .._internal import count, guarded_failure
from ._store_files import ReadOnlyStoreError, failure
from .local_store import LocalStore
from .sink import OK, SinkResult, split

if TYPE_CHECKING:  # the OpenTelemetry SDK is not needed to read a store
    from opentelemetry.sdk.trace import ReadableSpan


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """The stored form of a finished span: ids, timing and its typed fields."""
    context = span.get_span_context()
    parent = span.parent
    attrs = dict(span.attributes or {})
    record = schema.observation_record(attrs)
    record.update(
        trace_id=format(context.trace_id, "032x"),
        id=format(context.span_id, "016x"),
        parent_id=format(parent.span_id, "016x") if parent is not None else None,
        name=span.name,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or span.start_time or 0,
        service=span.resource.attributes.get("service.name") if span.resource else None,
        error=record["level"] == "ERROR" or span.status.status_code.name == "ERROR",
        events=[{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
    )
    record["duration_ms"] = (record["end_ns"] - record["start_ns"]) / 1e6
    cost = record.get("cost")
    if isinstance(cost, dict) and "total" not in cost:  # as Langfuse: no total given is the sum of the parts
        parts = [v for v in cost.values() if isinstance(v, int | float) and not isinstance(v, bool)]
        if parts:
            record["cost"] = {**cost, "total": sum(parts)}
    if record["error"] and schema.OBS_LEVEL not in attrs:  # a failed span of another library: as Langfuse shows it
        record["level"] = "ERROR"
    if record["error"] and not record["status_message"] and span.status.description:
        record["status_message"] = span.status.description
    return record


class LocalStoreSink:
    """The local store as an export target."""

    name = "local"

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self._closed = False  # (``close``)

    def export(self, items: Sequence[Any]) -> SinkResult:
        """Write a batch; one the store cannot take for a reason no retry changes fails for good: a store
        read-only for this process (found on opening it after a fork, say in a worker that dropped
        privileges), or a damaged one (its pages no SQLite database: a disk fault, another program). One
        a later try may not meet (a full disk, a store another process held too long) is retried, said as
        such: not an internal error. Closed (shutdown), it writes nothing more: what it wrote of the
        batch before is ``settled``, the rest not written (no internal error)."""
        written: list[Any] = []
        if self._closed:
            return _cut(written)
        try:
            return self._write(items, written)
        except ReadOnlyStoreError as exc:
            return _lasting("read-only store", str(exc))
        except sqlite3.DatabaseError as exc:
            if self._closed:  # "Cannot operate on a closed database": closed while it wrote
                return _cut(written)
            kind = failure(exc)
            if kind is None:
                raise
            said, passing = kind
            if passing:
                return SinkResult(ok=False, retryable=True, reason=said, detail=f"{exc}: {self.store.path}")
            if said == "damaged store":
                return _lasting(said, f"{exc}; move {self.store.path} away to start a new store")
            return _lasting(said, str(exc))

    def _write(self, items: Sequence[Any], written: list[Any]) -> SinkResult:
        """Write ``items``, adding to ``written`` what is written (the spans in one transaction, then
        each score in its own)."""
        spans, scores = split(items)
        if spans:
            self.store.write(record for record in map(_record_or_none, spans) if record is not None)
            written += spans
        for item in scores:
            body = item.body
            self.store.add_score({
                "id": body["id"], "trace_id": body.get("traceId"), "observation_id": body.get("observationId"),
                "name": body["name"], "value": body.get("value"), "data_type": body.get("dataType"),
                "comment": body.get("comment"), "tenant": item.tenant,
            })
            written.append(item)
        return OK

    def after_fork(self) -> None:
        self.store.reopen()

    def close(self, wait: float | None = None) -> None:
        """Close the store: a write under way finishes first (its transaction; waited for at most ``wait``
        seconds, else rolled back: ``LocalStore.close``), nothing is written after. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.store.close(wait)


def _cut(written: list[Any]) -> SinkResult:
    """A batch the store was closed under (shutdown): ``written`` is what it took."""
    return SinkResult(ok=False, retryable=False, reason="closed", settled=tuple(written))


def _lasting(reason: str, detail: str) -> SinkResult:
    """A store this process cannot write: no retry helps (the batch is dropped, counted, logged once)."""
    return SinkResult(ok=False, retryable=False, reason=reason, detail=detail)


def _record_or_none(span: Any) -> dict[str, Any] | None:
    """A span's record; None (counted, logged once) for a span that cannot be read, which must not
    fail, and so lose, the rest of its batch."""
    try:
        return span_record(span)
    except Exception as exc:
        count("spans_dropped.unreadable")
        guarded_failure("local_store.record", exc)
        return None
