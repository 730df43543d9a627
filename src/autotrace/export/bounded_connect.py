"""Opening an export connection within its timeout, the host name's lookup included.

``socket.create_connection`` bounds each connect attempt, but not ``getaddrinfo``, which waits as
long as the system's resolver does (several seconds per name server and attempt, more when DNS is
down). Here the lookup runs on a helper thread, waited for only until the deadline; a lookup still
running is shared by every connection to the same host and port, so a hung resolver holds one
thread per name, not one per export. Nothing is cached: each new connection looks the name up
again (an in-cluster Langfuse's address may change), and kept-alive connections make that rare.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

AddressInfo = list[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[object, ...]]]

#: Names looked up at once at most; past them a connection to yet another name fails at once
#: (only a resolver hanging on that many names gets there).
MAX_LOOKUPS = 64

_lock = threading.Lock()
_lookups: dict[tuple[str, int], Future[AddressInfo]] = {}


class ResolveTimeout(TimeoutError):
    """The host name did not resolve within the connection's timeout."""


def _forget_lookups() -> None:
    """In a forked child: the lookups under way are the parent's threads', which the child lacks."""
    global _lock, _lookups
    _lock, _lookups = threading.Lock(), {}


os.register_at_fork(after_in_child=_forget_lookups)


def _look_up(key: tuple[str, int], found: Future[AddressInfo]) -> None:
    try:
        found.set_result(socket.getaddrinfo(key[0], key[1], 0, socket.SOCK_STREAM))  # type: ignore[arg-type]
    except BaseException as exc:  # handed to every waiter, raised there
        found.set_exception(exc)
    finally:
        with _lock:
            if _lookups.get(key) is found:
                del _lookups[key]


def resolve(host: str, port: int, deadline: float) -> AddressInfo:
    """``getaddrinfo(host, port)`` for stream sockets, by ``deadline`` (``time.monotonic``) or
    ``ResolveTimeout``; a lookup's ``gaierror`` is raised as it is. An address needs no lookup."""
    try:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)  # type: ignore[return-value]
    except socket.gaierror:
        pass  # a name
    key = (host, port)
    with _lock:
        found = _lookups.get(key)
        if found is None:
            if len(_lookups) >= MAX_LOOKUPS:
                raise ResolveTimeout(f"{MAX_LOOKUPS} host names are being looked up already")
            found = _lookups[key] = Future()
            threading.Thread(target=_look_up, args=(key, found), name="autotrace-resolve", daemon=True).start()
    try:
        return found.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        raise ResolveTimeout("the host name did not resolve within the timeout") from None


def interleaved(addresses: AddressInfo) -> AddressInfo:
    """``addresses`` alternating between address families (the resolver's order kept within each,
    its first family first), so an unreachable family's addresses do not all come before another's."""
    families: dict[int, AddressInfo] = {}
    for entry in addresses:
        families.setdefault(entry[0], []).append(entry)
    rounds = itertools.zip_longest(*families.values())
    return [entry for row in rounds for entry in row if entry is not None]


def connect_within(address: tuple[str, int], timeout: object = None,
                   source_address: tuple[str, int] | None = None) -> socket.socket:
    """A connected socket to ``address``, looked up and connected within ``timeout`` seconds in
    all; the socket keeps ``timeout`` for its operations. Its addresses are tried in turn, families
    alternating, each attempt given an equal share of the time left (an address that drops packets
    leaves the next ones their time). The signature of ``socket.create_connection``, which it falls
    back to without a timeout."""
    if not isinstance(timeout, (int, float)):  # http.client's "the global default" marker, or None
        return socket.create_connection(address, timeout, source_address)  # type: ignore[arg-type]
    deadline = time.monotonic() + timeout
    host, port = address
    failure: OSError | None = None
    addresses = interleaved(resolve(host, port, deadline))
    for index, (family, kind, proto, _, sockaddr) in enumerate(addresses):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(remaining / (len(addresses) - index))
            if source_address is not None:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        sock.settimeout(timeout)
        return sock
    raise failure if failure is not None else TimeoutError("no address connected within the timeout")
