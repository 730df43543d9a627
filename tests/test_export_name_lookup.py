"""An export connection's host-name lookup is bounded by the export timeout, like the rest of the
connection. A hung resolver is played by ``socket.getaddrinfo`` replaced for names under
``.hung.test`` (there is no DNS server to stop here); every other lookup, and every socket, is
the system's own, to loopback receivers."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import autotrace
from autotrace import cli
from autotrace.export import bounded_connect
from autotrace.export.bounded_connect import ResolveTimeout, connect_within
from autotrace.export.otlp_http import HttpTarget
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import numbered_spans, timed_send


class HungResolver:
    """``getaddrinfo`` that waits ``hang`` seconds for names ending ``.hung.test`` (then gives
    127.0.0.1, or fails when ``fail`` is set) and counts those lookups; others go to the system."""

    def __init__(self, real: Callable[..., Any], hang: float) -> None:
        self.real, self.hang, self.fail = real, hang, False
        self.lookups: list[str] = []
        self.release = threading.Event()

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        flags = args[3] if len(args) > 3 else kwargs.get("flags", 0)
        if isinstance(host, str) and host.endswith(".hung.test") and not flags & socket.AI_NUMERICHOST:
            self.lookups.append(host)
            self.release.wait(self.hang)
            if self.fail:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return self.real("127.0.0.1", port, *args, **kwargs)
        return self.real(host, port, *args, **kwargs)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[HungResolver]:
    fake = HungResolver(socket.getaddrinfo, hang=3.0)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    yield fake
    fake.release.set()  # the lookups still waiting end now, and are gone before the next test
    until = time.monotonic() + 5.0
    while bounded_connect._lookups and time.monotonic() < until:
        time.sleep(0.01)


def test_a_hung_lookup_fails_the_export_within_its_timeout_and_the_app_goes_on(resolver: HungResolver) -> None:
    result, elapsed = timed_send(HttpTarget("http://langfuse.hung.test:3000/api/public/otel/v1/traces", timeout=0.3))
    assert (result.ok, result.retryable, result.reason) == (False, True, "ResolveTimeout")
    assert elapsed < 1.5  # the lookup itself goes on for 3 s
    assert resolver.lookups == ["langfuse.hung.test"]


def test_connections_to_a_name_being_looked_up_share_that_lookup(resolver: HungResolver) -> None:
    outcomes: list[str] = []

    def connect() -> None:
        try:
            connect_within(("langfuse.hung.test", 3000), 0.3).close()
        except ResolveTimeout:
            outcomes.append("timeout")

    threads = [threading.Thread(target=connect) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert outcomes == ["timeout"] * 5 and resolver.lookups == ["langfuse.hung.test"]


def test_a_lookup_that_ends_in_time_connects_and_the_next_connection_looks_up_again(
        resolver: HungResolver, rx: OtlpReceiver) -> None:
    resolver.hang = 0.05
    for _ in range(2):
        with connect_within(("langfuse.hung.test", rx.port), 5.0) as sock:
            assert sock.getpeername() == ("127.0.0.1", rx.port) and sock.gettimeout() == 5.0
    assert resolver.lookups == ["langfuse.hung.test"] * 2  # nothing cached


def test_a_failed_lookup_is_the_resolvers_own_error(resolver: HungResolver) -> None:
    resolver.hang, resolver.fail = 0.0, True
    with pytest.raises(socket.gaierror):
        connect_within(("langfuse.hung.test", 3000), 2.0)


def test_spans_reach_a_langfuse_named_by_a_host_name_through_the_system_resolver(rx: OtlpReceiver) -> None:
    """``localhost`` may give ``::1`` first, where nothing listens: the next address is tried."""
    autotrace.install(langfuse_host=f"http://localhost:{rx.port}", public_key="pk-lf-1", secret_key="sk-lf-1",
                      unknown_tenant="default", integrations=())
    numbered_spans(2)
    assert autotrace.flush(10)
    assert sorted(s.name for s in rx.wait_for_spans(2)) == ["step-0", "step-1"]


def test_autotrace_check_says_the_name_did_not_resolve_in_time(
        resolver: HungResolver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LANGFUSE_HOST", "http://langfuse.hung.test:3000")
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-1")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-1")
    started = time.monotonic()
    code = cli.main(["check", "--timeout", "0.3"])
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 1 and elapsed < 1.5
    assert out.splitlines()[0].endswith(
        "(key pk-lf-1): the host name did not resolve within the timeout (ResolveTimeout)")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here")
def test_a_forked_child_looks_the_name_up_itself_not_waiting_for_the_parents_lookup(
        resolver: HungResolver, rx: OtlpReceiver) -> None:
    with pytest.raises(ResolveTimeout):  # the parent's lookup, still running when it forks
        connect_within(("langfuse.hung.test", rx.port), 0.1)
    pid = os.fork()
    if pid == 0:  # the child: its resolver answers at once
        code = 1
        try:
            resolver.hang = 0.0
            connect_within(("langfuse.hung.test", rx.port), 2.0).close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.fixture
def blackhole(rx: OtlpReceiver) -> Iterator[tuple[str, int]]:
    """An address that drops connection attempts, on the receiver's port: a listener on 127.0.0.2
    whose one-connection backlog is full (the kernel then drops further SYNs unanswered)."""
    listener = socket.socket()
    listener.bind(("127.0.0.2", rx.port))
    listener.listen(0)
    filler = socket.create_connection(("127.0.0.2", rx.port), 1.0)
    try:
        yield "127.0.0.2", rx.port
    finally:
        filler.close()
        listener.close()


def test_an_address_that_drops_packets_leaves_the_next_address_its_share_of_the_timeout(
        monkeypatch: pytest.MonkeyPatch, rx: OtlpReceiver, blackhole: tuple[str, int]) -> None:
    """A name whose first address drops packets (a firewalled or dead one among a Langfuse's records):
    old code gave that attempt the whole timeout, so every export to the name failed; now each
    address gets an equal share of the time left and the export reaches the next one."""
    real = socket.getaddrinfo

    def two_addresses(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "langfuse.two.test":
            return [entry for address in ("127.0.0.2", "127.0.0.1") for entry in real(address, port, *args[:3])]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    with connect_within(("langfuse.two.test", rx.port), 2.0) as sock:  # old code: TimeoutError
        assert sock.getpeername() == ("127.0.0.1", rx.port) and sock.gettimeout() == 2.0
    autotrace.install(langfuse_host=f"http://langfuse.two.test:{rx.port}", public_key="pk-lf-1",
                      secret_key="sk-lf-1", unknown_tenant="default", integrations=(), export_timeout=2.0)
    numbered_spans(1)
    assert autotrace.flush(10)
    assert [s.name for s in rx.wait_for_spans(1)] == ["step-0"]


def test_addresses_alternate_between_families_in_the_resolvers_order() -> None:
    """Two IPv6 addresses that drop packets listed before an IPv4 one must not take its time."""
    v6 = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (f"2001:db8::{i}", 443, 0, 0)) for i in (1, 2)]
    v4 = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (f"192.0.2.{i}", 443)) for i in (1, 2, 3)]
    order = [entry[4][0] for entry in bounded_connect.interleaved([*v6, *v4])]
    assert order == ["2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2", "192.0.2.3"]
    assert bounded_connect.interleaved([*v4, *v6])[:2] == [v4[0], v6[0]]  # the resolver's first family first
