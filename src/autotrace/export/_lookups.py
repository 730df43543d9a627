"""Credentials lookups for the router: each tenant's keys resolved on an export worker, never on the
pipeline thread; finished lookups wait in ``done`` until the router applies them."""

from __future__ import annotations

import threading
import time
from collections import deque

from .credentials import Credentials, CredentialsResolver, to_credentials
from .workers import WorkerPool, survive

#: A lookup's outcome: the credentials, or None with whether the resolver raised (rather than
#: answering that the tenant has none).
Lookup = tuple[str, Credentials | None, bool]
#: Seconds after which a lookup no longer holds its place: the next tenant may be looked up meanwhile.
_STUCK_AFTER = 5.0


class Lookups:
    """Tenants to look up and finished lookups. At most ``limit`` workers resolve at once (the
    pool's core threads, which it replaces when stuck), so a hung secret store holds up known
    tenants' exports for a second at most, however many tenants it is asked about. A lookup running
    past ``_STUCK_AFTER`` leaves its place to the next tenant's, up to ``2 * limit`` at once: some
    tenants' hung lookups never keep the others from being looked up (``kick``)."""

    def __init__(self, resolver: CredentialsResolver | None, limit: int) -> None:
        self.resolver = resolver
        self.done: deque[Lookup] = deque()
        self._queued: deque[str] = deque()
        self._running = 0  # workers resolving queued tenants one after another
        self._limit = max(1, limit)
        self._lock = threading.Lock()
        self._since: dict[int, float] = {}  # when each worker's current lookup started

    def request(self, tenant: str, pool: WorkerPool) -> None:
        """Resolve ``tenant`` on a worker of ``pool`` (queued while ``limit`` run)."""
        with self._lock:
            self._queued.append(tenant)
        self.kick(pool)

    def kick(self, pool: WorkerPool) -> None:
        """Start workers for the queued tenants, in place of those stuck on a lookup too."""
        if not self._queued:
            return
        with self._lock:
            now = time.monotonic()
            stuck = sum(1 for since in self._since.values() if now - since >= _STUCK_AFTER)
            while self._queued and self._running - stuck < self._limit and self._running < 2 * self._limit:
                self._running += 1
                pool.submit(self._run)

    def _run(self) -> None:
        """Worker: resolve queued tenants one after another until none is left."""
        me = threading.get_ident()
        while True:
            with self._lock:
                if not self._queued:
                    self._since.pop(me, None)
                    self._running -= 1
                    return
                tenant = self._queued.popleft()
                self._since[me] = time.monotonic()
            credentials: Credentials | None = None
            failed = True
            try:
                # a user's resolver may answer as a callable may (a mapping, a pair) or with anything
                # else, which is a failed lookup, never a crash of the pipeline thread applying it
                credentials = to_credentials(self.resolver.resolve(tenant)) if self.resolver is not None else None
                failed = False
            except BaseException as exc:  # its CancelledError too: this worker goes on (``survive``)
                survive("credentials", exc)
            finally:  # (the tenant's lookup is over, whatever ended it: else it would wait for good)
                self.done.append((tenant, credentials, failed))

    def clear(self) -> None:
        """Forget the tenants not looked up yet (shutdown)."""
        self._queued.clear()
