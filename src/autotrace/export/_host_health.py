"""Whether a host answers: one per origin of an install's connection pool, shared by every sink
sending there (every tenant on the Langfuse they share).

After ``TRIP`` requests in a row got no answer within ``export_timeout`` the host is paused: for
``COOL_DOWN`` seconds no batch goes there (they stay buffered, bounded and counted as ever), then
one batch goes as a probe while the others wait; any answer (an error status too, or a failure
at once: a refused connection) resumes them, another timeout pauses the host again. So a hung host costs one thread and one connection per
``export_timeout`` plus ``COOL_DOWN``, not every tenant's retries, each the whole timeout. A shutdown
cuts a cool-down short (``hurry``): the host may be back, and the shutdown's timeout bounds the wait.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Hashable

from .._internal import count, log_once_per

#: Requests in a row to one host that got no answer within ``export_timeout`` before it is paused.
TRIP = 3
#: Seconds a paused host gets no request before the next probe.
COOL_DOWN = 5.0


class HostHealth:
    """The answers of one host: requests in a row that timed out, and until when it is paused."""

    __slots__ = ("_lock", "_probing", "_timeouts", "_until", "name", "timeout")

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        self._lock = threading.Lock()
        self._timeouts = 0
        #: ``time.monotonic()`` before which no request goes (a probe's own end, while it runs).
        self._until = 0.0
        self._probing = False  # ``_until`` is the end of a probe's time, not of a cool-down

    @property
    def unresponsive(self) -> bool:
        """The host has stopped answering (paused, or probed): an outage, not a slow export."""
        return self._timeouts >= TRIP

    def paused(self) -> bool:
        """Whether no batch is to go now (cool-down, or a probe under way)."""
        return self._until > 0.0 and time.monotonic() < self._until

    def allow(self) -> bool:
        """Whether a batch may go now; once the cool-down is over the first one asked goes, as the
        probe (the others wait for its outcome, or for its time to run out)."""
        if not self._until:  # answering (each batch asks: no lock then)
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._until:
                return False
            if self._timeouts >= TRIP:
                self._until = now + self.timeout + COOL_DOWN
                self._probing = True
            return True

    def hurry(self) -> None:
        """A cool-down ends now (not a probe under way): the next batch asked probes the host at once."""
        with self._lock:
            now = time.monotonic()
            if not self._probing and self._until > now:
                self._until = now

    def timed_out(self) -> None:
        """A request got no answer within the timeout; the ``TRIP``-th in a row pauses the host."""
        with self._lock:
            self._timeouts += 1
            if self._timeouts < TRIP:
                return
            self._until = max(self._until, time.monotonic() + COOL_DOWN)
            self._probing = False
            if self._timeouts > TRIP:
                return
        count("export_host_paused")
        log_once_per("host_paused", self.name, "autotrace: %s does not answer within export_timeout; its exports "
                     "wait, one batch tried every %.0f s (spans stay buffered)", self.name, self.timeout + COOL_DOWN)

    def answered(self) -> None:
        """The host answered a request (any status), or failed it at once: its exports go on."""
        if self._timeouts or self._until:
            with self._lock:
                self._timeouts = 0
                self._until = 0.0
                self._probing = False


#: Each connection pool's hosts (one pool per install; a target with no shared pool has its own).
_hosts: weakref.WeakKeyDictionary[object, dict[Hashable, HostHealth]] = weakref.WeakKeyDictionary()
_hosts_lock = threading.Lock()


def host_health(pool: object, origin: Hashable, name: str, timeout: float) -> HostHealth:
    """The health of ``origin`` as seen through ``pool``: the same object for every target there."""
    with _hosts_lock:
        hosts = _hosts.setdefault(pool, {})
        health = hosts.get(origin)
        if health is None:
            health = hosts[origin] = HostHealth(name, timeout)
        return health


def _after_fork() -> None:
    """In a forked child: new locks (a parent's thread may have held one), and every host answering
    until the child finds otherwise."""
    global _hosts_lock
    _hosts_lock = threading.Lock()
    for hosts in list(_hosts.values()):
        for health in hosts.values():
            health._lock = threading.Lock()
            health._timeouts = 0
            health._until = 0.0
            health._probing = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
