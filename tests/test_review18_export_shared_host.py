"""The Langfuse every tenant shares hangs (accepts connections, never answers): its exports hold at
most all export threads but ``export_workers``, so the local store and tenants on other hosts keep
flowing rather than wait behind every hung tenant's batch."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import autotrace
from autotrace.export import workers
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span


@pytest.fixture
def hung_host() -> Iterator[tuple[str, list[socket.socket]]]:
    """A host that accepts connections and never answers: its base URL, and the connections it took."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    server.close()
    for conn in accepted:
        conn.close()


def test_a_hung_shared_langfuse_leaves_threads_for_other_hosts_and_the_local_store(
        hung_host: tuple[str, list[socket.socket]], rx: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "_STUCK_AFTER", 0.2)
    host, connections = hung_host
    hung = [f"t{i}" for i in range(12)]
    credentials = {name: Credentials(f"pk-{name}", f"sk-{name}", host=host) for name in hung}
    credentials["elsewhere"] = Credentials("pk-elsewhere", "sk-elsewhere", host=rx.endpoint)
    autotrace.install(langfuse_host=host, integrations=(), credentials=credentials, export_interval=0.05,
                      export_timeout=60, export_workers=1, local_store="on", local_store_path=tmp_path / "t.db")
    try:
        for name in hung:
            ended_span("hung", name)
        deadline = time.monotonic() + 10
        while len(connections) < 7 and time.monotonic() < deadline:  # export_workers (1) * 8, less 1
            time.sleep(0.02)
        assert len(connections) == 7
        ended_span("flows", "elsewhere")
        assert [(s.name, s.headers["x-langfuse-public-key"]) for s in rx.wait_for_spans(1, timeout=10)] == [
            ("flows", "pk-elsewhere")]
        store = autotrace.local_store()
        assert store is not None
        deadline = time.monotonic() + 10
        while len(store.observations()) < 13 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted((o["name"], o["tenant"]) for o in store.observations()) == sorted(
            [("flows", "elsewhere"), *(("hung", name) for name in hung)])
        assert autotrace.stats().get("export_failures", 0) == 0  # the hung ones are still under way
    finally:
        autotrace.uninstall(timeout=0.5)


def test_jobs_of_a_lane_past_its_limit_wait_and_all_run_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "_STUCK_AFTER", 0.1)
    pool = workers.WorkerPool(1, name="lane-pool", max_size=3)  # a lane runs on 2 threads at most
    release, ran, started = threading.Event(), [], []
    try:
        for i in range(5):
            pool.submit(lambda i=i: (started.append(i), release.wait(10), ran.append(i)), lane="host")
        pool.submit(lambda: ran.append("other"))  # no lane: goes on while the lane's jobs hang
        deadline = time.monotonic() + 10
        while "other" not in ran and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (ran, started) == (["other"], [0, 1])
        release.set()
        while len(ran) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(ran[1:]) == [0, 1, 2, 3, 4] and started == [0, 1, 2, 3, 4]
        assert pool._lanes == {}
    finally:
        release.set()
        pool.stop(2)
