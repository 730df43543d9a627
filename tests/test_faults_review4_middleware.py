"""The tenant middleware's own steps never reach the request: a failure putting the request's
context and tenant in scope leaves it to run untraced (no tenant: its spans go nowhere), and one
taking them out again never replaces what the application raised or returned."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import autotrace
import autotrace.middleware as middleware
from autotrace import _internal
from autotrace.middleware import TenantASGIMiddleware, TenantWSGIMiddleware
from tests.helpers import Traced


class Broken(Exception):
    pass


class AppFailed(Exception):
    pass


def _raising(*args: Any, **kwargs: Any) -> Any:
    raise Broken("autotrace's own bug")


def _asgi(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"x-tenant", b"acme")]}
    asyncio.run(TenantASGIMiddleware(app, tenant_from_scope=lambda s: "acme")(scope, receive, send))
    return sent


async def _answering(scope: Any, receive: Any, send: Any) -> None:
    with autotrace.start_span("handler"):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": repr(autotrace.current_tenant()).encode()})


async def _failing(scope: Any, receive: Any, send: Any) -> None:
    raise AppFailed("the application's own")


@pytest.mark.parametrize(("step", "tenant"), [("set_tenant", b"None"), ("leave_other_tenants_trace", b"'acme'"),
                                              ("adopt_current_span", b"'acme'")])
def test_a_failure_entering_the_request_leaves_it_to_run_as_far_as_it_got(
        traced: Traced, monkeypatch: pytest.MonkeyPatch, step: str, tenant: bytes) -> None:
    """Its tenant set or not (then none: its spans go nowhere), the request is served."""
    monkeypatch.setattr(middleware, step, _raising)
    sent = _asgi(_answering)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == tenant
    assert _internal.stats()["internal_errors.middleware.enter"] == 1
    assert autotrace.current_tenant() is None  # nothing stays behind


@pytest.mark.parametrize("step", ["back_in_trace", "reset_tenant"])
def test_a_failure_leaving_the_request_never_replaces_the_applications_error(
        traced: Traced, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    if step == "back_in_trace":  # as if the request had left another tenant's trace
        monkeypatch.setattr(middleware, "leave_other_tenants_trace", lambda *args: ("left", None))
    monkeypatch.setattr(middleware, step, _raising)
    with pytest.raises(AppFailed, match="the application's own"):
        _asgi(_failing)
    assert _internal.stats()["internal_errors.middleware.exit"] == 1


def test_a_failing_wsgi_entry_still_serves_the_request(traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware, "set_tenant", _raising)
    started: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [repr(autotrace.current_tenant()).encode()]

    body = TenantWSGIMiddleware(app, tenant_from_environ=lambda e: "acme")(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda status, headers: started.append(status))
    assert (started, list(body)) == (["200 OK"], [b"None"])
    assert _internal.stats()["internal_errors.middleware.enter"] == 1
