"""The Langfuse every tenant shares stops answering (accepts connections, never answers): after a few
requests in a row time out, its exports pause (spans stay buffered, counted when dropped) and one
batch probes it after a cool-down, rather than every tenant's batch and retries each waiting the
whole ``export_timeout``; and its tenants' callers are never slowed down for it (backpressure)."""

from __future__ import annotations

import gzip
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import autotrace
from autotrace.export import _host_health, workers
from autotrace.export.credentials import Credentials
from autotrace.runtime import state
from tests.helpers import ended_span, wait_for_stat

TENANTS = [f"t{i}" for i in range(10)]


class Host:
    """A loopback host that accepts connections and never answers, until ``answer`` is set: then
    it answers each request (on connections accepted from then on) 200 with an empty body, noting
    the names of the spans it carried (``names``)."""

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
def host(monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:
    """The hung host; exports run on one thread, one after another (never a second thread for a
    stuck one), so which request went when is certain."""
    monkeypatch.setattr(workers, "_STUCK_AFTER", 1e9)
    served = Host()
    yield served
    autotrace.uninstall(timeout=0.5)
    served.close()


def _install(host: Host, *tenants: str, **options: object) -> None:
    credentials = {name: Credentials(f"pk-{name}", f"sk-{name}", host=host.url) for name in tenants}
    autotrace.install(langfuse_host=host.url, integrations=(), credentials=credentials, export_interval=0.05,
                      export_timeout=0.5, export_workers=1, max_retries=5, **options)  # type: ignore[arg-type]


def test_a_hung_shared_host_is_paused_after_three_timeouts_and_its_spans_stay_counted(
        host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_host_health, "COOL_DOWN", 600.0)  # no probe within the test
    _install(host, *TENANTS)
    for name in TENANTS:
        ended_span("hung", name)
    assert wait_for_stat("export_failures", 3) == 3
    assert autotrace.flush(1.5) is False  # nothing can be sent: bounded by its timeout
    # three requests, then the flush's one probe: not each tenant's batch and retries, each waiting the
    # whole timeout
    assert len(host.accepted) == 4
    autotrace.uninstall(timeout=0.5)
    stats = autotrace.stats()
    assert {k: v for k, v in stats.items() if k.startswith(("spans_", "export_")) and ":" not in k} == {
        "export_failures": 4, "export_host_paused": 1, "spans_dropped.shutdown": 10}
    per_tenant = [stats[f"export_failures.langfuse:t{i}"] for i in range(3)]  # the probe: one tenant's batch
    assert sorted(per_tenant) == [1, 1, 2]


def test_callers_of_a_tenant_on_a_host_that_stopped_answering_are_not_slowed(
        host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_host_health, "COOL_DOWN", 600.0)
    _install(host, *TENANTS, "late", max_destination_queue=40, max_export_batch=5)
    for name in TENANTS:
        ended_span("hung", name)
    assert wait_for_stat("export_failures", 3) == 3
    for _ in range(30):  # a tenant whose own batch has not failed yet (waiting behind the others')
        ended_span("late", "late")
    router = state.pipeline.router  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while router._tenants.get("late", (None,))[0] is None and time.monotonic() < deadline:
        time.sleep(0.01)
    late = router._tenants["late"][0]
    while late.held < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (late.held, late.filling, router.pressured_for("late")) == (30, False, False)
    for _ in range(20):
        ended_span("late", "late")
    assert autotrace.stats().get("backpressure_pauses", 0) == 0


def test_a_probe_after_the_cool_down_resumes_every_tenant_once_the_host_answers(
        host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_host_health, "COOL_DOWN", 1.0)  # the host answers before the probe
    _install(host, *TENANTS)
    for name in TENANTS:
        ended_span("hung", name)
    assert wait_for_stat("export_host_paused", 1) == 1
    host.answer.set()
    assert autotrace.flush(10) is True
    stats = autotrace.stats()
    assert {k: v for k, v in stats.items() if k.startswith(("spans_", "export_")) and "." not in k} == {
        "export_failures": 3, "export_host_paused": 1, "spans_exported": 10}


def test_a_probe_that_times_out_pauses_the_host_again(monkeypatch: pytest.MonkeyPatch) -> None:
    target_health = _host_health.HostHealth("h", timeout=0.5)
    for _ in range(_host_health.TRIP):
        target_health.timed_out()
    assert (target_health.unresponsive, target_health.paused(), target_health.allow()) == (True, True, False)
    monkeypatch.setattr(_host_health, "COOL_DOWN", 0.0)
    target_health._until = time.monotonic() - 1  # the cool-down is over
    assert (target_health.allow(), target_health.allow(), target_health.paused()) == (True, False, True)  # one probe
    monkeypatch.setattr(_host_health, "COOL_DOWN", 600.0)
    target_health.timed_out()
    assert (target_health.paused(), target_health.allow()) == (True, False)
    target_health.answered()
    assert (target_health.unresponsive, target_health.paused(), target_health.allow()) == (False, False, True)
    assert autotrace.stats().get("export_host_paused") == 1  # paused once; the failed probe kept it so


def test_a_forked_child_finds_every_host_answering_even_with_a_lock_held_at_the_fork() -> None:
    pool = object.__new__(type("Pool", (), {}))
    health = _host_health.host_health(pool, ("h", 1), "h:1", 0.5)
    for _ in range(_host_health.TRIP):
        health.timed_out()
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=lambda: health._lock.acquire() and (held.set(), release.wait(10)))
    holder.start()
    held.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: the parent's pause and its held lock are gone
        same = _host_health.host_health(pool, ("h", 1), "h:1", 0.5) is health
        os._exit(0 if same and health.allow() and not health.unresponsive else 1)
    release.set()
    holder.join()
    health._lock.release()
    deadline = time.monotonic() + 10
    while (status := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if status[0] == 0:  # deadlocked on the parent's lock
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert status == (pid, 0)
    assert (health.paused(), health.unresponsive) == (True, True)  # the parent's view is its own
