"""Export transport and lifecycle at the edges: endpoints that misbehave at the HTTP level, an
install that fails half way, and a pool of export threads held by hung endpoints."""

from __future__ import annotations

import email.utils
import logging
import socket
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

import autotrace
from autotrace.export import workers
from autotrace.export.credentials import Credentials
from autotrace.export.otlp_http import HttpTarget, classify
from autotrace.runtime import state
from autotrace.testing.otlp_receiver import OtlpReceiver

#: Answers one request on a connection; returns False to close it afterwards.
Responder = Callable[[socket.socket], bool]


class RawServer:
    """A loopback HTTP/1.1 server that answers each request as ``respond`` says, byte by byte."""

    def __init__(self, respond: Responder) -> None:
        self._respond = respond
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.requests = 0
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buffered = b""
            try:
                while True:
                    while b"\r\n\r\n" not in buffered:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buffered += data
                    head, _, rest = buffered.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    buffered = rest[length:]
                    self.requests += 1
                    if not self._respond(conn):
                        return
            except OSError:
                return

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Responder], RawServer]]:
    servers: list[RawServer] = []

    def make(respond: Responder) -> RawServer:
        servers.append(RawServer(respond))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def _ok(conn: socket.socket) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    return True


def _send_in_thread(target: HttpTarget, headers: dict[str, str] | None = None, wait: float = 10.0) -> object:
    """``target.send`` on a daemon thread, so a send that never returns fails the test, not the run."""
    outcome: dict[str, object] = {}
    thread = threading.Thread(target=lambda: outcome.update(result=target.send(b"x", headers or {})), daemon=True)
    thread.start()
    thread.join(wait)
    assert not thread.is_alive(), "send did not return"
    return outcome["result"]


def test_a_response_body_that_never_ends_is_cut_off_at_the_export_timeout(raw_server) -> None:
    def trickle(conn: socket.socket) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:  # one byte every 50 ms, each well within the per-read socket timeout
            conn.sendall(b"1\r\nx\r\n")
            time.sleep(0.05)

    server = raw_server(trickle)
    started = time.monotonic()
    result = _send_in_thread(HttpTarget(server.url + "/v1/traces", timeout=0.5))
    assert time.monotonic() - started < 3
    assert result.ok is False and result.retryable is True and result.reason == "TimeoutError"


def test_response_headers_trickled_byte_by_byte_are_cut_off_at_the_export_timeout(raw_server) -> None:
    """The status line and headers are read line by line, a read per byte here: each read must
    wait only until the request's deadline, or such a server holds an export thread for hours."""
    def trickle(conn: socket.socket) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while True:  # one header byte every 50 ms, each well within the per-read socket timeout
            conn.sendall(b"X")
            time.sleep(0.05)

    server = raw_server(trickle)
    started = time.monotonic()
    result = _send_in_thread(HttpTarget(server.url + "/v1/traces", timeout=0.5), wait=5.0)
    assert time.monotonic() - started < 3
    assert result.ok is False and result.retryable is True and result.reason == "TimeoutError"


def test_a_keep_alive_connection_the_server_closed_while_idle_is_no_export_failure(
        raw_server, caplog: pytest.LogCaptureFixture) -> None:
    """Servers close idle kept-alive connections (Node after 5 s): the next export reconnects at
    once instead of counting a failure, warning and waiting for a backoff."""
    def ok_then_idle_close(conn: socket.socket) -> bool:
        _ok(conn)
        conn.settimeout(0.2)
        try:
            peeked = conn.recv(1, socket.MSG_PEEK)  # the next request, if it comes soon
        except TimeoutError:
            return False
        return bool(peeked)

    server = raw_server(ok_then_idle_close)
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        autotrace.install(langfuse_host=server.url, public_key="pk", secret_key="sk", unknown_tenant="default",
                          integrations=(), export_interval=0.05)
        for i in range(3):
            with autotrace.start_span(f"s{i}"):
                pass
            assert autotrace.flush(5)
            time.sleep(0.4)  # idle past the server's keep-alive
    stats = autotrace.stats()
    assert stats["spans_exported"] == 3 and server.requests == 3
    assert "export_failures" not in stats
    assert "retrying" not in caplog.text


def test_a_failure_outside_the_network_leaves_no_half_used_connection(raw_server) -> None:
    server = raw_server(_ok)
    target = HttpTarget(server.url + "/v1/traces", timeout=2.0)
    assert _send_in_thread(target).ok
    with pytest.raises(ValueError):  # an invalid header value: raised mid-request
        target.send(b"x", {"X-Bad": "a\nb"})
    assert _send_in_thread(target).ok
    target.close()


def test_retry_after_as_an_http_date_is_honoured() -> None:
    in_20_s = email.utils.formatdate(time.time() + 20, usegmt=True)
    delay = classify(429, {"retry-after": in_20_s}).retry_after
    assert delay is not None and 15 < delay <= 21
    assert classify(503, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}).retry_after == 0.0  # past: now
    assert classify(503, {"retry-after": "-5"}).retry_after == 0.0
    assert classify(503, {"retry-after": "soon"}).retry_after is None
    assert classify(503, {"retry-after": "nan"}).retry_after is None


