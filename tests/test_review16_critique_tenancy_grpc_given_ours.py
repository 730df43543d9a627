"""A server made after ``install()`` and after OpenTelemetry's gRPC server instrumentation was
instrumented (its ``grpc.server`` puts its interceptor first, over ours), given autotrace's
``server_interceptor(...)`` explicitly (to pass a ``tenant_from_call``): the contrib interceptor is
left off, as on a server given none of ours, and a ``grpc.aio`` one isolates its calls. Before, the
list was left as given: each call had two server spans, and a ``grpc.aio`` server's calls, ours
no longer first, ran in the tenant of the code that ran ``server.start()`` (acme's call handled in
globex's scope went to acme). Real instrumentors patch globally: each case runs in a fresh
interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import isolated_env

_SCRIPT = """
import asyncio, json, pathlib, sys, tempfile
import grpc, grpc.aio
from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer, GrpcInstrumentorServer
import autotrace
from autotrace.integrations import grpc as grpc_integration
from tests import grpc_services as svc
from tests.helpers import Traced, shape

aio = sys.argv[1] == "aio"
store = pathlib.Path(tempfile.mkdtemp()) / "t.db"
autotrace.install(local_store="on", local_store_path=store, integrations=("grpc",), export_interval=0.05)
(GrpcAioInstrumentorServer() if aio else GrpcInstrumentorServer()).instrument()
seen = []

class AioEcho(svc.AioEcho):
    async def Unary(self, request, context):
        seen.append(autotrace.current_tenant())
        return await super().Unary(request, context)

class Echo(svc.Echo):
    def Unary(self, request, context):
        seen.append(autotrace.current_tenant())
        return super().Unary(request, context)

async def main():
    given = grpc_integration.server_interceptor(asyncio=aio, tenant_from_call=lambda details, context: None)
    server, port = None, None
    with autotrace.tenant("acme"), autotrace.start_span("startup"):
        server, port = await svc.start_server(aio, svc.handler(AioEcho() if aio else Echo()), interceptors=[given])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with autotrace.tenant("globex"), autotrace.start_agent("turn") as turn:
                await svc.Stub(channel).Unary({"text": "hi"})
    finally:
        await svc.stop_server(server)
    return turn.trace_id

trace_id = asyncio.run(main())
assert autotrace.flush(5.0)
print(json.dumps({"seen": seen, "shape": shape(Traced(store).trace(trace_id))}))
"""


@pytest.mark.parametrize("aio", ["sync", "aio"])
def test_a_server_given_our_interceptor_leaves_the_contrib_one_off_and_isolates_its_calls(
        tmp_path: Path, aio: str) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, aio], capture_output=True, text=True, timeout=120,
                          env=isolated_env(tmp_path, PYTHONPATH=str(Path(__file__).resolve().parents[1])),
                          check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    inner = "inner-aio-unary" if aio == "aio" else "inner-unary"
    assert report["seen"] == [None]  # tenant_from_call named none: not the starter's acme
    assert report["shape"] == [["agent", "turn", [["span", "test.Echo/Unary", [
        ["span", "test.Echo/Unary", [["retriever", inner, []]]]]]]]]  # client, then the one server span
