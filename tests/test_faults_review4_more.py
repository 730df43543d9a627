"""Autotrace's own internals failing during a real call (fourth review, second pass): the decorators,
gRPC (sync and asyncio, client and server), the MCP client, LlamaIndex and pgvector. The call returns
or raises exactly what it would untraced, the failure is counted (``internal_errors.*``), and every
observation started for it ends. Only autotrace's functions are made to raise; the libraries run for
real (grpcio on loopback, the MCP SDK in process, llama-index-core, Postgres with pgvector)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from llama_index.core.embeddings.mock_embed_model import MockEmbedding
from mcp import Client
from psycopg import errors

import autotrace
from autotrace.observation import Observation
from tests import grpc_services as svc
from tests.helpers import Traced
from tests.test_faults_review4 import InternalBug, _raise
from tests.test_mcp import _install as install_mcp
from tests.test_mcp import _weather
from tests.test_vs_pgvector import postgres  # noqa: F401  (the module's server, with its ``items``)


def _internal_errors() -> dict[str, int]:
    return {k.removeprefix("internal_errors."): v for k, v in autotrace.stats().items()
            if k.startswith("internal_errors.")}


# -- the decorators -----------------------------------------------------------------------------------
def _add(x: int) -> int:
    return x + 1


async def _aadd(x: int) -> int:
    return x + 1


def _count_to(x: int) -> Iterator[int]:
    yield x
    yield x + 1


async def _acount_to(x: int) -> AsyncIterator[int]:
    yield x
    yield x + 1


def _returns_a_coroutine(x: int) -> Any:
    return _aadd(x)


async def _collect(items: AsyncIterator[int]) -> list[int]:
    return [item async for item in items]


Run = Callable[[Callable[..., Any]], Any]
RUNS: dict[str, tuple[Callable[..., Any], Run, Any]] = {
    "function": (_add, lambda f: f(1), 2),
    "coroutine": (_aadd, lambda f: asyncio.run(f(1)), 2),
    "generator": (_count_to, lambda f: list(f(1)), [1, 2]),
    "async_generator": (_acount_to, lambda f: asyncio.run(_collect(f(1))), [1, 2]),
    "returns_a_coroutine": (_returns_a_coroutine, lambda f: asyncio.run(f(1)), 2),
}
#: (what is run, the internal made to raise, the typed fields given to ``observe``, what is counted)
DECORATED: dict[str, tuple[str, str, dict[str, Any], dict[str, int]]] = {
    "function.update": ("function", "update", {"model": "m"}, {"observe.begin": 1}),
    "function.set_input": ("function", "set_input", {}, {"observe.begin": 1}),
    "function.set_output": ("function", "set_output", {}, {"observe.end": 1}),
    "coroutine.set_input": ("coroutine", "set_input", {}, {"observe.begin": 1}),
    "coroutine.set_output": ("coroutine", "set_output", {}, {"observe.end": 1}),
    "generator.update": ("generator", "update", {"model": "m"}, {"observe.begin": 1}),
    "generator.set_output": ("generator", "set_output", {}, {"observe.end": 1}),
    "async_generator.set_output": ("async_generator", "set_output", {}, {"observe.end": 1}),
    "returns_a_coroutine.update": ("returns_a_coroutine", "update", {}, {"observe.begin": 1}),
}


@pytest.mark.parametrize("case", sorted(DECORATED))
def test_a_decorated_call_whose_observation_cannot_be_filled_in_returns_and_ends_it(
        traced: Traced, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """Recording the arguments, fields or result of an ``@observe`` call failed: the call returns
    what it returns undecorated (a function returning a coroutine raised autotrace's error), and
    its observation ends (it was left open for good, never exported)."""
    run_name, attribute, fields, counted = DECORATED[case]
    function, run, expected = RUNS[run_name]
    decorated = autotrace.observe(as_type="generation", **fields)(function)
    monkeypatch.setattr(Observation, attribute, _raise)
    assert run(decorated) == expected
    monkeypatch.undo()
    assert [r["name"] for r in traced.records()] == [function.__qualname__]
    assert _internal_errors() == counted


# -- gRPC ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("asyncio_server", [False, True])
def test_a_failed_grpc_call_whose_status_cannot_be_recorded_still_ends_both_spans(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asyncio_server: bool) -> None:
    """Recording the failed call's status failed: the client gets grpc's error with the server's
    status, and both the client's and the server's spans end (both were left open)."""
    traced = svc.install(tmp_path)

    async def scenario() -> grpc.StatusCode:
        server, port = await svc.start_server(asyncio_server, svc.handler(
            svc.AioEcho() if asyncio_server else svc.Echo()))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with pytest.raises(grpc.RpcError) as raised:
                    await svc.Stub(channel).Unary({"fail": True})
        finally:
            await svc.stop_server(server)
        return raised.value.code()

    monkeypatch.setattr(Observation, "record_error", _raise)
    code = asyncio.run(scenario())
    monkeypatch.undo()
    assert code is (grpc.StatusCode.PERMISSION_DENIED if asyncio_server else grpc.StatusCode.NOT_FOUND)
    assert [r["name"] for r in traced.records()] == [f"{svc.SERVICE}/Unary"] * 2
    assert _internal_errors() == {"grpc.finish": 2}


def test_a_failed_sync_grpc_call_whose_status_cannot_be_recorded_still_ends_its_span(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same with grpc's sync channel: its client span ended never."""
    traced = svc.install(tmp_path)
    server, port = svc.start_sync_server()
    monkeypatch.setattr(Observation, "record_error", _raise)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(grpc.RpcError) as raised:
            svc.Stub(channel).Unary({"fail": True})
    finally:
        server.stop(0)
    monkeypatch.undo()
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND and not isinstance(raised.value, InternalBug)
    assert [r["name"] for r in traced.records()] == [f"{svc.SERVICE}/Unary"] * 2
    assert _internal_errors() == {"grpc.finish": 2}


# -- the MCP client -----------------------------------------------------------------------------------
def test_an_mcp_call_whose_observation_cannot_be_filled_in_still_ends_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recording the client call's fields failed: the call returns the server's result, and the
    client's observation ends (it was left open, the call then ran untraced)."""
    traced = install_mcp(tmp_path)
    server, _ = _weather()

    async def turn() -> Any:
        async with Client(server) as client:
            return await client.call_tool("forecast", {"city": "Oslo"})

    real_update = Observation.update

    def update(obs: Observation, **fields: Any) -> Observation:
        if obs.name == "mcp.call_tool forecast":
            raise InternalBug("autotrace bug")
        return real_update(obs, **fields)

    monkeypatch.setattr(Observation, "update", update)
    result = asyncio.run(turn())
    monkeypatch.undo()
    assert result.structured_content == {"result": "sunny in Oslo"} and not result.is_error
    names = [r["name"] for r in traced.records()]
    assert names.count("mcp.call_tool forecast") == 1 and "forecast" in names
    assert _internal_errors() == {"mcp.call_tool": 1, "mcp.finish": 1}


# -- LlamaIndex ---------------------------------------------------------------------------------------
@pytest.mark.integrations("llama_index")
def test_a_llama_index_span_whose_observation_cannot_be_filled_in_still_ends_it(
        traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recording a just-started span's fields failed: the call returns the model's embedding, and
    its observation ends (it was never listed as open, so its span's exit did not end it)."""
    monkeypatch.setattr(Observation, "update", _raise)
    assert MockEmbedding(embed_dim=2).get_query_embedding("q") == [0.5, 0.5]
    monkeypatch.undo()
    assert [r["name"] for r in traced.records()] == ["MockEmbedding.get_query_embedding"]
    assert _internal_errors() == {"llama_index.new_span": 1, "llama_index.exit_span": 1}


# -- pgvector -----------------------------------------------------------------------------------------
MISSING = "SELECT id FROM missing ORDER BY embedding <-> %s::vector LIMIT 2"


def _declared_search(conn: psycopg.Connection[Any]) -> Any:
    return conn.cursor("named").execute(MISSING, ("[1,0,0]",))


def _streamed_search(conn: psycopg.Connection[Any]) -> Any:
    return list(conn.cursor().stream(MISSING, ("[1,0,0]",)))


@pytest.mark.integrations("pgvector")
@pytest.mark.parametrize("search", [_declared_search, _streamed_search])
def test_a_failed_pgvector_search_whose_error_cannot_be_recorded_raises_postgres_error(
        postgres: str, traced: Traced, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        search: Callable[[psycopg.Connection[Any]], Any]) -> None:
    """Recording the failed search's error failed: the caller gets psycopg's error (autotrace's
    replaced it), and the retrieval ends (it was left open)."""
    monkeypatch.setattr(Observation, "record_error", _raise)
    with psycopg.connect(postgres) as conn, pytest.raises(errors.UndefinedTable):
        search(conn)
    monkeypatch.undo()
    assert [r["name"] for r in traced.records()] == ["pgvector.query"]
    assert _internal_errors() == {"pgvector.record_error": 1}
