"""What a gRPC server reads of its caller (trace context and baggage), and making a call's span
current (with the caller's other baggage entries, and a tenant) for a block of the server's
handler, and the parent its span starts under. The caller's tenant entry is never current: another OpenTelemetry
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
from ...context import (
    TENANT_BAGGAGE_KEY,
    refuse_incoming_tenant,
    release_tenant,
    reset_tenant,
    set_tenant,
    without_tenant_baggage,
)
from ...middleware import adopt_current_span
from ...observation import Observation, make_current, restore_context
from ...propagation import PROPAGATION_KEYS, extract


class current:
    """Make an observation's span (and a tenant) current for a block (no-op for None); ``refused``:
    no caller's tenant stands in either (``refuse_incoming_tenant``: ``tenant_from_call`` failed)."""

    __slots__ = ("baggage", "obs", "refused", "refused_token", "tenant", "tenant_token", "token")

    def __init__(self, obs: Observation | None, tenant: str | None = None,
                 entries: Mapping[str, object] | None = None, refused: bool = False) -> None:
        self.obs = obs
        self.tenant = tenant
        self.baggage = entries
        self.refused = refused
        self.token: Any = None
        self.tenant_token: Any = None
        self.refused_token: Any = None

    def __enter__(self) -> None:
        if self.obs is not None:
            self.token = _make_current_with(self.obs, self.baggage)
        if self.tenant is not None:
            self.tenant_token = set_tenant(self.tenant)
        if self.refused:
            self.refused_token = refuse_incoming_tenant()

    def __exit__(self, *exc: object) -> None:
        if self.tenant_token is not None:
            reset_tenant(self.tenant_token)
            self.tenant_token = None
        if self.refused_token is not None:
            release_tenant(self.refused_token)
            self.refused_token = None
        restore_context(self.token)


def _make_current_with(obs: Observation, entries: Mapping[str, object] | None) -> object | None:
    """``make_current``, with ``entries`` as baggage too and without a tenant entry; a token for
    ``restore_context``."""
    try:
        ctx = otel_context.get_current()
        if entries or baggage.get_baggage(TENANT_BAGGAGE_KEY, ctx) is not None:
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
    if not joined.is_valid:  # nearly always
        return incoming
    remote = trace.get_current_span(incoming).get_span_context()
    if joined.trace_id != remote.trace_id if remote.is_valid else getattr(outer, "kind", None) is not SpanKind.SERVER:
        return incoming
    if tenant is not None:
        adopt_current_span(tenant)
    return None


def caller_context(metadata: Any) -> Any:
    """The context a call's metadata names (``extract``), given only its trace context and baggage
    entries, the ones read: for a caller that sends none it has nothing to do, and it makes no pass
    per header over the others. Metadata of another shape is handed on whole, for it to judge."""
    try:
        pairs: Any = [(key, value) for key, value in metadata or ()
                      if isinstance(key, str) and key.lower() in PROPAGATION_KEYS]
    except Exception:
        pairs = tuple(metadata or ())
    return extract(pairs)


def incoming_baggage(ctx: Any) -> Mapping[str, object] | None:
    """The caller's baggage entries but its tenant, or None: current while the handler runs, so
    that its own calls carry them on, as an otel-go (otelgrpc) server does and the HTTP middleware
    does. The tenant never travels on as sent (see ``propagation.inject``)."""
    entries = baggage.get_all(ctx)
    if not entries or (len(entries) == 1 and TENANT_BAGGAGE_KEY in entries):
        return None
    return {key: value for key, value in entries.items() if key != TENANT_BAGGAGE_KEY}
