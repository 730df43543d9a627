"""A ``grpc.aio`` server made after ``install()`` with ``server_interceptor(asyncio=True, ...)`` given
first (to pass it a ``tenant_from_call``): its calls start from an empty scope, as those of a server
``install()`` gives its own interceptor to. Before, they ran in a copy of the scope that ran
``server.start()``: a call whose function named no tenant took the tenant of the code that started
the server (sent to that tenant's project) and its span (each call a child of it). An interceptor
given after the application's own is left as it is: what those set for the call is kept."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import grpc
import grpc.aio

import autotrace
from autotrace.integrations import grpc as grpc_integration
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.grpc_services import CLIENT_KW
from tests.test_grpc_tenant_from_call import SERVICE, Aio, _AioAuth, _from_metadata, _handler, _install


def _started_under_a_tenant(interceptors: list[Any], calls: list[tuple[tuple[str, str], ...]]) -> list[Any]:
    """Replies to unary ``calls`` (their metadata) of a server started under tenant acme's span."""
    async def scenario() -> list[Any]:
        server = grpc.aio.server(interceptors=interceptors)
        server.add_generic_rpc_handlers((_handler(Aio()),))
        port = server.add_insecure_port("127.0.0.1:0")
        with autotrace.tenant("acme"), autotrace.start_span("startup"):
            await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return [await channel.unary_unary(f"/{SERVICE}/Unary", **CLIENT_KW)({}, metadata=metadata)
                        for metadata in calls]
        finally:
            await server.stop(0)

    return asyncio.run(scenario())


def _exported(rx: OtlpReceiver, count: int) -> list[tuple[str, str, str | None, bool]]:
    """(key pair's public key, span name, tenant, whether it is in the startup span's trace) of
    each span exported."""
    assert autotrace.flush(5.0)
    spans = rx.wait_for_spans(count)
    startup = next(s.trace_id for s in spans if s.name == "startup")
    return sorted((base64.b64decode(s.headers["authorization"].split()[1]).decode().split(":")[0], s.name,
                   s.attributes.get("autotrace.tenant"), s.trace_id == startup) for s in spans)


def test_calls_of_a_server_given_our_interceptor_first_do_not_inherit_the_starters_scope(rx: OtlpReceiver) -> None:
    _install(rx)
    given = grpc_integration.server_interceptor(asyncio=True, tenant_from_call=_from_metadata)
    replies = _started_under_a_tenant([given], [(), (("x-tenant", "globex"),)])
    assert replies == [{"shape": "Unary", "tenant": None}, {"shape": "Unary", "tenant": "globex"}]
    # the startup span (acme's); globex's call is a trace of its own; the call naming none is dropped
    assert _exported(rx, 3) == [("pk-acme", "startup", "acme", True),
                                ("pk-globex", f"{SERVICE}/Unary", "globex", False), ("pk-globex", "work", "globex", False)]
    assert autotrace.stats()["spans_dropped.no_tenant"] == 4  # both client spans, the untenanted call's two
    assert given.isolate is False  # the application's object is unchanged


def test_ours_given_after_the_applications_interceptor_keeps_the_scope_it_sets(rx: OtlpReceiver) -> None:
    _install(rx)
    replies = _started_under_a_tenant([_AioAuth(), grpc_integration.server_interceptor(asyncio=True)], [()])
    assert replies == [{"shape": "Unary", "tenant": "globex"}]
