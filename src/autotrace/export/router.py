"""Routing: choose ONE destination per finished span from its tenant, and drive exports.

Per-tenant Langfuse destinations are created lazily from the credentials resolver, capped in
number (least recently used idle ones are evicted) and closed when idle. A span whose tenant is
missing or unknown follows the ``unknown_tenant`` policy: ``drop`` (default), ``default`` (the
project of ``LANGFUSE_PUBLIC_KEY``) or ``local`` (the embedded store only).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .._internal import count, log_once
from ..config import Settings
from .credentials import Credentials, CredentialsResolver
from .destination import Destination
from .langfuse import LangfuseSink
from .sink import Sink
from .workers import WorkerPool

_RECHECK_CREDENTIALS = 5.0


class Router:
    """Tenant -> destination, plus the export scheduling of every destination."""

    def __init__(
        self,
        settings: Settings,
        resolver: CredentialsResolver | None,
        local_sink: Sink | None,
        pool: WorkerPool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._resolver = resolver
        self._pool = pool
        self._clock = clock
        self._tenants: OrderedDict[str, tuple[Destination, float]] = OrderedDict()
        #: True while some destination's buffer is past a quarter full (callers then slow down).
        self.pressured = False
        self._local = self._destination("local", local_sink) if local_sink is not None else None
        self._default: Destination | None = None
        if settings.langfuse_enabled and settings.public_key and settings.secret_key:
            credentials = Credentials(settings.public_key, settings.secret_key)
            self._default = self._destination("default", self._langfuse_sink(credentials, "default"))

    def _destination(self, key: str, sink: Sink) -> Destination:
        s = self.settings
        return Destination(key, sink, max_queue=s.max_destination_queue, max_batch=s.max_export_batch,
                           max_retries=s.max_retries, clock=self._clock)

    def _langfuse_sink(self, credentials: Credentials, key: str) -> LangfuseSink:
        host = credentials.host or self.settings.langfuse_host
        assert host is not None
        return LangfuseSink(host, credentials, timeout=self.settings.export_timeout, name=f"langfuse:{key}")

    # -- routing (pipeline thread) ------------------------------------------------------------------
    def route(self, tenant: str | None, span: Any) -> None:
        """Buffer ``span`` for its destination (and the local store when that is on)."""
        if self._local is not None:
            self._local.add(span)  # a full buffer counts its own drops
            self.pressured = self.pressured or self._local.filling
        if self.settings.langfuse_enabled:
            destination = self._for_tenant(tenant)
            if destination is not None:
                destination.add(span)
                self.pressured = self.pressured or destination.filling
        elif self._local is None:
            count("spans_dropped.no_destination")

    def _for_tenant(self, tenant: str | None) -> Destination | None:
        if tenant is None:
            return self._fallback("spans_dropped.no_tenant")
        entry = self._tenants.get(tenant)
        now = self._clock()
        if entry is not None and now - entry[1] < _RECHECK_CREDENTIALS:
            self._tenants.move_to_end(tenant)
            return entry[0]
        credentials = self._resolver.resolve(tenant) if self._resolver is not None else None
        if credentials is None:
            if entry is not None:  # credentials revoked: stop sending this tenant anywhere it used to go
                self._remove(tenant)
            return self._fallback("spans_dropped.unknown_tenant")
        if entry is not None:
            sink = entry[0].sink
            if isinstance(sink, LangfuseSink):
                sink.rotate(credentials)
            self._tenants[tenant] = (entry[0], now)
            self._tenants.move_to_end(tenant)
            return entry[0]
        if len(self._tenants) >= self.settings.max_tenants and not self._evict_one():
            count("spans_dropped.tenant_cap")
            log_once("tenant_cap", "autotrace: %d live tenant destinations (max_tenants); dropping spans (counted)",
                     len(self._tenants))
            return None
        destination = self._destination(f"tenant:{tenant}", self._langfuse_sink(credentials, tenant))
        self._tenants[tenant] = (destination, now)
        count("tenant_destinations_created")
        return destination

    def _fallback(self, reason: str) -> Destination | None:
        policy = self.settings.unknown_tenant
        if policy == "default" and self._default is not None:
            return self._default
        if policy != "local" or self._local is None:  # with "local" the local store already has it
            count(reason)
        return None

    def _evict_one(self) -> bool:
        for tenant, (destination, _) in self._tenants.items():
            if destination.idle():
                self._remove(tenant)
                count("tenant_destinations_evicted")
                return True
        return False

    def _remove(self, tenant: str) -> None:
        destination, _ = self._tenants.pop(tenant)
        lost = destination.discard()
        if lost:
            count("spans_dropped.credentials_revoked", lost)
        destination.close()

    # -- scheduling ---------------------------------------------------------------------------------
    def destinations(self) -> list[Destination]:
        found = [d for d, _ in self._tenants.values()]
        found.extend(d for d in (self._local, self._default) if d is not None)
        return found

    def dispatch(self, force: bool = False) -> None:
        """Hand every due batch to the export workers; close destinations idle for too long."""
        now = self._clock()
        pressured = False
        for destination in self.destinations():
            pressured = pressured or destination.filling
            if destination.due(now, self.settings.export_interval, force):
                batch = destination.take()
                self._pool.submit(lambda d=destination, b=batch: d.export(b))
        self.pressured = pressured
        idle_for = self.settings.tenant_idle_seconds
        stale = [t for t, (d, _) in self._tenants.items() if d.idle() and now - d.last_used > idle_for]
        for tenant in stale:
            self._remove(tenant)
            count("tenant_destinations_evicted")

    def pending(self) -> int:
        return sum(d.pending + (1 if d.in_flight else 0) for d in self.destinations())

    def live_tenants(self) -> int:
        return len(self._tenants)

    def discard_all(self) -> int:
        return sum(d.discard() for d in self.destinations())

    def reset_after_fork(self) -> None:
        """In a forked child: fresh export threads, fresh connections, none of the parent's spans."""
        self._pool = self._pool.respawn()
        for destination in self.destinations():
            destination.after_fork()

    def close(self) -> None:
        for destination in self.destinations():
            destination.close()
        self._tenants.clear()
