"""Making a gRPC call's span current (with the caller's other baggage entries, and a tenant) for
a block of the server's handler, and the parent its span starts under. The caller's tenant entry is never current: another OpenTelemetry
gRPC instrumentation outside ours (opentelemetry-instrumentation-grpc) attaches the caller's whole
baggage, and OTel's own ``propagate.inject`` (requests, httpx, contrib instrumentors) then sent
that tenant on to any host, whatever ``tenant_baggage`` says."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, set_span_in_context

from ..._internal import guarded_failure
from ...context import TENANT_BAGGAGE_KEY, reset_tenant, set_tenant, without_tenant_baggage
from ...middleware import adopt_current_span
from ...observation import Observation, make_current, restore_context


class current:
    """Make an observation's span (and a tenant) current for a block (no-op for None)."""

    __slots__ = ("baggage", "obs", "tenant", "tenant_token", "token")

    def __init__(self, obs: Observation | None, tenant: str | None = None,
                 entries: Mapping[str, object] | None = None) -> None:
        self.obs = obs
        self.tenant = tenant
        self.baggage = entries
        self.token: Any = None
        self.tenant_token: Any = None

    def __enter__(self) -> None:
        if self.obs is not None:
            self.token = _make_current_with(self.obs, self.baggage)
        if self.tenant is not None:
            self.tenant_token = set_tenant(self.tenant)

    def __exit__(self, *exc: object) -> None:
        if self.tenant_token is not None:
            reset_tenant(self.tenant_token)
            self.tenant_token = None
        restore_context(self.token)


def _make_current_with(obs: Observation, entries: Mapping[str, object] | None) -> object | None:
    """``make_current``, with ``entries`` as baggage too and without a tenant entry; a token for
    ``restore_context``."""
    try:
        ctx = otel_context.get_current()
        if not entries and baggage.get_baggage(TENANT_BAGGAGE_KEY, ctx) is None:
            return make_current(obs)
        ctx = without_tenant_baggage(ctx)
        for key, value in (entries or {}).items():
            ctx = baggage.set_baggage(key, value, ctx)
        return otel_context.attach(set_span_in_context(obs.span, ctx))
    except Exception as exc:
        guarded_failure("grpc.attach", exc)
        return make_current(obs)


def call_parent(incoming: Any, tenant: str | None) -> Any:
    """The call span's parent: the caller's (``incoming``), or None (the current span) when an
    outer layer already joined that trace (or started one, the caller naming none) with a SERVER
    span of its own: another OpenTelemetry gRPC instrumentation's interceptor before ours. Ours
    then nests under it, rather than beside it, and that span takes the call's tenant
    (``SpanPipeline.adopt``) instead of being left out of the tenant's trace."""
    outer = trace.get_current_span()
    joined = outer.get_span_context()
    remote = trace.get_current_span(incoming).get_span_context()
    if not joined.is_valid or (joined.trace_id != remote.trace_id if remote.is_valid
                               else getattr(outer, "kind", None) is not SpanKind.SERVER):
        return incoming
    if tenant is not None:
        adopt_current_span(tenant)
    return None
