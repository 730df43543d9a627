"""With OpenTelemetry's gRPC server instrumentation loaded (``opentelemetry-instrument`` runs
``GrpcInstrumentorServer`` before the application calls ``install()``; or it is instrumented after),
the application's own server interceptors inside autotrace's see instrumentation on: an auth check
there that calls a service through an instrumented client keeps its span and its ``traceparent``.
Before, autotrace set OpenTelemetry's suppress flag for every interceptor inside its own whenever
that module was imported, even where OpenTelemetry's interceptor ran outside (nothing to set
aside). Still one consistent tree: ours nested under the contrib span where it is outside, the one
server span where it would be inside. Real instrumentors patch ``grpc.server`` globally: each case
runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import isolated_env

_SCRIPT = """
import asyncio, json, pathlib, sys, tempfile
import grpc, grpc.aio
from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer, GrpcInstrumentorServer
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
import autotrace
from tests import grpc_services as svc
from tests.helpers import Traced, shape

order, aio = sys.argv[1], sys.argv[2] == "aio"
seen = []

class AppAuth(grpc.ServerInterceptor):
    def intercept_service(self, continuation, details):
        seen.append(is_instrumentation_enabled())
        return continuation(details)

class AioAppAuth(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, details):
        seen.append(is_instrumentation_enabled())
        return await continuation(details)

store = pathlib.Path(tempfile.mkdtemp()) / "t.db"
instrumentor = GrpcAioInstrumentorServer() if aio else GrpcInstrumentorServer()
if order == "contrib-first":
    instrumentor.instrument()
autotrace.install(local_store="on", local_store_path=store, integrations=("grpc",), export_interval=0.05)
if order == "autotrace-first":
    instrumentor.instrument()

async def main():
    servicer = svc.AioEcho() if aio else svc.Echo()
    server, port = await svc.start_server(aio, svc.handler(servicer), interceptors=[AioAppAuth() if aio else AppAuth()])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with autotrace.tenant("acme"), autotrace.start_agent("turn") as turn:
                await svc.Stub(channel).Unary({"text": "hi"})
    finally:
        await svc.stop_server(server)
    return turn.trace_id

trace_id = asyncio.run(main())
assert autotrace.flush(5.0)
print(json.dumps({"seen": seen, "shape": shape(Traced(store).trace(trace_id))}))
"""

_CLIENT_SCRIPT = """
import asyncio, json, pathlib, sys, tempfile
import grpc, grpc.aio
from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, GrpcInstrumentorClient
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
import autotrace
from tests import grpc_services as svc
from tests.helpers import Traced, shape

order, aio = sys.argv[1], sys.argv[2] == "aio"
RPC = "test.Echo/ClientStream"
seen, received = [], []

class Echo(svc.AioEcho):
    async def ClientStream(self, requests, context):
        received.append({k: v for k, v in context.invocation_metadata() if k in ("traceparent", "baggage")})
        return await super().ClientStream(requests, context)

def requests():
    for n in (1, 2):
        seen.append(is_instrumentation_enabled())
        yield {"n": n}

async def arequests():
    for item in requests():
        yield item

store = pathlib.Path(tempfile.mkdtemp()) / "t.db"
instrumentor = GrpcAioInstrumentorClient() if aio else GrpcInstrumentorClient()
if order == "contrib-first":
    instrumentor.instrument()
autotrace.install(local_store="on", local_store_path=store, integrations=("grpc",), export_interval=0.05)
if order == "autotrace-first":
    instrumentor.instrument()

async def main():
    server, port = await svc.start_server(True, svc.handler(Echo()))
    try:
        with autotrace.tenant("acme"), autotrace.start_agent("turn") as turn:
            if aio:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    await svc.Stub(channel).ClientStream(arequests())
            else:
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    await asyncio.to_thread(svc.Stub(channel).ClientStream, requests())
    finally:
        await svc.stop_server(server)
    return turn.trace_id

trace_id = asyncio.run(main())
assert autotrace.flush(5.0)
records = Traced(store).trace(trace_id)
names = {r["id"]: r["name"] for r in records}
ours = next(r for r in records if r["name"] == RPC and names.get(r["parent_id"]) != RPC)  # our client span
print(json.dumps({"seen": seen, "shape": shape(records), "received": received,
                  "ours": f"00-{trace_id}-{ours['id']}-01"}))
