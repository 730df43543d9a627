"""``trust_incoming_tenant`` is one switch for the process: on for an internal gRPC service, it let a
public HTTP endpoint's caller with no auth (the tenant function answering None) name any
customer's tenant in its baggage, and so the project its spans went to. A middleware given
``trust_incoming_tenant=False`` never takes a caller's tenant, whatever the setting; a tenant the
service's own code put in scope still stands."""

from __future__ import annotations

import asyncio
from typing import Any

import autotrace
from autotrace.middleware import TenantASGIMiddleware, TenantWSGIMiddleware
from tests.helpers import Traced

FORGED = [(b"baggage", b"autotrace.tenant=victim")]


def _asgi(seen: list[Any]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        with autotrace.start_chain("handler"):
            seen.append(autotrace.current_tenant())
    return app


def _call(app: Any, kind: str = "http") -> None:
    async def noop(*args: Any) -> None:
        return None
    asyncio.run(app({"type": kind, "headers": FORGED, "path": "/"}, noop, noop))


def _wsgi_tenant(**options: Any) -> Any:
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(autotrace.current_tenant())
        start_response("200 OK", [])
        return [b""]

    TenantWSGIMiddleware(app, lambda environ: None, **options)({"HTTP_BAGGAGE": "autotrace.tenant=victim"},
                                                                lambda *a: None)
    return seen[0]


def test_a_public_middleware_takes_no_callers_tenant_under_a_trusting_setting(traced: Traced) -> None:
    autotrace.install(local_store="on", local_store_path=traced.path, integrations=(), trust_incoming_tenant=True)
    seen: list[Any] = []
    _call(TenantASGIMiddleware(_asgi(seen), lambda scope: None))  # an internal one: trusted as set
    _call(TenantASGIMiddleware(_asgi(seen), lambda scope: None, trust_incoming_tenant=False))
    assert seen == ["victim", None]
    assert (_wsgi_tenant(), _wsgi_tenant(trust_incoming_tenant=False)) == ("victim", None)
    assert autotrace.stats().get("tenant_resolver_errors", 0) == 0  # an answer of None is no failure


def test_the_services_own_tenant_still_stands(traced: Traced) -> None:
    autotrace.install(local_store="on", local_store_path=traced.path, integrations=(), trust_incoming_tenant=True)
    seen: list[Any] = []
    inner = TenantASGIMiddleware(_asgi(seen), lambda scope: None, trust_incoming_tenant=False)

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        with autotrace.tenant("acme"):
            await inner(scope, receive, send)

    _call(outer)
    assert seen == ["acme"]
