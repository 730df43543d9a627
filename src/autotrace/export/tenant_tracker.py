"""Each span's tenant, decided when it starts and kept beside the span (not in its attributes,
which third-party code may read or change) until it is routed."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import SpanContext

from .._internal import count, log_once
from ..context import current_tenant, plain_tenant, valid_tenant

#: Bounds on the tenants remembered for live spans and for live traces' local roots.
MAX_LIVE_SPANS = 100_000
_MAX_TRACKED_TRACES = 50_000
_AMBIGUOUS = ""  # a trace id that local roots of different tenants share (never a valid tenant)


class TenantTracker:
    """Decides each span's tenant when it starts, and keeps it outside the span's attributes (which
    later code could change, or the SDK evict when full) until the span is finalised.

    A span under a local parent takes its parent's tenant: a trace never changes tenant midway
    (a mismatch is counted, the original tenant kept). A local root (no parent, or a remote one:
    an incoming request) takes the current tenant, so separate requests that carry the same trace
    id from outside never take each other's tenant."""

    def __init__(self, resolver: Callable[[], str | None] | None, max_live_spans: int = MAX_LIVE_SPANS) -> None:
        self._resolver = resolver
        #: Spans remembered from start to finalising: well above what the span queue can hold.
        self._max_live = max_live_spans
        # single dict operations are atomic under the GIL; insertion order gives the oldest entry
        self._spans: dict[int, str] = {}  # span id -> tenant, from its start until it is finalised
        self._evicted: dict[int, None] = {}  # span ids whose tenant was evicted: dropped, never misrouted
        #: trace id -> the tenant of its live local roots (_AMBIGUOUS if they differ) and how many
        #: of them are live (a gRPC client's span and its in-process server's): for scores only
        self._traces: dict[int, tuple[str, int]] = {}
        #: The tracker taken over, asked about spans this one does not know (one level only)
        self._previous: TenantTracker | None = None

    def take_over(self, previous: TenantTracker) -> None:
        """Know the tenants of the spans a previous install saw start (``install`` with new options,
        or after ``uninstall``): a span open across the reinstall keeps its tenant, never taking the
        unknown-tenant policy; so does one the previous tracker learns of after this copy."""
        if previous is self:
            return
        previous._previous = None  # never a chain of every install's tracker
        self._previous = previous
        self._spans.update(previous._spans)
        self._evicted.update(previous._evicted)
        self._traces.update(previous._traces)
        while len(self._spans) > self._max_live:
            _evict_oldest(self._spans, "tenant_spans_evicted")

    def span_started(self, span_id: int, trace_id: int, parent: SpanContext | None) -> str | None:
        tenant = current_tenant()
        root = parent is None or parent.is_remote
        if not root:
            # a parent without a tenant (or already finalised) passes none on: the current one applies
            known = self._spans.get(parent.span_id)  # type: ignore[union-attr]
            if known is None and self._previous is not None:
                known = self._previous._spans.get(parent.span_id)  # type: ignore[union-attr]
            if known is not None:
                if tenant is not None and tenant != known:
                    count("tenant_mismatch")
                    log_once("tenant_mismatch", "autotrace: a span of a trace owned by one tenant was started "
                             "under another; it keeps the trace's original tenant (counted as tenant_mismatch)")
                self._remember(span_id, known)
                return known
        if tenant is None and self._resolver is not None:
            tenant = self._resolve()
        if tenant is not None:
            self._remember(span_id, tenant)
            if root:
                self._root_of(trace_id, tenant)
        return tenant

    def adopt(self, span_id: int, trace_id: int, tenant: str) -> bool:
        """Give ``tenant`` to a live local root that started without one (a web framework's request
        span, started before the middleware that knows the request's tenant); False if it has one."""
        if span_id in self._spans or span_id in self._evicted:
            return False
        self._remember(span_id, tenant)
        self._root_of(trace_id, tenant)
        return True

    def _root_of(self, trace_id: int, tenant: str) -> None:
        known = self._traces.get(trace_id)
        self._traces[trace_id] = (tenant, 1) if known is None else (
            known[0] if known[0] == tenant else _AMBIGUOUS, known[1] + 1)
        if len(self._traces) > _MAX_TRACKED_TRACES:
            _evict_oldest(self._traces, "tenant_traces_evicted")

    def _remember(self, span_id: int, tenant: str) -> None:
        spans = self._spans
        spans[span_id] = tenant
        if len(spans) > self._max_live:
            evicted = _evict_oldest(spans, "tenant_spans_evicted")
            if evicted is not None:
                self._evicted[evicted] = None
                if len(self._evicted) > self._max_live:
                    _evict_oldest(self._evicted, None)

    def resolve(self) -> str | None:
        """The ``tenant_resolver``'s tenant for work given with none in its context (a score), as a
        span started there takes it; None without a resolver."""
        return self._resolve() if self._resolver is not None else None

    def _resolve(self) -> str | None:
        try:
            tenant = self._resolver()  # type: ignore[misc]
        except Exception as exc:
            count("tenant_resolver_errors")
            log_once(f"tenant_resolver:{type(exc).__name__}", "autotrace: tenant_resolver raised %s; span has "
                     "no tenant", type(exc).__name__)
            return None
        if tenant is None or valid_tenant(tenant):
            return tenant if tenant is None else plain_tenant(tenant)  # (an enum member: its value's text)
        count("tenant_resolver_errors")
        if inspect.iscoroutine(tenant):  # an ``async def``: nothing awaits it where a span starts
            tenant.close()  # else the application's output gets a "never awaited" RuntimeWarning each time
            log_once("tenant_resolver:async", "autotrace: tenant_resolver is an async function, which is never "
                     "awaited where a span starts; give a plain function returning a tenant id or None (counted "
                     "as tenant_resolver_errors)")
            return None
        log_once("tenant_resolver:invalid", "autotrace: tenant_resolver returned an invalid tenant id")
        return None

    def tenant_of(self, span_id: int) -> str | None:
        """The tenant of a span not finalised yet (any thread)."""
        return self._spans.get(span_id)

    def span_finished(self, span_id: int) -> tuple[str | None, bool]:
        """The tenant a span started with, forgotten now; and whether it was lost (evicted)."""
        tenant = self._spans.pop(span_id, None)
        if tenant is None:
            if span_id in self._evicted:
                self._evicted.pop(span_id, None)
                return None, True
            if self._previous is not None:
                return self._previous.span_finished(span_id)
        return tenant, False

    def known(self, trace_id: int) -> str | None:
        """The tenant of a live trace's local root(s), if they agree."""
        known = self._traces.get(trace_id)
        return known[0] or None if known is not None else None

    def trace_ended(self, trace_id: int, span_id: int) -> None:
        """A local root of the trace ended: the trace is forgotten once its last one with a tenant has."""
        known = self._traces.get(trace_id)
        if known is None or (span_id not in self._spans and (
                self._previous is None or span_id not in self._previous._spans)):
            return  # a root that started with no tenant: never counted
        if known[1] > 1:
            self._traces[trace_id] = (known[0], known[1] - 1)
        else:
            self._traces.pop(trace_id, None)


def _evict_oldest(entries: dict[int, Any], counter: str | None) -> int | None:
    try:
        key = next(iter(entries))
        entries.pop(key, None)
    except (StopIteration, RuntimeError):  # emptied or resized by another thread meanwhile
        return None
    if counter:
        count(counter)
    return key
