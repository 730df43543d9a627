"""A gRPC client call made while OpenTelemetry's "suppress instrumentation" flag is set gets no span
and no trace headers, as under OpenTelemetry's own gRPC instrumentation. OpenTelemetry's SDK sets
the flag while a span processor exports: traced, every export of the application's own
OTLP/gRPC exporter was a CLIENT span (``TraceService/Export``) recorded as a trace of its own, and,
the application's provider being joined to autotrace's, exported again by that exporter, which
made a new span: a trace every export interval, forever, from a single span of the application's.
Real grpc clients and servers on loopback, the real OpenTelemetry SDK and OTLP/gRPC exporter."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from opentelemetry.instrumentation.utils import suppress_instrumentation

import autotrace
from tests import grpc_services as svc
from tests.helpers import isolated_env

_APP = """
import json, sys
from concurrent import futures
import grpc

seen = []

def export(request, context):
    seen.append(sorted(k for k, _ in context.invocation_metadata() if k in ("traceparent", "baggage")))
    return b""

# the collector, made before install(): not traced, as a remote one
collector = grpc.server(futures.ThreadPoolExecutor(2))
collector.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
    "opentelemetry.proto.collector.trace.v1.TraceService",
    {"Export": grpc.unary_unary_rpc_method_handler(export)}),))
port = collector.add_insecure_port("127.0.0.1:0")
collector.start()

import autotrace
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=("grpc",), export_interval=0.05)
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True),
                                               schedule_delay_millis=600_000))
trace.set_tracer_provider(provider)  # joined to autotrace's
with trace.get_tracer("app").start_as_current_span("app-work"):
    pass
with autotrace.tenant("acme"), autotrace.start_chain("request"):
    for _ in range(3):  # each flush exports in this thread, what the one before left queued
        provider.force_flush()
autotrace.flush(10)
names = sorted(r["name"] for r in autotrace.local_store().observations())
collector.stop(0)
print(json.dumps({"exports": seen, "recorded": names}))
"""


def test_the_applications_otlp_grpc_exporter_is_not_traced(tmp_path: Path) -> None:
    """One span of the application's is exported once, with no trace headers and no tenant sent to the
    collector, and autotrace records no export call. On the old code the first flush's export call
    never returned (the child was stopped at its timeout); flushed by the processor's own thread, each
    export exported the Export span the one before made, without end."""
    done = subprocess.run([sys.executable, "-c", _APP, str(tmp_path / "e.db")], capture_output=True, text=True,
                          timeout=60, env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"exports": [[]], "recorded": ["app-work", "request"]}


def _call_suppressed(port: int, recorder_port: int) -> list[Any]:
    """A unary call of each kind of channel, made under ``suppress_instrumentation()``, to a traced
    server and to the untraced recorder; what each returned."""
    got = []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, \
            grpc.insecure_channel(f"127.0.0.1:{recorder_port}") as third_party:
        charge = third_party.unary_unary(svc.RECORDED_METHOD, **svc.CLIENT_KW)
        with autotrace.tenant("acme"), suppress_instrumentation():
            got.append(svc.Stub(channel).Unary({"text": "sync"})["echo"])
            got.append(charge({}))

    async def aio_calls() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel, \
                grpc.aio.insecure_channel(f"127.0.0.1:{recorder_port}") as third_party:
            charge = third_party.unary_unary(svc.RECORDED_METHOD, **svc.CLIENT_KW)
            with autotrace.tenant("acme"), suppress_instrumentation():
                got.append((await svc.Stub(channel).Unary({"text": "aio"}))["echo"])
                got.append(await charge({}))

    asyncio.run(aio_calls())
    return got


def test_calls_under_suppress_instrumentation_get_no_client_span_and_no_headers(tmp_path: Path) -> None:
    """Sync and grpc.aio channels: no CLIENT span, and nothing of the trace or the tenant in the
    metadata a third party gets; the traced server, called with no trace context, starts its own
    trace (its span and its handler's). On the old code each call had a CLIENT span, and the
    third party got ``traceparent`` and the tenant."""
    recorder = svc.MetadataRecorder()  # before install(): untraced
    try:
        traced = svc.install(tmp_path)
        server, port = svc.start_sync_server()
        try:
            assert _call_suppressed(port, recorder.port) == ["sync", {}, "aio", {}]
        finally:
            server.stop(0)
        records = traced.records()
    finally:
        recorder.server.stop(0)
    assert [k for pairs in recorder.seen for k, _ in pairs if k in ("traceparent", "tracestate", "baggage")] == []
    assert sorted((r["name"], r["parent_id"] is None) for r in records) == [
        ("inner-unary", False), ("inner-unary", False), ("test.Echo/Unary", True), ("test.Echo/Unary", True)]
