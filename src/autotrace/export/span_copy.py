"""A finished span rebuilt for export (redacted, or trimmed after a refusal) that keeps the counts
of attributes, events and links dropped on the way: by the tracer's limits (another library's span
from the OpenTelemetry SDK, or autotrace's own) and by the pipeline's attribute cap. OTLP carries
them per span (``dropped_*_count``); a plain ``ReadableSpan`` built from new collections says 0.
Events and links carry the attributes they dropped likewise (``keeping_dropped``)."""

from __future__ import annotations

from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan


def dropped_counts(span: Any) -> tuple[int, int, int]:
    """The attributes, events and links ``span`` dropped (0 for what it does not say)."""
    return (getattr(span, "dropped_attributes", 0) or 0, getattr(span, "dropped_events", 0) or 0,
            getattr(span, "dropped_links", 0) or 0)


class SpanCopy(ReadableSpan):
    """A ``ReadableSpan`` with given counts of dropped attributes, events and links."""

    def __init__(self, *, dropped: tuple[int, int, int], **fields: Any) -> None:
        super().__init__(**fields)
        self._dropped = dropped

    @property
    def dropped_attributes(self) -> int:
        return self._dropped[0]

    @property
    def dropped_events(self) -> int:
        return self._dropped[1]

    @property
    def dropped_links(self) -> int:
        return self._dropped[2]


def keeping_dropped(original: Any, attributes: Any) -> Any:
    """``attributes`` in place of those of ``original`` (an event or a link), still saying how many
    ``original`` dropped at the tracer's limits: an event or link reads that count off a
    ``BoundedAttributes`` only, and one rebuilt from a plain mapping says 0."""
    dropped = getattr(original, "dropped_attributes", 0) or 0
    if not dropped or attributes is getattr(original, "attributes", None):
        return attributes
    bounded = BoundedAttributes(attributes=attributes, immutable=True)
    bounded.dropped = dropped
    return bounded
