"""Making a gRPC call's span current (with the caller's other baggage entries, and a tenant) for
a block of the server's handler."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.trace import set_span_in_context

from ..._internal import guarded_failure
from ...context import reset_tenant, set_tenant
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
        if self.obs is not None and self.baggage:
            self.token = _make_current_with(self.obs, self.baggage)
        elif self.obs is not None:
            self.token = make_current(self.obs)
        if self.tenant is not None:
            self.tenant_token = set_tenant(self.tenant)

    def __exit__(self, *exc: object) -> None:
        if self.tenant_token is not None:
            reset_tenant(self.tenant_token)
            self.tenant_token = None
        restore_context(self.token)


def _make_current_with(obs: Observation, entries: Mapping[str, object]) -> object | None:
    """``make_current``, with ``entries`` as baggage too; a token for ``restore_context``."""
    try:
        ctx = otel_context.get_current()
        for key, value in entries.items():
            ctx = baggage.set_baggage(key, value, ctx)
        return otel_context.attach(set_span_in_context(obs.span, ctx))
    except Exception as exc:
        guarded_failure("grpc.attach", exc)
        return make_current(obs)
