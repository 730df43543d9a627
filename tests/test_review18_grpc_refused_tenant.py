"""A server's ``tenant_from_call`` that raises leaves the call with no tenant, and, as a failed
tenant function in the ASGI/WSGI middleware (``refuse_incoming_tenant``), no caller's tenant stands
in later in that call either: code in the handler that reads the caller's baggage again (an in-process
WSGI app behind ``TenantWSGIMiddleware``, an MCP server's request) must not take the tenant the caller
sent, though ``trust_incoming_tenant`` is set. Before, it did. The next call on the same thread, whose
function names none (None), still takes the trusted caller's: the refusal is the failed call's only.

Real grpcio servers (sync, and grpc.aio with an async and a sync streaming handler) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import autotrace
from autotrace.middleware import TenantWSGIMiddleware
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.test_grpc_tenant_from_call import Aio, Sync, _calls, _install, _one


def _failing_when_asked(details: Any, context: Any) -> str | None:
    if ("x-fail", "1") in tuple(details.invocation_metadata or ()):
        raise RuntimeError("the auth service is down")
    return None


def _inner_tenant(context: Any) -> dict[str, Any]:
    """What an in-process WSGI app, given the call's baggage as its request's, sees as its tenant."""
    seen: dict[str, Any] = {}
    baggage = dict(context.invocation_metadata()).get("baggage", "")

    def app(environ: Any, start_response: Any) -> list[bytes]:
        seen["inner"] = autotrace.current_tenant()
        start_response("200 OK", [])
        return [b""]

    body = TenantWSGIMiddleware(app)({"HTTP_BAGGAGE": baggage, "REQUEST_METHOD": "GET"}, lambda *a: None)
    list(body)
    return {"handler": autotrace.current_tenant(), **seen}


class _Servicer(Sync):
    def Unary(self, request: Any, context: Any) -> dict[str, Any]:
        return _inner_tenant(context)

    def ServerStream(self, request: Any, context: Any) -> Iterator[dict[str, Any]]:
        yield _inner_tenant(context)


class _AioServicer(Aio):
    """An async handler, and a sync stream (grpc.aio reads it on its thread pool)."""

    async def Unary(self, request: Any, context: Any) -> dict[str, Any]:
        return _inner_tenant(context)

    def ServerStream(self, request: Any, context: Any) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        yield _inner_tenant(context)


@pytest.mark.parametrize(("asyncio_server", "servicer", "shape"), [
    (False, _Servicer(), "Unary"), (False, _Servicer(), "ServerStream"),
    (True, _AioServicer(), "Unary"), (True, _AioServicer(), "ServerStream")])
def test_a_raising_tenant_from_call_refuses_the_callers_tenant_for_the_whole_call(
        rx: OtlpReceiver, asyncio_server: bool, servicer: Any, shape: str) -> None:
    _install(rx, grpc_tenant_from_call=_failing_when_asked, trust_incoming_tenant=True)
    replies = _calls(asyncio_server, servicer, [(shape, [("x-fail", "1")]), (shape, [])],
                     tenant="acme")  # the caller's tenant travels as baggage
    assert [_one(r) for r in replies] == [{"handler": None, "inner": None}, {"handler": "acme", "inner": "acme"}]
    assert autotrace.stats()["tenant_resolver_errors"] == 1