def test_a_huge_response_body_is_not_read_into_memory(raw_server) -> None:
    def huge(conn: socket.socket) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 268435456\r\n\r\n")
        chunk = b"x" * 65536
        try:
            for _ in range(4096):
                conn.sendall(chunk)
        except OSError:  # the client hung up after its limit
            pass
        return False

    server = raw_server(huge)
    tracemalloc.start()
    try:
        assert _send_in_thread(HttpTarget(server.url + "/v1/traces", timeout=5.0)).ok
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_an_endpoint_whose_body_never_ends_holds_no_export_past_the_timeout(raw_server) -> None:
    def trickle(conn: socket.socket) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(200):
            conn.sendall(b"1\r\nx\r\n")
            time.sleep(0.05)
        return False

    server = raw_server(trickle)
    autotrace.install(langfuse_host=server.url, public_key="pk", secret_key="sk", unknown_tenant="default",
                      integrations=(), export_interval=0.05, export_timeout=0.5, max_retries=0)
    with autotrace.start_span("held"):
        pass
    assert autotrace.flush(3)  # the request gave up at the export timeout
    assert autotrace.stats()["spans_dropped.export_failed"] == 1


def test_a_keep_alive_connection_is_reused_request_after_request(raw_server) -> None:
    server = raw_server(_ok)
    target = HttpTarget(server.url + "/v1/traces", timeout=2.0)
    assert all(_send_in_thread(target).ok for _ in range(3))
    target.close()
    assert server.requests == 3 and server.connections == 1


def test_tenants_with_hung_endpoints_never_hold_up_a_healthy_one(raw_server) -> None:
    """As many tenants as export threads wait on an endpoint that never answers; a healthy
    tenant's span still goes out at once, not after their export timeout."""
    release = threading.Event()

    def hang(conn: socket.socket) -> bool:
        release.wait(30)
        return False

    hung = raw_server(hang)
    with OtlpReceiver() as rx:
        def secret_store(tenant: str) -> Credentials:
            return Credentials(f"pk-{tenant}", f"sk-{tenant}", host=rx.endpoint if tenant == "good" else hung.url)

        autotrace.install(langfuse_host=rx.endpoint, integrations=(), export_interval=0.05, export_workers=2,
                          export_timeout=20, credentials=secret_store)
        try:
            for tenant in ("hung-1", "hung-2", "hung-3"):
                with autotrace.tenant(tenant), autotrace.start_span("stuck"):
                    pass
            deadline = time.monotonic() + 5
            while hung.requests < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert hung.requests == 3
            with autotrace.tenant("good"), autotrace.start_span("good"):
                pass
            assert [s.name for s in rx.wait_for_spans(1, timeout=3)] == ["good"]
        finally:
            release.set()
            autotrace.uninstall(timeout=0.5)


def test_extra_export_threads_replace_stuck_ones_and_end_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "_EXTRA_IDLE", 0.1)
    monkeypatch.setattr(workers, "_STUCK_AFTER", 0.2)
    pool = workers.WorkerPool(2, name="edge-pool", max_size=3)
    release, ran = threading.Event(), []
    try:
        for i in range(4):
            pool.submit(lambda i=i: (release.wait(5), ran.append(i)))
        assert len(pool._threads) == 2  # busy, not yet stuck: the jobs wait
        deadline = time.monotonic() + 5
        while len(pool._threads) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # bounded: the fourth job waits for a free thread
        assert len(pool._threads) == 3
        release.set()
        deadline = time.monotonic() + 5
        while (len(ran) < 4 or len(pool._threads) > 2) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(ran) == [0, 1, 2, 3] and len(pool._threads) == 2
        assert autotrace.stats()["export_workers_busy"] == 1
    finally:
        pool.stop(2)
    assert not [t for t in threading.enumerate() if t.name.startswith("edge-pool")]


def test_an_install_that_fails_keeps_the_current_one_and_leaves_no_threads(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=())
    with pytest.raises(ValueError, match="credentials must be"):
        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), credentials=42)
    assert state.settings is not None and state.settings.local_store_path == tmp_path / "t.db"
    autotrace.uninstall()
    before = set(threading.enumerate())

    def broken_router(*args: object, **kwargs: object) -> None:
        raise RuntimeError("router")

    monkeypatch.setattr(sys.modules["autotrace.install"], "Router", broken_router)
    with pytest.raises(RuntimeError, match="router"):
        autotrace.install(local_store="on", local_store_path=tmp_path / "u.db", integrations=())
    deadline = time.monotonic() + 2
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [t.name for t in set(threading.enumerate()) - before] == []


