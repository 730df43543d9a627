"""A smaller copy of a span refused on its own as too large (HTTP 413), to send once more.

A proxy before the endpoint (nginx's ``client_max_body_size``) may take less than one span holds
when the value size limit is raised, or a span has many long values. Rather than losing the whole
step, its values are cut shorter (the cut marked as any other) and it is sent again; what is
refused even so is dropped and counted.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import Event

from .._internal import guarded_failure
from ..bounds import SCALARS, cut_value
from ..schema import OBS_METADATA
from .span_copy import SpanCopy, dropped_counts

#: The most UTF-8 bytes each value of a trimmed span keeps.
TRIMMED_VALUE_BYTES = 4096
#: Set on a trimmed span, so the observation says why its values end early (JSON text, as metadata is).
TRIMMED = f"{OBS_METADATA}.export_trimmed"
_TRIMMED_NOTE = f'"each value cut to {TRIMMED_VALUE_BYTES} bytes: the span was refused as too large"'


class TrimmedSpan(SpanCopy):
    """A span whose values were cut after a refusal: it is not trimmed again."""


def trimmed(span: Any) -> TrimmedSpan | None:
    """``span`` (a finished span: the SDK's or autotrace's own) with every value cut at
    ``TRIMMED_VALUE_BYTES``, its events' too; None when that makes nothing shorter, or ``span`` was
    trimmed already: sent again, it would be refused again."""
    if isinstance(span, TrimmedSpan):
        return None
    try:
        return _trimmed(span)
    except Exception as exc:  # a span of unexpected shape: dropped as it would be without this
        guarded_failure("export.trim", exc)
        return None


def _trimmed(span: Any) -> TrimmedSpan | None:
    attributes, cut = _cut(span.attributes)
    events = []
    for event in span.events:
        event_attributes, event_cut = _cut(event.attributes)
        cut = cut or event_cut
        events.append(_CutEvent(event, event_attributes) if event_cut else event)
    if not cut:
        return None
    attributes[TRIMMED] = _TRIMMED_NOTE
    return TrimmedSpan(
        name=span.name, context=span.get_span_context(), parent=span.parent, resource=span.resource,
        attributes=attributes, events=events, links=span.links, kind=span.kind, status=span.status,
        start_time=span.start_time, end_time=span.end_time, instrumentation_scope=span.instrumentation_scope,
        dropped=dropped_counts(span),
    )


class _CutEvent(Event):
    """An event with its values cut, keeping the count of attributes it dropped before (OTLP sends it)."""

    def __init__(self, event: Any, attributes: dict[str, Any]) -> None:
        super().__init__(event.name, attributes, event.timestamp)
        self._dropped = getattr(event, "dropped_attributes", 0) or 0

    @property
    def dropped_attributes(self) -> int:
        return self._dropped


def _cut(attributes: Any) -> tuple[dict[str, Any], bool]:
    """A copy of ``attributes`` with each value cut at ``TRIMMED_VALUE_BYTES``; whether one was."""
    copy = dict(attributes or {})
    cut = False
    for key, value in copy.items():
        if not isinstance(value, SCALARS):
            shorter = cut_value(value, TRIMMED_VALUE_BYTES)
            if shorter != value:
                copy[key], cut = shorter, True
    return copy, cut

