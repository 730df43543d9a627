"""After ``uninstall()``, with OpenTelemetry's gRPC instrumentation instrumented after ``install()``
(its instrumentor replaces ``grpc.server`` and ``grpc.aio.*`` with plain functions over ours, so
ours stays under them: ``integration_patch_kept``), servers and channels made get that library's
spans, and none of autotrace's. Before, the wrapper kept went on adding autotrace's interceptor
and took the contrib server interceptor off: the server spans were autotrace's, started through the
global tracer provider, and OpenTelemetry's own server spans were gone. Real instrumentors patch
globally: each case runs in a fresh interpreter."""

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
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.instrumentation.grpc import (GrpcAioInstrumentorClient, GrpcAioInstrumentorServer,
                                                 GrpcInstrumentorClient, GrpcInstrumentorServer)
import autotrace
from tests import grpc_services as svc

aio = sys.argv[1] == "aio"
exported = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exported))
trace.set_tracer_provider(provider)
autotrace.install(local_store="on", local_store_path=pathlib.Path(tempfile.mkdtemp()) / "t.db",
                  integrations=("grpc",), export_interval=0.05)
(GrpcAioInstrumentorServer() if aio else GrpcInstrumentorServer()).instrument()
GrpcAioInstrumentorClient().instrument()
GrpcInstrumentorClient().instrument()
autotrace.uninstall()

async def main():
    server, port = await svc.start_server(aio, svc.handler(svc.AioEcho() if aio else svc.Echo()))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await svc.Stub(channel).Unary({"text": "hi"})
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            await asyncio.to_thread(svc.Stub(channel).Unary, {"text": "hi"})
    finally:
        await svc.stop_server(server)

asyncio.run(main())
print(json.dumps(sorted([s.instrumentation_scope.name, s.kind.name, s.name] for s in exported.get_finished_spans()
                        if "Echo" in s.name)))
"""


@pytest.mark.parametrize("aio", ["sync", "aio"])
def test_after_uninstall_servers_and_channels_keep_the_contrib_spans_and_get_none_of_ours(
        tmp_path: Path, aio: str) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, aio], capture_output=True, text=True, timeout=120,
                          env=isolated_env(tmp_path, PYTHONPATH=str(Path(__file__).resolve().parents[1])),
                          check=False)
    assert done.returncode == 0, done.stderr
    contrib = "opentelemetry.instrumentation.grpc"
    rpc = "/test.Echo/Unary"
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        [contrib, "CLIENT", rpc], [contrib, "CLIENT", rpc], [contrib, "SERVER", rpc], [contrib, "SERVER", rpc]]