def test_a_tenant_host_that_is_no_usable_url_drops_that_tenants_spans_counted() -> None:
    """A secret store answering a host with a bad port: that tenant's lookup fails (its spans
    dropped, counted; never the default project's), never the routing of the batch it came with."""
    with OtlpReceiver() as rx:
        def keys(tenant: str) -> dict[str, str]:
            host = "http://lf:port" if tenant == "bad" else rx.endpoint
            return {"public_key": f"pk-{tenant}", "secret_key": f"sk-{tenant}", "host": host}

        autotrace.install(langfuse_host=rx.endpoint, integrations=(), export_interval=0.05, credentials=keys)
        for _ in range(3):
            for tenant in ("bad", "good"):
                with autotrace.tenant(tenant), autotrace.start_span(tenant):
                    pass
            time.sleep(0.1)
        assert autotrace.flush(5)
        assert [s.name for s in rx.spans] == ["good"] * 3
    stats = autotrace.stats()
    assert stats["spans_dropped.credentials_failed"] == 3 and "spans_dropped.export_failed" not in stats
    assert [k for k in stats if k.startswith("internal_errors")] == ["internal_errors.credentials"]  # the lookup's


def test_closing_a_target_while_it_reads_a_response_fails_that_send_quietly(raw_server) -> None:
    """Shutdown closes connections a worker may be reading from: that send fails (retryable),
    never with an internal error."""
    def trickle(conn: socket.socket) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(100):
            conn.sendall(b"1\r\nx\r\n")
            time.sleep(0.01)
        return False

    server = raw_server(trickle)
    for _ in range(5):
        target = HttpTarget(server.url + "/v1/traces", timeout=3.0)
        outcome: dict[str, object] = {}

        def send(target: HttpTarget = target, outcome: dict[str, object] = outcome) -> None:
            try:
                outcome["result"] = target.send(b"x", {})
            except Exception as exc:
                outcome["raised"] = exc

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        time.sleep(0.1)  # inside the response body
        target.close()
        thread.join(5)
        assert "raised" not in outcome
        result = outcome["result"]
        assert result.ok is False and result.retryable is True


def test_a_burst_of_healthy_exports_waits_its_turn_without_extra_threads() -> None:
    """Busy is not stuck: many short jobs at once (a thousand tenants flushing) keep the pool at
    its size, instead of opening a connection per extra thread."""
    pool = workers.WorkerPool(2, name="burst-pool", max_size=16)
    done: list[int] = []
    try:
        for i in range(40):
            pool.submit(lambda i=i: (time.sleep(0.01), done.append(i)))
        deadline = time.monotonic() + 10
        while len(done) < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(done) == list(range(40)) and pool._started == 2
    finally:
        pool.stop(2)


def test_flush_and_uninstall_never_raise_an_internal_error_into_the_application(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``flush()`` reads the router from the caller's thread while the pipeline thread adds and
    evicts tenant destinations ("OrderedDict mutated during iteration" under many tenants): such
    an internal error is counted and the flush tried again, within its timeout. A shutdown that
    hits one still stops the pipeline, and leaves no half install behind."""
    from autotrace.export.router import Router

    before = set(threading.enumerate())
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                          credentials={"t": Credentials("pk-t", "sk-t", host=rx.endpoint)})
        pending = Router.pending
        failures = iter(range(6))

        def racing(self: Router) -> int:
            if next(failures, None) is not None:  # the next few reads fail as under the race
                raise RuntimeError("OrderedDict mutated during iteration")
            return pending(self)

        monkeypatch.setattr(Router, "pending", racing)
        with autotrace.tenant("t"), autotrace.start_span(name="s"):
            pass
        assert autotrace.flush(5.0) is True
        assert rx.wait_for_spans(1)
        assert state.provider is not None and state.provider.force_flush(5_000) is True
        failures = iter(range(3))
        autotrace.uninstall(timeout=2.0)
        assert state.settings is None and state.pipeline is None
        assert autotrace.stats()["internal_errors.flush"] == 6
        assert autotrace.stats()["internal_errors.shutdown"] == 3
        def started() -> list[str]:
            return [t.name for t in set(threading.enumerate()) - before if t.name.startswith("autotrace-")]

        deadline = time.monotonic() + 2
        while started() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert started() == []


def test_a_score_the_endpoint_refuses_is_dropped_alone() -> None:
    """A 400 for one score's content drops that score only: the batch's span and other scores
    are delivered and counted as exported (they were all counted dropped, the others never sent)."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = 200
            if self.path.endswith("/scores"):
                name = json.loads(body)["name"]
                status = 400 if name == "refused" else 200
                received.append(f"score:{name}:{status}")
            else:
                received.append("spans")
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        autotrace.install(langfuse_host=f"http://127.0.0.1:{server.server_port}", integrations=(),
                          export_interval=0.5, credentials={"t": Credentials("pk-t", "sk-t")})
        with autotrace.tenant("t"), autotrace.start_span(name="judged"):
            for name in ("refused", "kept", "also-kept"):
                autotrace.score(name, 1.0)
        assert autotrace.flush(5.0)
        assert received == ["spans", "score:refused:400", "score:kept:200", "score:also-kept:200"]
        stats = autotrace.stats()
        assert stats["spans_exported"] == 1 and stats["scores_exported"] == 2
        assert stats["scores_dropped.export_failed"] == 1 and "spans_dropped.export_failed" not in stats
    finally:
        autotrace.uninstall(timeout=2.0)
        server.shutdown()
        server.server_close()
