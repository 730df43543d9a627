"""A tenant id given as a ``str`` subclass (a ``(str, Enum)`` member, as an application models its
tenants; a class of its own with a ``__str__`` for display) passed validation on its characters but
was kept as it was: the baggage sent to internal services was written from its ``str()``,
``T.ACME`` for ``acme``, which the trusting service downstream took as its tenant (another tenant's
project, or the unknown-tenant policy's). The tenant in scope is now a plain ``str`` of the
characters validated, from ``set_tenant``/``tenant()`` and from a middleware's tenant function.

Real Starlette apps under uvicorn, the front one calling the internal one over loopback httpx."""

from __future__ import annotations

import enum
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import autotrace
from autotrace import propagation
from autotrace.middleware import TenantASGIMiddleware
from tests.helpers import Traced
from tests.test_web_frameworks import uvicorn_server


class Tenant(str, enum.Enum):  # noqa: UP042 -- the mixin whose str() is "Tenant.ACME", as applications write it
    ACME = "acme"


class Named(str):
    """A tenant id that shows as its display name."""

    def __str__(self) -> str:
        return "Globex Corp"


@pytest.fixture
def trusting(tmp_path: Path) -> Traced:
    path = tmp_path / "traces.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=(), export_interval=0.05,
                      trust_incoming_tenant=True)
    return Traced(path)


@pytest.mark.parametrize("given", [Tenant.ACME, Named("globex")], ids=["str-enum", "str-subclass"])
def test_a_str_subclass_tenant_is_sent_on_as_its_characters(trusting: Traced, given: str) -> None:
    expected = str.__str__(given)
    with autotrace.tenant(given):
        carrier: dict[str, str] = {}
        propagation.inject(carrier, send_tenant=True)
        assert type(autotrace.current_tenant()) is str
    token = autotrace.set_tenant(given)
    try:
        assert type(autotrace.current_tenant()) is str and autotrace.current_tenant() == expected
    finally:
        autotrace.reset_tenant(token)
    assert carrier["baggage"] == f"autotrace.tenant={expected}"


def test_a_middleware_tenant_function_answering_a_str_enum_names_the_same_tenant_downstream(
        trusting: Traced) -> None:
    async def internal(request: Request) -> JSONResponse:
        with autotrace.start_chain("internal"):
            return JSONResponse({"tenant": autotrace.current_tenant()})

    async def front(request: Request) -> JSONResponse:
        tenant = autotrace.current_tenant()
        with autotrace.start_chain("front"):
            headers = propagation.inject({}, send_tenant=True)
            async with httpx.AsyncClient() as http:
                answer = await http.get(f"{request.base_url}internal/", headers=dict(headers))
        return JSONResponse({"front": tenant, "front_is_str": type(tenant) is str, **answer.json()})

    app = Starlette(routes=[
        Mount("/internal", TenantASGIMiddleware(Starlette(routes=[Route("/", internal)]), lambda scope: None)),
        Mount("/front", TenantASGIMiddleware(Starlette(routes=[Route("/", front)]), lambda scope: Tenant.ACME)),
    ])
    with uvicorn_server(app) as url:
        answer = httpx.get(f"{url}/front/", timeout=10).json()
    assert answer == {"front": "acme", "front_is_str": True, "tenant": "acme"}
    records = trusting.records()
    assert [(r["name"], r["tenant"]) for r in records] == [("front", "acme"), ("internal", "acme")]
    assert records[1]["trace_id"] == records[0]["trace_id"]


def test_a_resolvers_str_subclass_tenant_is_plain_text(tmp_path: Path) -> None:
    """The ``tenant_resolver``'s answer too: a span's tenant (its routing key, the credentials
    resolver's argument, the stored record's) is the plain text, never the member."""
    from autotrace.runtime import state

    autotrace.install(local_store="on", local_store_path=tmp_path / "traces.db", integrations=(),
                      export_interval=0.05, tenant_resolver=lambda: Tenant.ACME)
    try:
        resolved = state.pipeline.tenants.resolve()
        assert type(resolved) is str and resolved == "acme"
        with autotrace.start_span("work"):
            pass
        autotrace.flush()
        (record,) = Traced(tmp_path / "traces.db").records()
        assert type(record["tenant"]) is str and record["tenant"] == "acme"
    finally:
        autotrace.uninstall()
