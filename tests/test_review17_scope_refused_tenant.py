"""A service whose own tenant function fails (raises, or answers no tenant id) leaves the request
with no tenant, and no caller's claim stands in for it later: an MCP server behind
``TenantASGIMiddleware`` read the caller's tenant from ``_meta`` (``trust_incoming_tenant``), so the
tenant the service could not name was the one the caller said. Real MCP SDK over streamable HTTP
under uvicorn, on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autotrace.middleware import TenantASGIMiddleware
from tests.test_mcp import _http_turn, _install, _Recorder
from tests.test_web_frameworks import uvicorn_server


def _raises(scope: Any) -> str:
    raise LookupError("auth service down")


@pytest.mark.parametrize(("tenant_from_scope", "seen_tenant"), [
    (_raises, None),  # it failed: nobody's tenant
    (lambda scope: 42, None),  # no tenant id: as failed
    (lambda scope: None, "acme"),  # it answered that it does not know: the trusted caller's
    (lambda scope: "globex", "globex"),  # the service's own wins
])
def test_a_caller_never_names_the_tenant_the_service_could_not(tmp_path: Path, tenant_from_scope: Any,
                                                               seen_tenant: str | None) -> None:
    _install(tmp_path, trust_incoming_tenant=True)
    tools = _Recorder()
    app = TenantASGIMiddleware(tools.server.streamable_http_app(), tenant_from_scope=tenant_from_scope)
    with uvicorn_server(app) as base:
        _http_turn(f"{base}/mcp", {})  # the caller's baggage in _meta names acme
    [seen] = tools.seen
    assert seen["meta"]["baggage"] == "autotrace.tenant=acme"
    assert seen["tenant"] == seen_tenant
