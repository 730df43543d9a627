"""Export connections are kept alive in one bounded pool per install, shared by every tenant's
destination: a thousand tenants sending to one Langfuse hold a handful of sockets (file descriptors
of the application's), not a thousand, and pay no handshake per tenant. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import os

import pytest

import autotrace
from autotrace.export.connections import DEFAULT_MAX_IDLE, ConnectionPool
from autotrace.export.credentials import Credentials
from autotrace.runtime import state
from autotrace.testing.otlp_receiver import OtlpReceiver


def _open(rx: OtlpReceiver) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=5)
    conn.connect()
    return conn


def _client_sockets_to(port: int) -> int:
    """This process's TCP sockets connected to ``port`` on 127.0.0.1 (from /proc: the kernel's count)."""
    inodes = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = 0
    with open("/proc/self/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port and fields[9] in inodes and fields[3] == "01":  # ESTABLISHED
                found += 1
    return found


@pytest.mark.skipif(not os.path.exists("/proc/self/net/tcp"), reason="reads Linux's /proc")
def test_a_thousand_tenants_share_a_few_connections() -> None:
    tenants = [f"t{i:04d}" for i in range(1_000)]
    with OtlpReceiver() as rx:
        credentials = {t: Credentials(f"pk-{t}", f"sk-{t}", host=rx.endpoint) for t in tenants}
        autotrace.install(langfuse_host=rx.endpoint, credentials=credentials, integrations=(), max_tenants=1_000,
                          export_interval=30.0)
        for tenant in tenants:
            with autotrace.tenant(tenant), autotrace.start_span("step"):
                pass
        assert autotrace.flush(60)
        assert len(rx.wait_for_spans(1_000)) == 1_000
        open_sockets = _client_sockets_to(rx.port)
        peers = {request.peer for request in rx.requests}
        router = state.pipeline.router  # type: ignore[union-attr]
        idle = router.connections.idle()
    # each tenant's spans went with its own keys, over connections any tenant's destination reuses
    assert {r.headers["x-langfuse-public-key"] for r in rx.requests} == {f"pk-{t}" for t in tenants}
    assert len(peers) <= 4 * 8  # at most one per export thread at a time (4, up to 8 times as many when stuck)
    assert open_sockets == idle <= max(DEFAULT_MAX_IDLE, 2 * 4)  # before: one per tenant, 1,000


def test_spans_and_scores_of_one_tenant_share_connections() -> None:
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-c", secret_key="sk-lf-c",
                          unknown_tenant="default", integrations=(), export_interval=30.0, export_workers=1)
        for round_ in range(3):
            with autotrace.start_span(f"scored-{round_}"):
                autotrace.score("helpful", True)
            assert autotrace.flush(10)
        requests = rx.requests
    assert len(requests) == 6  # three span requests, three scores
    assert len({r.peer for r in requests}) == 1  # one kept-alive connection for both paths


def test_the_pool_keeps_at_most_max_idle_and_closes_the_longest_idle_first() -> None:
    with OtlpReceiver() as rx:
        pool = ConnectionPool(max_idle=2)
        first, second, third = _open(rx), _open(rx), _open(rx)
        for conn in (first, second, third):
            pool.give_back("origin", conn)
        assert pool.idle() == 2 and first.sock is None  # closed
        assert pool.take("elsewhere") is None
        assert pool.take("origin") is third and pool.take("origin") is second and pool.take("origin") is None
        for conn in (second, third):
            conn.close()


def test_a_connection_the_server_closed_is_not_kept() -> None:
    with OtlpReceiver() as rx:
        pool = ConnectionPool()
        conn = _open(rx)
        conn.close()  # as http.client does when a response says "Connection: close"
        pool.give_back("origin", conn)
        assert pool.idle() == 0


def test_close_closes_every_idle_connection_and_forget_drops_them_unclosed() -> None:
    with OtlpReceiver() as rx:
        pool = ConnectionPool()
        kept = [_open(rx), _open(rx)]
        for conn in kept:
            pool.give_back("origin", conn)
        pool.close()
        assert pool.idle() == 0 and all(conn.sock is None for conn in kept)
        forgotten = _open(rx)
        pool.give_back("origin", forgotten)
        pool.forget()  # a forked child's: the parent's sockets are not shut down from here
        assert pool.idle() == 0 and forgotten.sock is not None
        forgotten.close()


def test_the_tls_context_is_made_once_at_first_use_and_a_failure_is_counted_once() -> None:
    made: list[object] = []

    def make() -> object:
        import ssl

        made.append(ssl.create_default_context())
        return made[-1]

    pool = ConnectionPool(make_tls=make)  # type: ignore[arg-type]
    assert made == []  # not at construction: loading the system CAs takes milliseconds
    assert pool.tls() is pool.tls() is made[0] and len(made) == 1

    def broken() -> object:
        raise FileNotFoundError("ca.pem")

    failing = ConnectionPool(make_tls=broken)  # type: ignore[arg-type]
    assert failing.tls() is None and failing.tls() is None
    assert autotrace.stats()["internal_errors.export_tls"] == 1


def test_install_makes_no_tls_context_until_an_https_export_needs_one() -> None:
    autotrace.install(langfuse_host="https://langfuse.example.invalid", public_key="pk-lf-x", secret_key="sk-lf-x",
                      unknown_tenant="default", integrations=(), export_interval=30.0)
    router = state.pipeline.router  # type: ignore[union-attr]
    assert router.connections._tls is None
