"""ASGI and WSGI middleware that put each request's tenant (and incoming trace context) in scope.

The tenant comes from a function of the request that you supply (typically reading what your auth
middleware established). A tenant arriving as baggage from another service is used only when
``trust_incoming_tenant`` is configured, and only if your function found none. Either way the
incoming tenant entry is removed from the baggage the request carries on: outgoing calls carry only
the tenant in scope here. Headers are read as gRPC metadata is (``autotrace.propagation.extract``:
W3C trace context and baggage, whatever the global propagator, with the same limits and counters).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import context as otel_context

from ._internal import count, log_once
from .context import reset_tenant, set_tenant, tenant_from_baggage, valid_tenant, without_tenant_baggage
from .propagation import extract
from .runtime import state


def _trusted() -> bool:
    return bool(state.settings is not None and state.settings.trust_incoming_tenant)


def _tenant_of(resolve: Callable[[Any], str | None] | None, request: Any, carrier_ctx: Any) -> str | None:
    tenant = None
    if resolve is not None:
        try:
            tenant = resolve(request)
        except Exception as exc:
            count("tenant_resolver_errors")
            log_once(f"middleware_resolver:{type(exc).__name__}", "autotrace: tenant function raised %s; "
                     "request has no tenant", type(exc).__name__)
            tenant = None
        if tenant is not None and not valid_tenant(tenant):
            count("tenant_resolver_errors")
            log_once(f"middleware_resolver_value:{type(tenant).__name__}", "autotrace: tenant function returned "
                     "a %s that is no tenant id (1-128 characters of [A-Za-z0-9._:@/-]); request has no tenant",
                     type(tenant).__name__)
            if inspect.iscoroutine(tenant):  # an async function: never awaited here
                tenant.close()
            tenant = None
    if tenant is None and _trusted():
        tenant = tenant_from_baggage(carrier_ctx)
    return tenant


def _enter(headers: Mapping[str, str], resolve: Callable[[Any], str | None] | None, request: Any) -> tuple[Any, Any]:
    # autotrace's W3C reader, as for gRPC metadata (limits, counters, a hostile header never raising),
    # not the global propagator: OTEL_PROPAGATORS=b3, say, left the tenant and the caller's trace unread
    ctx = extract(headers)
    tenant = _tenant_of(resolve, request, ctx)
    context_token = otel_context.attach(without_tenant_baggage(ctx))
    tenant_token = set_tenant(tenant) if tenant is not None else None
    return context_token, tenant_token


def _exit(tokens: tuple[Any, Any]) -> None:
    context_token, tenant_token = tokens
    if tenant_token is not None:
        reset_tenant(tenant_token)
    otel_context.detach(context_token)


def _text(value: Any) -> str:
    """An ASGI header name or value as text: bytes, as the specification says, or a string from a
    server that sends them so."""
    return value.decode("latin-1") if isinstance(value, bytes | bytearray) else str(value)


def _combined(raw: Iterable[Any]) -> dict[str, str]:
    """ASGI headers by lower-case name, a repeated one's values joined by commas (RFC 9110 5.3), as W3C
    baggage and tracestate require and WSGI servers do; a repeated traceparent thus reads as invalid
    (a new trace starts), as the W3C trace-context test suite expects."""
    values: dict[str, list[str]] = {}
    for name, value in raw:
        values.setdefault(_text(name).lower(), []).append(_text(value))
    return {name: ",".join(parts) for name, parts in values.items()}


class TenantASGIMiddleware:
    """``app = TenantASGIMiddleware(app, tenant_from_scope=lambda scope: scope["state"]["tenant"])``."""

    def __init__(self, app: Any, tenant_from_scope: Callable[[Mapping[str, Any]], str | None] | None = None) -> None:
        self.app = app
        self.tenant_from_scope = tenant_from_scope

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        tokens = _enter(_combined(scope.get("headers", ())), self.tenant_from_scope, scope)
        try:
            await self.app(scope, receive, send)
        finally:
            _exit(tokens)


class TenantWSGIMiddleware:
    """``app = TenantWSGIMiddleware(app, tenant_from_environ=lambda env: env.get("HTTP_X_TENANT"))``.

    The tenant is in scope while the application callable runs; a streamed response body that the
    server iterates afterwards is outside it.
    """

    def __init__(self, app: Any, tenant_from_environ: Callable[[Mapping[str, Any]], str | None] | None = None) -> None:
        self.app = app
        self.tenant_from_environ = tenant_from_environ

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_") and isinstance(value, str)
        }
        tokens = _enter(headers, self.tenant_from_environ, environ)
        try:
            return self.app(environ, start_response)
        finally:
            _exit(tokens)
