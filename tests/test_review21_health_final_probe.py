"""A flush while the Langfuse host is in the cool-down after it stopped answering (``autotrace.flush()``,
or the last export of a process that ends without a shutdown: SIGTERM, ``os.exec*``): the host may be
back, so the flush probes it at once, as a shutdown does, instead of waiting out the cool-down (and
losing every buffered span with the process)."""

from __future__ import annotations

import gzip
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.helpers import isolated_env

TENANTS = ("t0", "t1", "t2")

CHILD = """
import sys, time
import autotrace
from autotrace.export import _host_health, workers
_host_health.COOL_DOWN = 600.0  # no probe of its own before the process ends
workers._STUCK_AFTER = 1e9  # one export thread: three requests time out one after another
from autotrace.export.credentials import Credentials
url, how = sys.argv[1], sys.argv[2]
tenants = ("t0", "t1", "t2")  # TENANTS
autotrace.install(langfuse_host=url, integrations=(), local_store="off", export_interval=0.05, export_timeout=0.5,
                  export_workers=1, max_retries=5,
                  credentials={name: Credentials("pk-" + name, "sk-" + name, host=url) for name in tenants})
for name in tenants:
    with autotrace.tenant(name):
        with autotrace.start_span("span-" + name):
            pass
while autotrace.stats().get("export_host_paused", 0) < 1:
    time.sleep(0.01)
print("paused", flush=True)
sys.stdin.readline()  # the host answers now
import os
if how == "exec":
    os.execv(sys.executable, [sys.executable, "-c", "raise SystemExit(3)"])
if how == "flush":  # ``autotrace.flush()`` alone, then no exit export (``os._exit``)
    os._exit(0 if autotrace.flush(5.0) else 4)
for _ in range(600):  # short sleeps: the handler runs soon whichever thread the signal reached
    time.sleep(0.1)
"""


class Host:
    """Accepts connections and never answers, until ``answer`` is set: then answers each request on
    connections accepted from then on 200, noting the names of the spans it carried."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self.answer = threading.Event()
        self.names: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn = self._server.accept()[0]
            except OSError:
                return
            self.accepted.append(conn)
            if self.answer.is_set():
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        data = b""
        try:
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, data = data.split(b"\r\n\r\n", 1)
                lines = head.lower().split(b"\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length:"))
                while len(data) < length:
                    data += conn.recv(65536)
                body, data = data[:length], data[length:]
                if b"content-encoding: gzip" in lines:
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                self.names += [span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            return

    def close(self) -> None:
        self._server.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def host() -> Iterator[Host]:
    served = Host()
    yield served
    served.close()


@pytest.mark.parametrize(("how", "status"), [("sigterm", -signal.SIGTERM), ("exec", 3), ("flush", 0)])
def test_the_last_export_of_a_process_ending_probes_a_paused_host_that_is_back(
        host: Host, tmp_path: Path, how: str, status: int) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, host.url, how], env=isolated_env(tmp_path),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "paused\n"
        host.answer.set()
        child.stdin.write("go\n")
        child.stdin.flush()
        if how == "sigterm":
            child.send_signal(signal.SIGTERM)
        try:
            _, err = child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            _, err = child.communicate()
            pytest.fail(f"the child did not end: {err}")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == status, err
    # three requests timed out (each tenant's batch, once), then the probe and the rest got through
    assert sorted(host.names) == [f"span-{name}" for name in TENANTS], err
