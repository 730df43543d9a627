"""Kept-alive export connections, shared by every destination of an install and bounded.

Each tenant has a destination of its own, but most send to the same Langfuse (one per cluster):
a connection per destination would hold a socket (and a file descriptor of the application's) per
tenant, a thousand with ``max_tenants`` at its default, and pay a TCP and TLS handshake per tenant.
Instead an idle connection goes back here, by origin (scheme, host, port, the proxy and the TLS
context it was opened with), for any destination to reuse: requests carry their own credentials,
so a connection holds nothing of a tenant. At most ``max_idle`` wait here in all, the least
recently used closed first; connections in use are bounded by the export threads.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from .._internal import guarded_failure

#: Idle connections kept by default: more than the export threads send at once (``export_workers``
#: is 4 by default), so a busy install reconnects only to replace what an endpoint closed.
DEFAULT_MAX_IDLE = 16


class ConnectionPool:
    """Idle kept-alive connections by origin (thread-safe); ``take`` one, ``give_back`` it after a
    complete exchange, close it instead after anything else. Also the TLS context of every HTTPS
    connection, made by ``make_tls`` at the first one (loading the system CAs takes some 15 ms:
    not at ``install()``)."""

    def __init__(self, max_idle: int = DEFAULT_MAX_IDLE,
                 make_tls: Callable[[], ssl.SSLContext] = ssl.create_default_context) -> None:
        self.max_idle = max(1, max_idle)
        self._lock = threading.Lock()
        #: (origin, id(connection)) -> connection, least recently given back first.
        self._idle: OrderedDict[tuple[Hashable, int], http.client.HTTPConnection] = OrderedDict()
        self._make_tls: Callable[[], ssl.SSLContext] | None = make_tls
        self._tls: ssl.SSLContext | None = None

    def tls(self) -> ssl.SSLContext | None:
        """The TLS context, made once; None if it cannot be made (counted as
        ``internal_errors.export_tls``, logged once: every HTTPS export then fails, counted)."""
        if self._tls is None and self._make_tls is not None:
            with self._lock:
                if self._tls is None and self._make_tls is not None:
                    try:
                        self._tls = self._make_tls()
                    except Exception as exc:  # a TLS file removed or changed since install() read it
                        guarded_failure("export_tls", exc)
                        self._make_tls = None
        return self._tls

    def take(self, origin: Hashable) -> http.client.HTTPConnection | None:
        """The most recently used idle connection to ``origin``, removed from the pool; None if none."""
        with self._lock:
            for key in reversed(self._idle):
                if key[0] == origin:
                    return self._idle.pop(key)
        return None

    def give_back(self, origin: Hashable, conn: http.client.HTTPConnection) -> None:
        """Keep ``conn`` (open, its last response read) for the next request to ``origin``; past
        ``max_idle``, the connection idle longest is closed."""
        if conn.sock is None:  # the server said "close": nothing to keep
            return
        with self._lock:
            self._idle[(origin, id(conn))] = conn
            surplus = [self._idle.popitem(last=False)[1] for _ in range(len(self._idle) - self.max_idle)]
        for old in surplus:
            old.close()

    def idle(self) -> int:
        """How many connections wait here."""
        return len(self._idle)

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = list(self._idle.values()), OrderedDict()
        for conn in idle:
            conn.close()

    def forget(self) -> None:
        """Drop every idle connection without a shutdown exchange (in a forked child: they are the parent's)."""
        self._lock = threading.Lock()
        self._idle = OrderedDict()
