"""``install()`` before the application imports grpc patches grpc on that import, and the patch
imports the interceptors. An application that imported one of them first (``from
autotrace.integrations.grpc import server_interceptor``, then ``import grpc``) had grpc imported
by that import, half done: the integration failed to install ("continuing without it") and no
call was traced. Run in a fresh interpreter (grpc not yet imported), on a real loopback server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_SCRIPT = """
import json
from concurrent import futures
import autotrace
autotrace.install(local_store="off", integrations=("grpc",))
from autotrace.integrations.grpc import {name}
import grpc

def echo(request, context):
    return json.dumps(sorted(key for key, _ in context.invocation_metadata())).encode()

server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.T", {{
    "U": grpc.unary_unary_rpc_method_handler(echo)}}),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
with grpc.insecure_channel(f"127.0.0.1:{{port}}") as channel:
    keys = json.loads(channel.unary_unary("/t.T/U")(b"", timeout=10))
server.stop(0)
stats = autotrace.stats()
print(json.dumps({{"traceparent": "traceparent" in keys,
                  "failed": sorted(key for key in stats if key.startswith("integration_failed"))}}))
"""


@pytest.mark.parametrize("name", ["server_interceptor", "instrument_channel", "ClientInterceptor"])
def test_importing_an_interceptor_before_grpc_leaves_the_integration_installed(name: str) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT.format(name=name)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"traceparent": True, "failed": []}
