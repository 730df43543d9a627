"""The application's own gRPC interceptors inside autotrace's see OpenTelemetry instrumentation on
(an auth check that calls a service through an instrumented HTTP client keeps its span and sends
``traceparent``), also where OpenTelemetry's gRPC instrumentation is loaded: a server ``install()``
made has none of its interceptors inside ours to set aside. Fresh interpreter: whether that module
is imported is per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import isolated_env

_SCRIPT = """
import json, pathlib, sys, tempfile
import grpc
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
if sys.argv[1] == "contrib":
    import opentelemetry.instrumentation.grpc  # noqa: F401
import autotrace
from tests import grpc_services as svc

seen = []

class AppAuth(grpc.ServerInterceptor):
    def intercept_service(self, continuation, details):
        seen.append(("server", is_instrumentation_enabled()))
        return continuation(details)

class AppToken(grpc.UnaryUnaryClientInterceptor):
    def intercept_unary_unary(self, continuation, details, request):
        seen.append(("client", is_instrumentation_enabled()))
        return continuation(details, request)

store = pathlib.Path(tempfile.mkdtemp()) / "t.db"
autotrace.install(local_store="on", local_store_path=store, integrations=("grpc",), export_interval=0.05)
server, port = svc.start_sync_server(interceptors=[AppAuth()])
with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
    reply = svc.Stub(grpc.intercept_channel(channel, AppToken())).Unary({"text": "hi"})
server.stop(0)
print(json.dumps({"seen": seen, "reply": reply}))
"""


@pytest.mark.parametrize("loaded", ["alone", "contrib"])
def test_the_applications_interceptors_see_instrumentation_on_whether_the_contrib_one_is_loaded(
        tmp_path: Path, loaded: str) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, loaded], capture_output=True, text=True, timeout=120,
                          env=isolated_env(tmp_path, PYTHONPATH=str(Path(__file__).resolve().parents[1])),
                          check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["reply"]["echo"] == "hi"
    # on either way: a server install() made has no contrib interceptor inside ours to set aside
    # (see test_review16_grpc_contrib_order); the client's interceptor here is outside autotrace's
    # (intercept_channel wraps the traced channel)
    assert report["seen"] == [["client", True], ["server", True]]
