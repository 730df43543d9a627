"""Cross-service propagation and tenancy, with real grpcio servers and clients on
loopback (sync and grpc.aio) and real ASGI/WSGI apps: which tenant wins when the server's own auth
and the caller's baggage disagree, what a grpc.aio call inherits from the code that started its
server, malformed tracestate, and the status of a client stream the server ended."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import grpc
import grpc.aio
import pytest

import autotrace
from autotrace.middleware import TenantASGIMiddleware, TenantWSGIMiddleware
from tests import grpc_services as svc
from tests.helpers import Traced

RPC = f"{svc.SERVICE}/Unary"
TOKENS = {"tok-acme": "acme"}
PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{PARENT_TRACE}-b7ad6b7169203331-01"


def _authenticated(details: Any) -> str | None:
    return TOKENS.get(dict(details.invocation_metadata or ()).get("authorization", ""))


class _Auth(grpc.ServerInterceptor):
    """The service's own auth: the token names the tenant, put in scope for the call."""

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        tenant = _authenticated(details)
        if tenant is not None:
            autotrace.set_tenant(tenant)
        return continuation(details)


class _AioAuth(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        tenant = _authenticated(details)
        if tenant is not None:
            autotrace.set_tenant(tenant)
        return await continuation(details)


def _server_side(records: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(name, tenant) of the server's spans: the server span (it has a parent) and what the handler made."""
    return [(r["name"], r["tenant"]) for r in records if r["parent_id"] is not None]


@pytest.mark.parametrize("asyncio_server", [False, True])
@pytest.mark.parametrize("ours_first", [True, False])
def test_the_servers_own_auth_wins_over_a_callers_baggage(tmp_path: Any, asyncio_server: bool,
                                                           ours_first: bool) -> None:
    """A caller authenticated as ``acme`` that sends ``autotrace.tenant=evil`` as baggage, to a
    server that trusts its callers' baggage: the tenant the server's auth interceptor put in scope
    wins (as the HTTP middleware's own function does), with autotrace's interceptor added by
    ``install()`` (first) or given after the auth one. The caller's baggage used to replace it:
    the handler ran as ``evil`` and acme's spans went to evil's project."""
    traced = svc.install(tmp_path, trust_incoming_tenant=True)
    auth: Any = _AioAuth() if asyncio_server else _Auth()
    interceptors = [auth] if ours_first else [auth, svc_interceptor(asyncio_server)]

    async def scenario() -> dict[str, Any]:
        server, port = await svc.start_server(asyncio_server, svc.handler(
            svc.AioEcho() if asyncio_server else svc.Echo()), interceptors=interceptors)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with autotrace.tenant("evil"):
                    return await svc.Stub(channel).Unary({"text": "x"}, metadata=[("authorization", "tok-acme")])
        finally:
            await svc.stop_server(server)

    reply = asyncio.run(scenario())
    inner = "inner-aio-unary" if asyncio_server else "inner-unary"
    assert reply["tenant"] == "acme"
    assert _server_side(traced.records()) == [(RPC, "acme"), (inner, "acme")]


def svc_interceptor(asyncio_server: bool) -> Any:
    from autotrace.integrations.grpc import server_interceptor

    return server_interceptor(asyncio=asyncio_server)


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_trusted_baggage_still_gives_the_tenant_when_the_server_names_none(tmp_path: Any,
                                                                            asyncio_server: bool) -> None:
    """The other side of the rule: with no tenant from the server's own code, a trusted caller's is used."""
    traced = svc.install(tmp_path, trust_incoming_tenant=True)

    async def scenario() -> dict[str, Any]:
        server, port = await svc.start_server(asyncio_server, svc.handler(
            svc.AioEcho() if asyncio_server else svc.Echo()), interceptors=[_AioAuth() if asyncio_server else _Auth()])
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with autotrace.tenant("globex"):
                    return await svc.Stub(channel).Unary({"text": "x"})
        finally:
            await svc.stop_server(server)

    assert asyncio.run(scenario())["tenant"] == "globex"
    inner = "inner-aio-unary" if asyncio_server else "inner-unary"
    assert _server_side(traced.records()) == [(RPC, "globex"), (inner, "globex")]


def test_http_middleware_keeps_a_tenant_an_outer_layer_set(tmp_path: Any) -> None:
    """An auth layer outside the middleware that puts the tenant in scope itself (``autotrace.tenant``)
    and no ``tenant_from_scope``/``tenant_from_environ``: trusted baggage naming another tenant no
    longer replaces it, under ASGI and WSGI."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "m.db", integrations=(),
                      trust_incoming_tenant=True)
    traced = Traced(tmp_path / "m.db")
    seen: list[str | None] = []

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        with autotrace.start_chain("asgi-handler"):
            seen.append(autotrace.current_tenant())

    def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
        with autotrace.start_chain("wsgi-handler"):
            seen.append(autotrace.current_tenant())
        start_response("200 OK", [])
        return [b""]

    async def noop(*args: Any) -> None:
        return None

    async def authenticated_asgi() -> None:
        with autotrace.tenant("acme"):
            await TenantASGIMiddleware(asgi_app)(
                {"type": "http", "headers": [(b"baggage", b"autotrace.tenant=evil")]}, noop, noop)

    asyncio.run(authenticated_asgi())
    with autotrace.tenant("acme"):
        TenantWSGIMiddleware(wsgi_app)({"HTTP_BAGGAGE": "autotrace.tenant=evil"}, lambda *a: None)
    assert seen == ["acme", "acme"]
    assert [(r["name"], r["tenant"]) for r in traced.records()] == [("asgi-handler", "acme"), ("wsgi-handler", "acme")]


def test_aio_calls_do_not_inherit_the_scope_that_started_the_server(tmp_path: Any) -> None:
    """grpc.aio runs each call in a copy of the context ``server.start()`` ran in: a server started
    inside a tenant scope, a span and trace attributes ran every later call, from any caller, under
    that tenant (its spans in that tenant's project) with those attributes."""
    traced = svc.install(tmp_path, trust_incoming_tenant=False)

    async def scenario() -> dict[str, Any]:
        with autotrace.tenant("boot"), autotrace.trace_attributes(user_id="operator"), autotrace.start_span("startup"):
            server, port = await svc.start_server(True, svc.handler(svc.AioEcho()))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return await svc.Stub(channel).Unary({"text": "x"})
        finally:
            await svc.stop_server(server)

    assert asyncio.run(scenario())["tenant"] is None
    records = {r["name"]: r for r in traced.records() if r["name"] != "startup"}
    server_span = next(r for r in records.values() if r["name"] == RPC and r["parent_id"] is not None)
    assert [(r["tenant"], r["user_id"]) for r in (server_span, records["inner-aio-unary"])] == [(None, None)] * 2


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_a_malformed_tracestate_is_counted_never_quoted_in_the_logs(tmp_path: Any, asyncio_server: bool,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """OTel's tracestate parser warns quoting each malformed member: whatever a caller sent reached
    the application's logs on every request (as baggage did before it was filtered). It is counted
    now, said once; the traceparent still joins the caller's trace."""
    hostile = [("traceparent", PARENT), ("tracestate", "ok=1,=caller-text-1,=caller-text-2")]
    traced = svc.install(tmp_path, trust_incoming_tenant=False)

    async def scenario() -> None:
        server, port = await svc.start_server(asyncio_server, svc.handler(
            svc.AioEcho() if asyncio_server else svc.Echo()))
        # the channel function as grpc has it (not traced): the metadata goes out as given
        with grpc.insecure_channel.__wrapped__(f"127.0.0.1:{port}") as raw:
            try:
                for _ in range(2):
                    await asyncio.to_thread(svc.Stub(raw).Unary, {"text": "x"}, metadata=hostile)
            finally:
                await svc.stop_server(server)

    with caplog.at_level(logging.DEBUG):
        asyncio.run(scenario())
    assert not [r for r in caplog.records if "caller-text" in r.getMessage()]
    assert autotrace.stats().get("propagation_invalid_tracestate") == 2
    assert {r["trace_id"] for r in traced.records() if r["name"] == RPC} == {PARENT_TRACE}


def _answer_then_abort(requests: Any, context: grpc.ServicerContext) -> Any:
    for _ in requests:
        yield {"x": 1}
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "no")


def test_an_aio_client_stream_the_server_ended_records_the_servers_status(tmp_path: Any) -> None:
    """A bidi call the server answers once and aborts while the client still writes: grpc.aio first
    gives the call INTERNAL "Internal error from Core" (its failed write), calling back, then the
    server's status, which the application gets, without calling back. About one call in ten
    recorded INTERNAL while the application saw PERMISSION_DENIED (grpc's own race gives the
    application INTERNAL now and then too: the span says what the application got)."""
    traced = svc.install(tmp_path)
    handler = grpc.method_handlers_generic_handler("t.S", {
        "A": grpc.stream_stream_rpc_method_handler(_answer_then_abort, **svc.SERVER_KW)})

    async def scenario() -> list[str]:
        raised: list[str] = []
        server, port = await svc.start_server(False, handler)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                bidi = channel.stream_stream("/t.S/A", **svc.CLIENT_KW)
                for _ in range(100):
                    with pytest.raises(grpc.RpcError) as error:
                        async for _reply in bidi(iter([{}, {}])):
                            pass
                    raised.append(error.value.code().name)
        finally:
            await svc.stop_server(server)
        return raised

    with autotrace.start_span("caller") as root:
        raised = asyncio.run(scenario())
    # grpc itself now and then gives the application INTERNAL too: the span must say what it got
    assert Counter(raised)["PERMISSION_DENIED"] > 90
    client_spans = [r for r in traced.records() if r["parent_id"] == root.id]
    assert [r["status_message"].split(":")[0] for r in client_spans] == raised


class _HandlerAuth(svc.Echo):
    """A service that names the tenant inside its handler, after its server span started."""

    def Unary(self, request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        with autotrace.tenant("t"):
            return super().Unary(request, context)


@pytest.mark.parametrize("where", ["interceptor", "handler"])
def test_where_a_grpc_service_names_its_tenant_decides_what_its_server_span_is(rx: Any, where: str) -> None:
    """Named in an interceptor's ``intercept_service``, the tenant covers the server span and what the
    handler does; named inside the handler, only the handler's spans: the server span started
    without one and is dropped, counted (README, Tenancy), never sent elsewhere."""
    from autotrace.export.credentials import Credentials

    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=("grpc",), export_interval=0.05,
                      credentials={"t": Credentials("pk-t", "sk-t", host=rx.endpoint)})
    TOKENS["tok-t"] = "t"
    try:
        interceptors = [_Auth()] if where == "interceptor" else []
        servicer = svc.Echo() if where == "interceptor" else _HandlerAuth()

        async def scenario() -> dict[str, Any]:
            server, port = await svc.start_server(False, svc.handler(servicer), interceptors=interceptors)
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    return await svc.Stub(channel).Unary({"text": "x"}, metadata=[("authorization", "tok-t")])
            finally:
                await svc.stop_server(server)

        dropped = autotrace.stats().get("spans_dropped.no_tenant", 0)
        assert asyncio.run(scenario())["tenant"] == "t"
        autotrace.flush(5)
    finally:
        del TOKENS["tok-t"]
    names = sorted(span.name for span in rx.spans)
    # the caller's own client span has no tenant here: dropped in both cases
    if where == "interceptor":
        assert names == sorted([RPC, "inner-unary"])
        assert autotrace.stats()["spans_dropped.no_tenant"] == dropped + 1
    else:
        assert names == ["inner-unary"]
        assert autotrace.stats()["spans_dropped.no_tenant"] == dropped + 2
