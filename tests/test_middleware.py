"""ASGI and WSGI middleware: tenant from the request, incoming trace context, baggage trust."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import autotrace
from autotrace import propagation
from autotrace.middleware import TenantASGIMiddleware, TenantWSGIMiddleware
from tests.helpers import Traced, shape

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _asgi_app(seen: list[Any]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        with autotrace.start_chain("handler") as chain:
            seen.append((autotrace.current_tenant(), chain.trace_id))

    return app


def _call_asgi(app: Any, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {"type": "http", "headers": headers, "path": "/"}

    async def noop(*args: Any) -> None:
        return None

    asyncio.run(app(scope, noop, noop))


def test_asgi_sets_tenant_and_joins_the_incoming_trace(traced: Traced) -> None:
    seen: list[Any] = []
    app = TenantASGIMiddleware(_asgi_app(seen), tenant_from_scope=lambda scope: dict(scope["headers"]).get(
        b"x-customer", b"").decode() or None)
    _call_asgi(app, [(b"x-customer", b"acme"), (b"traceparent", PARENT.encode())])
    assert seen == [("acme", "0af7651916cd43dd8448eb211c80319c")]
    (record,) = traced.records()
    assert record["tenant"] == "acme" and record["parent_id"] == "b7ad6b7169203331"
    assert autotrace.current_tenant() is None


def test_asgi_baggage_tenant_needs_trust(tmp_path) -> None:
    for trust, expected in ((False, None), (True, "globex")):
        autotrace.install(local_store="on", local_store_path=tmp_path / f"{trust}.db", integrations=(),
                          trust_incoming_tenant=trust)
        seen: list[Any] = []
        _call_asgi(TenantASGIMiddleware(_asgi_app(seen)), [(b"baggage", b"autotrace.tenant=globex")])
        assert seen[0][0] == expected


def test_asgi_raising_tenant_function_leaves_request_untenanted(traced: Traced) -> None:
    def broken(scope: Any) -> str:
        raise KeyError("no auth")

    seen: list[Any] = []
    _call_asgi(TenantASGIMiddleware(_asgi_app(seen), broken), [])
    assert seen[0][0] is None and autotrace.stats()["tenant_resolver_errors"] == 1


def test_wsgi_sets_tenant(traced: Traced) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with autotrace.start_span("wsgi-handler"):
            with autotrace.start_tool("tool"):
                pass
        start_response("200 OK", [])
        return [autotrace.current_tenant().encode()]

    wrapped = TenantWSGIMiddleware(app, tenant_from_environ=lambda env: env.get("HTTP_X_CUSTOMER"))
    body = wrapped({"HTTP_X_CUSTOMER": "initech", "HTTP_TRACEPARENT": PARENT}, lambda *a: None)
    assert body == [b"initech"]
    records = traced.records()
    assert shape(records) == [("span", "wsgi-handler", [("tool", "tool", [])])]
    assert {r["tenant"] for r in records} == {"initech"}


def _outgoing_from(kind: str, resolve: Any, baggage_header: str) -> tuple[str | None, set[str]]:
    """Call an ASGI or WSGI app through the middleware; return the tenant in scope and the baggage
    entries an onward call made by the app would carry."""
    seen: list[Any] = []

    def record() -> None:
        entries = propagation.inject({}).get("baggage", "").split(",")
        seen.append((autotrace.current_tenant(), set(entries)))

    if kind == "asgi":
        async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
            record()

        _call_asgi(TenantASGIMiddleware(asgi_app, resolve), [(b"baggage", baggage_header.encode())])
    else:
        def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
            record()
            start_response("200 OK", [])
            return [b""]

        TenantWSGIMiddleware(wsgi_app, resolve)({"HTTP_BAGGAGE": baggage_header}, lambda *a: None)
    return seen[0]


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
@pytest.mark.parametrize(
    ("trust", "resolved", "tenant", "outgoing"),
    [
        (False, None, None, {"other=1"}),  # anonymous request at an untrusting edge: never forwarded
        (False, "acme", "acme", {"other=1", "autotrace.tenant=acme"}),
        (True, "acme", "acme", {"other=1", "autotrace.tenant=acme"}),  # the resolved tenant wins
        (True, None, "victim", {"other=1", "autotrace.tenant=victim"}),  # adopted from a trusted caller
    ],
)
def test_incoming_tenant_baggage_is_forwarded_only_as_the_tenant_in_scope(
        tmp_path, kind: str, trust: bool, resolved: str | None, tenant: str | None, outgoing: set[str]) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(),
                      trust_incoming_tenant=trust)
    seen = _outgoing_from(kind, lambda request: resolved, "autotrace.tenant=victim,other=1")
    assert seen == (tenant, outgoing)


def test_malformed_incoming_baggage_is_counted_and_never_quoted_in_the_logs(
        traced: Traced, caplog: pytest.LogCaptureFixture) -> None:
    hostile = "card=4111111111111111 not a pair,ok=1,\u00e9t\u00e9=x"
    seen: list[Any] = []
    app = TenantASGIMiddleware(_asgi_app(seen))
    with caplog.at_level("DEBUG"):
        for _ in range(3):  # three requests: one line from autotrace, none per request
            _call_asgi(app, [(b"baggage", hostile.encode("utf-8"))])
        propagation.extract([("baggage", hostile)])  # gRPC metadata, read by the server interceptor
    assert len(seen) == 3
    assert "4111111111111111" not in caplog.text and "card=" not in caplog.text
    assert [r.name for r in caplog.records if r.name != "asyncio"] == ["autotrace"]
    assert autotrace.stats()["propagation_invalid_baggage"] >= 4


def test_asgi_headers_given_as_text_by_a_lax_server_are_read(traced: Traced) -> None:
    seen: list[Any] = []
    app = TenantASGIMiddleware(_asgi_app(seen), tenant_from_scope=lambda scope: "acme")
    _call_asgi(app, [("traceparent", PARENT)])  # type: ignore[list-item]
    assert seen == [("acme", "0af7651916cd43dd8448eb211c80319c")]


@pytest.mark.parametrize(("headers", "expected"), [
    ([(b"baggage", b"autotrace.tenant=globex"), (b"baggage", b"autotrace.tenant=acme")], None),
    ([(b"baggage", b"autotrace.tenant=globex,k=v,autotrace.tenant=acme")], None),
    ([(b"baggage", b"autotrace.tenant=globex"), (b"baggage", b"k=v, autotrace.tenant = globex")], "globex"),
])
def test_trusted_baggage_naming_several_tenants_gives_none(tmp_path: Any, headers: Any, expected: Any) -> None:
    """Fail closed: whoever adds a later baggage header (a proxy, another SDK) must not choose the
    tenant; the same tenant named twice is still that tenant."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(),
                      trust_incoming_tenant=True)
    seen: list[Any] = []
    _call_asgi(TenantASGIMiddleware(_asgi_app(seen)), headers)
    assert seen[0][0] == expected
    assert autotrace.stats().get("propagation_conflicting_tenant", 0) == (1 if expected is None else 0)


