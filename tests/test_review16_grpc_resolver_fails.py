"""A service's ``tenant_from_call`` that fails (raises, or names no tenant id) under a tenant an
interceptor of the service put in scope: the README's rule is that the call then runs with no
tenant, not a trusted caller's and not that scope's either (only a None leaves those). Before, the
interceptor's tenant stayed: the server span and the handler's spans went to its project, though
the function the service names its tenants with had not named it. Sync and grpc.aio servers, all
four call kinds; real grpcio on loopback, spans received per tenant key pair."""

from __future__ import annotations

from typing import Any

import pytest

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.test_grpc_tenant_from_call import (
    SHAPES,
    Aio,
    Sync,
    _AioAuth,
    _Auth,
    _calls,
    _exported,
    _install,
    _one,
    _raising,
    _raising_async,
)


@pytest.mark.parametrize(("asyncio_server", "resolver", "errors"), [
    (False, _raising, 4), (True, _raising, 4), (True, _raising_async, 4),
    (False, lambda details, context: "not a tenant!", 4)])
def test_a_failing_function_under_an_interceptors_tenant_gives_the_call_none(
        rx: OtlpReceiver, asyncio_server: bool, resolver: Any, errors: int) -> None:
    _install(rx, grpc_tenant_from_call=resolver, trust_incoming_tenant=True)
    replies = _calls(asyncio_server, Aio() if asyncio_server else Sync(),
                     [(shape, [("baggage", "autotrace.tenant=acme")]) for shape in SHAPES],
                     interceptors=[_AioAuth() if asyncio_server else _Auth()])
    assert [_one(r) for r in replies] == [{"shape": s, "tenant": None} for s in SHAPES]
    assert _exported(rx, 0) == []
    stats = autotrace.stats()
    # each call's client, server and handler spans, none sent as globex's (nor the caller's acme)
    assert (stats["tenant_resolver_errors"], stats["spans_dropped.no_tenant"]) == (errors, 12)
