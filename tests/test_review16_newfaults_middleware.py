"""The middleware reads the request's tenant from its function's answer inside ``_enter`` (since the
answer ``FAILED`` changed what it does there); a failure of autotrace's in that reading raised into
the request (a 500 from every request, the application never run). Now it leaves the request with
no tenant, as a failed function does (not the one in scope before), counted and logged.

Real Starlette through httpx's ASGI transport (the app runs in the calling task's context)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import autotrace
from autotrace import middleware
from autotrace.middleware import TenantASGIMiddleware
from tests.helpers import Traced


async def _who(request: Request) -> JSONResponse:
    with autotrace.start_span("handler"):
        return JSONResponse({"tenant": autotrace.current_tenant()})


def _failing(*_: Any) -> None:
    raise RuntimeError("internal")


def test_a_failure_reading_the_answer_leaves_the_request_served_with_no_tenant(
        traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware, "trusted_incoming_tenant", _failing)
    app = TenantASGIMiddleware(Starlette(routes=[Route("/", _who)]), tenant_from_scope=lambda scope: None)

    async def call() -> list[Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            with autotrace.tenant("ops"):  # in scope where the request runs
                response = await client.get("/")
                return [response.status_code, response.json(), autotrace.current_tenant()]

    assert asyncio.run(call()) == [200, {"tenant": None}, "ops"]
    assert [(r["name"], r["tenant"]) for r in traced.records()] == [("handler", None)]
    assert autotrace.stats()["internal_errors.middleware.enter"] == 1
