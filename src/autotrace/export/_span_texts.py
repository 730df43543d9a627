"""The texts of a span beside its attributes (its name, status message, events' names and
attributes, links' attributes), bounded as attributes are: held for redaction, then cut."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.trace import Link

from .. import bounds
from .span_copy import keeping_dropped


def bound_texts(bound: Callable[[Any, int], Any], limit: int, name: str, status: Any, events: Any,
                links: Any) -> tuple[str, Any, Any, Any]:
    """The span's name, status message, event names and attributes, and link attributes, each
    bounded by ``bound`` at ``limit`` (the value size limit): held for redaction
    (``bounds.hold_value``), or once redacted cut (``bounds.cut_value``)."""
    quarter = limit // 4  # a text of fewer characters is within the limit: most spans stop here
    if len(name) > quarter:
        name = bound(name, limit)
    if status.description and len(status.description) > quarter:
        status = type(status)(status.status_code, bound(status.description, limit))

    def bounded(attributes: Any) -> Any:
        if not attributes or not bounds.has_long_string(attributes.values(), limit):
            return attributes
        return {key: bound(value, limit) for key, value in attributes.items()}

    if events and any(len(e.name) > quarter or bounds.has_long_string((e.attributes or {}).values(), limit)
                      for e in events):
        events = tuple(type(e)(bound(e.name, limit), keeping_dropped(e, bounded(e.attributes)), e.timestamp)
                       for e in events)
    if links and any(bounds.has_long_string((link.attributes or {}).values(), limit) for link in links):
        links = tuple(Link(link.context, keeping_dropped(link, bounded(link.attributes))) for link in links)
    return name, status, events, links