@pytest.mark.parametrize("answer", ["raises", "raises_async", 42, "Acme Corp"])
def test_a_tenant_function_that_fails_gives_no_tenant_not_the_trusted_callers(tmp_path: Any, answer: Any) -> None:
    """Fail closed: with ``trust_incoming_tenant``, a function that raised or named no tenant id took
    the caller's baggage tenant (``victim``) while the log said the request had none; only its None
    leaves the choice to a trusted caller."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(),
                      trust_incoming_tenant=True)

    def resolve(_: Any) -> Any:
        if answer == "raises":
            raise KeyError("no auth")
        return answer

    async def resolve_async(_: Any) -> Any:
        raise KeyError("no auth")

    seen: list[Any] = []
    function = resolve_async if answer == "raises_async" else resolve
    _call_asgi(TenantASGIMiddleware(_asgi_app(seen), function), [(b"baggage", b"autotrace.tenant=victim")])
    wsgi_seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        wsgi_seen.append(autotrace.current_tenant())
        start_response("200 OK", [])
        return [b""]

    if answer != "raises_async":
        TenantWSGIMiddleware(app, resolve)({"HTTP_BAGGAGE": "autotrace.tenant=victim"}, lambda *a: None)
        assert wsgi_seen == [None]
    assert seen[0][0] is None
    assert autotrace.stats()["tenant_resolver_errors"] == (1 if answer == "raises_async" else 2)
    seen.clear()
    _call_asgi(TenantASGIMiddleware(_asgi_app(seen), lambda _: None), [(b"baggage", b"autotrace.tenant=victim")])
    assert seen[0][0] == "victim"  # None: the trusted caller's
