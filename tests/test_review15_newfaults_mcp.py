"""MCP faults (review 15): autotrace failing to tell whose a server's request is, during calls in
flight at once on one session. Real mcp SDK over stdio."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

import autotrace
from autotrace.integrations import _mcp_callbacks
from tests.test_mcp import _install
from tests.test_review15_mcp_concurrent_calls import _SERVER, _Callbacks


async def _turn(callbacks: _Callbacks) -> list[str]:
    """A session connected in one tenant's request, two calls of another tenant's in flight at once."""
    stdio = StdioServerParameters(command=sys.executable, args=["-c", _SERVER])
    with autotrace.tenant("globex"):
        async with Client(stdio, mode="legacy", sampling_callback=callbacks.sampling,
                          logging_callback=callbacks.logging) as client:
            async def call(q: str) -> str:
                with autotrace.content_capture(q != "secret"):
                    result = await client.call_tool("ask", {"q": q}, progress_callback=callbacks.progress)
                return str(result.content[0].text)  # type: ignore[union-attr]

            with autotrace.tenant("acme"), autotrace.start_chain("turn"):
                return list(await asyncio.gather(call("secret"), call("plain")))


def test_a_failure_telling_whose_a_servers_request_is_runs_it_in_no_ones_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sampling callbacks run in no tenant's state, content left out; the calls return as
    untraced; the failure is counted. Before: they ran as they were, in the state of the tenant that
    connected the session, the secret call's content recorded under that tenant."""
    def failing(*args: Any) -> Any:
        raise RuntimeError("cannot tell")

    traced = _install(tmp_path)
    monkeypatch.setattr(_mcp_callbacks, "_sender", failing)
    callbacks = _Callbacks()
    assert asyncio.run(_turn(callbacks)) == ["secret", "plain"]
    assert sorted((kind, tenant) for kind, _, tenant in callbacks.seen if kind == "sampling") == [
        ("sampling", None), ("sampling", None)]
    samples = [(r["input"], r["output"], r["tenant"]) for r in traced.records() if r["name"] == "sample"]
    assert samples == [(None, None, None), (None, None, None)]
    assert autotrace.stats()["internal_errors.mcp.callback"] == 2
