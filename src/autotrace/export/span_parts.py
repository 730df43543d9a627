"""The parts of a span besides its attributes, name and status that redaction goes through: its
events and links, its resource and instrumentation scope (shared by many spans: each redacted once
and remembered, bounded) and the W3C trace state that came with a request. Pipeline thread only."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, TraceState

from .redaction import EVENT_NAME, Redactor, redacting_for, redaction_tenant
from .span_copy import keeping_dropped

#: Resources and instrumentation scopes remembered with their redacted forms (few per process).
MAX_ORIGINS = 256


class SpanParts:
    """Redacts the parts of spans with ``redactor``, remembering what many spans share."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._origins: dict[int, tuple[Any, Any]] = {}
        self._last_origins: tuple[Any, Any, Any, Any] = (None, None, None, None)  # (resource, scope) -> redacted
        #: A trace state, the tenant it was redacted for (a hook may apply that tenant's policy) and its redacted form.
        self._last_state: tuple[Any, str | None, Any] = (None, None, None)

    def origin(self, resource: Any, scope: Any) -> tuple[Any, Any]:
        """A span's resource and instrumentation scope with their attributes redacted (another
        provider's resource may carry command lines or owners). Shared by many spans, each is
        redacted once and remembered, bounded; hooks see ``span_type`` ``resource`` or ``scope``."""
        last = self._last_origins  # nearly every span shares the previous one's
        if resource is last[0] and scope is last[1]:
            return last[2], last[3]
        tenant = redaction_tenant()
        redacting_for(None)  # shared by every tenant's spans, and redacted once for all: no tenant's policy
        try:
            redacted = self._origin(resource, "resource"), self._origin(scope, "scope")
        finally:
            redacting_for(tenant)
        self._last_origins = (resource, scope, *redacted)
        return redacted

    def _origin(self, origin: Any, kind: str) -> Any:
        if origin is None or not origin.attributes:
            return origin
        known = self._origins.get(id(origin))
        if known is not None and known[0] is origin:  # the original is kept alive: its id is not reused
            return known[1]
        attrs, _ = self.redactor.redact_attributes(origin.attributes, kind)
        if attrs == dict(origin.attributes):
            redacted = origin
        elif kind == "resource":
            redacted = Resource(attrs, origin.schema_url)
        else:
            redacted = InstrumentationScope(origin.name, origin.version, origin.schema_url, attrs)
        if len(self._origins) >= MAX_ORIGINS:
            self._origins.clear()
        self._origins[id(origin)] = (origin, redacted)
        return redacted

    def trace_state(self, context: SpanContext) -> SpanContext:
        """``context`` with its W3C trace state's values redacted (exported with the span; a caller
        can put any text there); an entry whose key redaction changes is left out. Hooks see its
        entries with ``span_type`` ``tracestate``. The spans of a request share one: remembered, for
        the tenant whose hooks redacted it (one request's spans may be several tenants')."""
        state, tenant = context.trace_state, redaction_tenant() if self.redactor.hooks else None
        last = self._last_state
        if state is not last[0] or tenant != last[1]:
            entries, _ = self.redactor.redact_attributes(state, "tracestate")
            kept = [(key, value) for key, value in entries.items() if key in state and type(value) is str]
            last = self._last_state = (state, tenant, state if kept == list(state.items()) else TraceState(kept))
        if last[2] is state:
            return context
        return SpanContext(context.trace_id, context.span_id, context.is_remote, context.trace_flags, last[2])

    def event(self, event: Any, span_type: str) -> Any:
        redacted, _ = self.redactor.redact_attributes(event.attributes or {}, span_type)
        return type(event)(self.redactor.redact_text(event.name, EVENT_NAME, span_type), keeping_dropped(event, redacted),
                           event.timestamp)

    def link(self, link: Link, span_type: str) -> Link:
        if not link.attributes:
            return link
        return Link(link.context, keeping_dropped(link, self.redactor.redact_attributes(link.attributes, span_type)[0]))