"""

RPC = "test.Echo/Unary"


def _run(tmp_path: Path, script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120,
                          env=isolated_env(tmp_path, PYTHONPATH=str(Path(__file__).resolve().parents[1])),
                          check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("aio", ["sync", "aio"])
@pytest.mark.parametrize("order", ["contrib-first", "autotrace-first"])
def test_the_applications_server_interceptor_sees_instrumentation_on_next_to_the_contrib_one(
        tmp_path: Path, order: str, aio: str) -> None:
    report = _run(tmp_path, _SCRIPT, order, aio)
    assert report["seen"] == [True]
    inner = "inner-aio-unary" if aio == "aio" else "inner-unary"
    server = ["span", RPC, [["retriever", inner, []]]]
    # contrib first: its span (named by the full path) outside ours, ours nested in it; autotrace
    # first: ours the one server span (the contrib interceptor left out, not a second span)
    expected = [["span", f"/{RPC}", [server]]] if order == "contrib-first" else [server]
    assert report["shape"] == [["agent", "turn", [["span", RPC, expected]]]]


@pytest.mark.parametrize("aio", ["sync", "aio"])
@pytest.mark.parametrize("order", ["contrib-first", "autotrace-first"])
def test_a_clients_request_stream_is_read_with_instrumentation_on_next_to_the_contrib_one(
        tmp_path: Path, order: str, aio: str) -> None:
    """grpc reads a request stream in a thread or task it starts inside the interceptors: the
    flag set there reached the application's generator (every instrumentation off while it made
    the requests). Ours is the client span the server is told of; the contrib one, where its
    instrumentor put it outside ours, its parent (on a sync channel made after its instrumentor,
    where it was inside ours, it is left off)."""
    report = _run(tmp_path, _CLIENT_SCRIPT, order, aio)
    assert report["seen"] == [True, True]
    call = ["span", "test.Echo/ClientStream", [["span", "test.Echo/ClientStream", []]]]
    expected = [call] if (order, aio) == ("contrib-first", "sync") else [["span", "/test.Echo/ClientStream", [call]]]
    assert report["shape"] == [["agent", "turn", expected]]
    assert report["received"] == [{"traceparent": report["ours"], "baggage": "autotrace.tenant=acme"}]


def test_a_contrib_client_interceptor_under_the_applications_is_still_set_aside(tmp_path: Path) -> None:
    """A channel made before ``install()``: the contrib interceptor on it, the application's on
    that, ``instrument_channel`` on top. Ours cannot take the contrib one off from under the
    application's: it sets it aside for the call as before (one client span, ours on the wire)."""
    import grpc
    from opentelemetry.instrumentation.grpc import client_interceptor
    from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

    import autotrace
    from autotrace.integrations import grpc as grpc_integration
    from tests import grpc_services as svc
    from tests.helpers import shape

    class AppToken(grpc.UnaryUnaryClientInterceptor):
        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            return continuation(details, request)

    received: list[str | None] = []

    class Echo(svc.Echo):
        def Unary(self, request: Any, context: Any) -> Any:
            received.append(dict(context.invocation_metadata()).get("traceparent"))
            return super().Unary(request, context)

    server = grpc.server(svc.futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((svc.handler(Echo()),))
    target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    raw = grpc.insecure_channel(target)
    traced = svc.install(tmp_path)
    channel = grpc_integration.instrument_channel(
        grpc.intercept_channel(intercept_channel(raw, client_interceptor()), AppToken()), target)
    try:
        with autotrace.start_agent("turn") as turn:
            svc.Stub(channel).Unary({"text": "hi"})
    finally:
        raw.close()
        server.stop(0)
    records = traced.trace(turn.trace_id)  # the server, made before install(), is untraced
    assert shape(records) == [("agent", "turn", [("span", "test.Echo/Unary", [])])]
    client = next(r for r in records if r["name"] == "test.Echo/Unary")
    assert received == [f"00-{turn.trace_id}-{client['id']}-01"]
