"""``trust_incoming_tenant=False`` on a public endpoint's middleware: no caller names its requests'
tenant, also when an outer middleware of the app (trusting, as the process is set) took the
caller's baggage tenant before it, and a value that is not True (``0``, ``None``) never trusts."""

from __future__ import annotations

from typing import Any

import autotrace
from autotrace.middleware import TenantASGIMiddleware, TenantWSGIMiddleware
from tests.helpers import Traced
from tests.test_review20_propagation_public_middleware import _asgi as _app
from tests.test_review20_propagation_public_middleware import _call


def test_a_public_sub_app_under_a_trusting_app_middleware_takes_no_callers_tenant(traced: Traced) -> None:
    autotrace.install(local_store="on", local_store_path=traced.path, integrations=(), trust_incoming_tenant=True)
    seen: list[Any] = []
    public = TenantASGIMiddleware(_app(seen), lambda scope: None, trust_incoming_tenant=False)
    for kind in ("http", "websocket"):
        _call(TenantASGIMiddleware(public, lambda scope: None), kind)  # the app's own, around every path
    inner_wsgi: list[Any] = []

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        inner_wsgi.append(autotrace.current_tenant())
        return [b""]

    app = TenantWSGIMiddleware(TenantWSGIMiddleware(wsgi, lambda e: None, trust_incoming_tenant=False), lambda e: None)
    app({"HTTP_BAGGAGE": "autotrace.tenant=victim"}, lambda *a: None)
    assert (seen, inner_wsgi) == ([None, None], [None])
    (a, b) = [r for r in traced.records() if r["name"] == "handler"]
    assert (a["tenant"], b["tenant"]) == (None, None)


def test_a_public_sub_app_keeps_a_tenant_the_services_own_code_named(traced: Traced) -> None:
    autotrace.install(local_store="on", local_store_path=traced.path, integrations=(), trust_incoming_tenant=True)
    seen: list[Any] = []
    public = TenantASGIMiddleware(_app(seen), lambda scope: None, trust_incoming_tenant=False)
    _call(TenantASGIMiddleware(public, lambda scope: "acme"))
    assert seen == ["acme"]


def test_only_true_trusts(traced: Traced) -> None:
    autotrace.install(local_store="on", local_store_path=traced.path, integrations=(), trust_incoming_tenant=True)
    seen: list[Any] = []
    for value in (0, None, "false"):
        _call(TenantASGIMiddleware(_app(seen), lambda scope: None, trust_incoming_tenant=value))
    assert seen == [None, None, None]
