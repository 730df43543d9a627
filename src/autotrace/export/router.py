"""Routing: choose ONE destination per finished span from its tenant, and drive exports.

Per-tenant Langfuse destinations are created lazily from the credentials resolver (looked up on
an export worker, never on the pipeline thread), capped in number and closed when idle. At the cap,
a new tenant takes the place of an idle destination, else of the least recently used one, which is
retired: it takes no more spans and sends those it holds, with its own tenant's keys, then closes.
At most ``max_tenants`` destinations are retiring at once; past that, the oldest one's unsent spans
are dropped (``spans_dropped.tenant_retired``). A span whose tenant is missing or unknown follows the
``unknown_tenant`` policy: ``drop`` (default: kept nowhere, not even in the local store),
``default`` (the project of ``LANGFUSE_PUBLIC_KEY``) or ``local`` (the embedded store only). A tenant
whose lookup failed, or found with keys before and without them now, is no unknown one: its spans
never go to the default project (``local`` keeps them in the store; else dropped, counted).
"""

from __future__ import annotations

import functools
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from .. import _langfuse_sdk
from .._internal import count, log_once
from ..config import Settings
from ._lookups import Lookups
from ._router_drops import DESCRIBED, KeylessTenants, abandon_all, close_idle, shut
from ._router_drops import closed as _close
from ._router_drops import dropped as _dropped
from .connections import DEFAULT_MAX_IDLE, ConnectionPool
from .credentials import Credentials, CredentialsResolver, invalidate, reset_after_fork
from .destination import Destination
from .langfuse import OTLP_PATH, LangfuseSink
from .sink import Sink
from .workers import WorkerPool

#: Seconds a tenant's credentials (or their absence) are trusted before being looked up again.
_RECHECK_CREDENTIALS = 5.0
#: Spans of one tenant kept while its credentials are being looked up.
_MAX_WAITING = 1_000


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
        #: Destinations that gave their place to a new tenant, oldest first: they send what they
        #: hold and are closed once idle (bounded: ``_make_room``).
        self._retired: deque[tuple[str, Destination]] = deque()
        #: Retired ones given up past that bound with a batch under way: closed once it settles.
        self._leaving: list[tuple[str, Destination]] = []
        #: Spans held by every destination and parked lookup, counted again at each ``dispatch`` and
        #: raised by each span added since: past ``max_buffered_spans`` new spans are dropped, so an
        #: outage of the one Langfuse every tenant shares holds a bounded amount of memory.
        self._held = 0
        #: The destination holding the most spans, as last seen (``_over_budget``).
        self._largest: Destination | None = None
        #: Set at shutdown: a span routed after is dropped, counted (``route``).
        self._closed = False
        #: Tenants being looked up: new ones with their spans meanwhile (bounded), known ones being
        #: checked again (their spans flow on); the lookups, and those finished.
        self._waiting: dict[str, deque[Any]] = {}
        self._checking: set[str] = set()
        self._resolving = Lookups(resolver, pool.size)
        self._lookups = self._resolving.done
        self._max_waiting = min(settings.max_destination_queue, _MAX_WAITING)
        #: Tenants found without keys, why, and since when (re-asked after ``_RECHECK_CREDENTIALS``).
        self._keyless = KeylessTenants(settings.max_tenants)
        #: True while some destination's buffer is past a quarter full; ``pressured_for`` tells
        #: whose callers then slow down (never those of another tenant).
        self.pressured = False
        self._pressured_keys: set[str] = set()
        self._local = self._destination("local", local_sink) if local_sink is not None else None
        #: Whether every admitted span is copied to the local store, rather than only the spans
        #: ``unknown_tenant="local"`` keeps there.
        self._copy_local = self._local is not None and settings.local_store_keeps_all
        #: Every Langfuse connection's: idle ones kept for any destination, and the TLS context.
        self.connections = ConnectionPool(max_idle=max(DEFAULT_MAX_IDLE, 2 * settings.export_workers),
                                          make_tls=self._export_context)
        self._default: Destination | None = None
        if settings.langfuse_enabled and settings.public_key and settings.secret_key:
            credentials = Credentials(settings.public_key, settings.secret_key)
            self._default = self._destination("default", self._langfuse_sink(credentials, "default"))

    def _destination(self, key: str, sink: Sink, tenant: str | None = None) -> Destination:
        s = self.settings
        refused = functools.partial(self._keys_refused, tenant) if tenant is not None else None
        return Destination(key, sink, max_queue=s.max_destination_queue, max_batch=s.max_export_batch,
                           max_retries=s.max_retries, clock=self._clock, on_auth_refused=refused)

    def _keys_refused(self, tenant: str) -> None:
        """Export thread: the tenant's Langfuse refused its keys (revoked by a rotation, say). The
        resolver's cache forgets them; a batch waiting for new keys has them looked up at once (also
        one of a retired destination: ``_follow_keys``), and again at each check while it waits (``_recheck``)."""
        invalidate(self._resolver, tenant)
        entry = self._tenants.get(tenant)
        mine = [entry[0]] if entry is not None else []
        mine += [d for name, d in list(self._retired) if name == tenant]  # a retired one's batch too
        if any(d.waiting_for_keys for d in mine):  # a batch waits for new keys: asked for now, not at
            self._checking.add(tenant)  # the tenant's next span (it may send none), which asks no more
            self._resolving.request(tenant, self._pool)

    def _recheck(self, tenant: str, destination: Destination) -> None:
        """Look a known tenant's keys up again; while a batch waits for new keys, from the secret store,
        not the cache: that holds the refused ones again if the store was behind at the refusal."""
        if destination.waiting_for_keys:
            invalidate(self._resolver, tenant)
            destination.keys_asked = self._clock()
        self._checking.add(tenant)
        self._resolving.request(tenant, self._pool)

    def _export_context(self) -> ssl.SSLContext:
        """The TLS context of export connections (made by the pool at the first HTTPS export)."""
        from .tls import export_context  # here: an install exporting over plain HTTP never needs it

        return export_context(self.settings)

    def _langfuse_sink(self, credentials: Credentials, key: str) -> LangfuseSink:
        return LangfuseSink(self._host(credentials), credentials, timeout=self.settings.export_timeout,
                            name=f"langfuse:{key}", max_request_bytes=self.settings.max_export_bytes,
                            pool=self.connections)

    # -- routing (pipeline thread) ------------------------------------------------------------------
    def route(self, tenant: str | None, span: Any) -> None:
        """Buffer ``span`` for its tenant's destination and the local store (when that is on).

        With Langfuse off, the local store keeps every span. With Langfuse on, a span whose tenant
        is missing or unknown is kept only where ``unknown_tenant`` says (``drop``: nowhere).
        A tenant not looked up recently waits (bounded) while a worker asks the resolver, so one
        slow lookup never holds up other tenants.
        """
        if self._closed:  # shut down: a span finalised past the deadline is counted, not lost
            _dropped("spans_dropped.shutdown", span)
            return
        if not self.settings.langfuse_enabled:
            if self._local is not None:
                self._add(self._local, span)
            else:
                _dropped("spans_dropped.no_destination", span)
            return
        if tenant is None:
            self._unknown(span, "spans_dropped.no_tenant")
            return
        waiting = self._waiting.get(tenant)
        if waiting is not None and self._lookups:  # a lookup has finished since the last dispatch:
            self.apply_lookups()  # its tenant's spans flow now rather than park (and overflow) until then
            waiting = self._waiting.get(tenant)
        if waiting is not None:
            self._park(waiting, span)
            return
        now = self._clock()
        entry = self._tenants.get(tenant)
        if entry is not None:  # a known tenant: its spans flow on while its credentials are checked again
            if (now - entry[1] >= _RECHECK_CREDENTIALS and tenant not in self._checking
                    and self._lookups_running() < self.settings.max_tenants):
                self._recheck(tenant, entry[0])
            self._tenants.move_to_end(tenant)
            self._deliver(entry[0], span)
            return
        unknown = self._keyless.get(tenant)
        if unknown is not None and now - unknown[0] < _RECHECK_CREDENTIALS:
            self._without_keys(span, unknown[1])
        elif self._lookups_running() < self.settings.max_tenants:
            self._waiting[tenant] = waiting = deque()
            self._resolving.request(tenant, self._pool)  # on a worker: ``apply_lookups`` routes its outcome
            self._park(waiting, span)  # charged to the budget as every parked span is
        else:
            self._cap_reached(span)

    def _lookups_running(self) -> int:
        return len(self._waiting) + len(self._checking)

    def _over_budget(self, span: Any, holding: int) -> bool:
        """Charge ``span`` (going where ``holding`` wait) to the budget; spent, the newest span of the
        destination holding most gives way if it holds more, else ``span`` is dropped (True)."""
        if self._held < self.settings.max_buffered_spans:
            self._held += 1
            return False
        largest = self._largest
        shed = largest.shed_newest() if largest is not None and largest.pending > holding + 1 else None
        _dropped("spans_dropped.buffer_limit", span if shed is None else shed)
        log_once("buffer_limit", "autotrace: %d spans wait for export in all (max_buffered_spans); dropping "
                 "the newest spans of the tenants holding most (counted)", self.settings.max_buffered_spans)
        return shed is None

    def _weigh(self, destination: Destination) -> None:
        if self._largest is None or destination.pending > self._largest.pending:
            self._largest = destination

    def _add(self, destination: Destination, span: Any) -> None:
        if self._over_budget(span, destination.pending):
            return
        if not destination.add(span):  # a full buffer counts its own drops; that span holds nothing
            self._held -= 1
        else:
            self._weigh(destination)
        if destination.filling:
            self._pressured_keys.add(destination.key)
            self.pressured = True

    def pressured_for(self, tenant: str | None) -> bool:
        """Whether a caller whose span goes to ``tenant`` should slow down (any thread): only when a
        destination of that span falls behind. A slow tenant endpoint never slows another tenant."""
        keys = self._pressured_keys
        if "local" in keys or (tenant is not None and f"tenant:{tenant}" in keys):
            return True
        return "default" in keys and (tenant is None or tenant not in self._tenants)

    def _deliver(self, destination: Destination | None, span: Any) -> None:
        """A span of an admitted tenant: the local store (when it keeps every span) and ``destination``."""
        if self._copy_local:
            self._add(self._local, span)  # type: ignore[arg-type]
        if destination is not None and not (_langfuse_sdk.claimed and self._sent_by_sdk(destination, span)):
            self._add(destination, span)

    @staticmethod
    def _sent_by_sdk(destination: Destination, span: Any) -> bool:
        """Whether a Langfuse SDK client sends ``span`` itself to the project of ``destination`` (its
        public key, at its endpoint): then autotrace does not, as well (``spans_dropped.sdk_exported``)."""
        sink = destination.sink
        if not isinstance(sink, LangfuseSink) or not _langfuse_sdk.exports_itself(
                span, sink.public_key, sink.host + OTLP_PATH):
            return False
        count("spans_dropped.sdk_exported")
        log_once("sdk_exported", "autotrace: a Langfuse SDK client with a tenant's keys exports its own spans "
                 "to that tenant's project itself; autotrace does not send them there too (counted as "
                 "spans_dropped.sdk_exported)")
        return True

    def _to_local(self, span: Any) -> None:
        """A span kept in the local store only: a Langfuse SDK client's claim on it is not needed."""
        if _langfuse_sdk.claimed:
            _langfuse_sdk.forget(span)
        self._add(self._local, span)  # type: ignore[arg-type]

    def _unknown(self, span: Any, reason: str) -> None:
        """The ``unknown_tenant`` policy (fail closed: with ``drop`` the span is kept nowhere)."""
        policy = self.settings.unknown_tenant
        if policy == "default" and self._default is not None:
            self._deliver(self._default, span)
        elif policy == "local" and self._local is not None:
            self._to_local(span)
        else:
            _dropped(reason, span)
            log_once(reason, "autotrace: dropping spans %s (unknown_tenant=%r): 'default' sends them to the "
                     "default project's keys, 'local' to the local store (counted as %s)",
                     DESCRIBED.get(reason, reason), policy, reason)

    def _without_keys(self, span: Any, why: str | None) -> None:
        """A span of a tenant with no keys: the ``unknown_tenant`` policy's. Unless ``why`` says the
        tenant is not unknown (``FAILED``: its keys could not be looked up; ``REVOKED``: it had keys):
        it may well have a project of its own, so its spans never go to the default project; with
        ``unknown_tenant="local"`` they are kept in the local store, else dropped (counted)."""
        if why is None:
            self._unknown(span, "spans_dropped.unknown_tenant")
        elif self.settings.unknown_tenant == "local" and self._local is not None:
            self._to_local(span)
        else:
            _dropped(why, span)
            log_once(why, "autotrace: dropping spans %s; never sent to the default project (counted as %s)",
                     DESCRIBED[why], why)

    def _cap_reached(self, span: Any) -> None:
        _dropped("spans_dropped.tenant_cap", span)
        log_once("tenant_cap", "autotrace: credentials of %d tenants are being looked up at once (max_tenants); "
                 "dropping spans of other new tenants meanwhile (counted)", self._lookups_running())

    def _park(self, waiting: deque[Any], span: Any) -> None:
        if len(waiting) >= self._max_waiting:
            _dropped("spans_dropped.credentials_pending", span)
            log_once("credentials_pending", "autotrace: spans of a tenant whose credentials are being looked up "
                     "exceed %d; dropping spans (counted)", self._max_waiting)
        elif not self._over_budget(span, len(waiting)):
            waiting.append(span)

    def apply_lookups(self) -> None:
        """Route the spans of every tenant whose lookup has finished (pipeline thread)."""
        while self._lookups:
            tenant, credentials, failed = self._lookups.popleft()
            self._checking.discard(tenant)
            entry = self._tenants.get(tenant)
            spans = self._waiting.pop(tenant, None) or ()
            self._held = max(0, self._held - len(spans))  # charged when parked: charged again where they go
            known = entry[0] if entry is not None else self._reinstate(tenant) if failed else None
            if failed and known is not None:  # a resolver that raised said nothing of revocation:
                self._tenants[tenant] = (known, self._clock())  # keep the known keys, ask again later
                for span in spans:
                    self._deliver(known, span)
                continue
            if credentials is None:
                why = self._forget(tenant, failed)
                for span in spans:
                    self._without_keys(span, why)
                continue
            self._keyless.keys_found(tenant)
            handed = self._follow_keys(tenant, credentials)
            if entry is None and not spans and not handed:  # checked again after it left: nothing to send it
                continue
            destination = self._settle(tenant, credentials)
            for span in handed:  # already admitted and charged: only their destination changes
                destination.add(span)
            for span in spans:
                self._deliver(destination, span)

    def _reinstate(self, tenant: str) -> Destination | None:
        """The tenant's newest retired destination, in place again (its keys are the last known):
        None when it has none."""
        retired = next((entry for entry in reversed(self._retired) if entry[0] == tenant), None)
        if retired is None:
            return None
        self._retired.remove(retired)
        if len(self._tenants) >= self.settings.max_tenants:
            self._make_room()
        retired[1].retired = False
        count("tenant_destinations_reinstated")
        return retired[1]

    def _follow_keys(self, tenant: str, credentials: Credentials) -> list[Any]:
        """``tenant``'s retired destinations follow its keys as one in place does (``_settle``):
        rotated on the same host; on another, their waiting spans are returned, to go there."""
        return [span for name, retired in list(self._retired)
                if name == tenant and not self._rotated(retired, credentials) for span in retired.take_all()]

    def _rotated(self, destination: Destination, credentials: Credentials) -> bool:
        """Give ``destination`` its tenant's ``credentials`` if they are for the host it sends to;
        False if for another host (keys are never sent to a host they are not for)."""
        sink = destination.sink
        if isinstance(sink, LangfuseSink):
            if sink.host != self._host(credentials):
                return False
            sink.rotate(credentials)
        return True

    def _forget(self, tenant: str, failed: bool = False) -> str | None:
        """No credentials: stop sending this tenant anywhere it used to go; remember for a while
        (``failed``: none could be looked up, for a tenant with no destination holding its keys).
        Returns why its spans go nowhere (``KeylessTenants``)."""
        if tenant in self._tenants:
            self._remove(tenant)
        for retired in [entry for entry in self._retired if entry[0] == tenant]:
            self._retired.remove(retired)
            _close(retired[1], "spans_dropped.credentials_revoked")
        return self._keyless.none_found(tenant, self._clock(), failed)

    def _settle(self, tenant: str, credentials: Credentials) -> Destination:
        """The tenant's destination for ``credentials``: rotated keys on the same host in place; a
        new host gets a new destination, and spans waiting for the old one move with the tenant
        (the old host never sees the new keys)."""
        now = self._clock()
        entry = self._tenants.get(tenant)
        if entry is not None:
            old = entry[0]
            if self._rotated(old, credentials):
                self._tenants[tenant] = (old, now)
                self._tenants.move_to_end(tenant)
                return old
            moved = old.take_all()
            self._retire(tenant)  # a batch under way to the old host settles there, counted once
            count("tenant_destinations_moved")
            destination = self._destination(f"tenant:{tenant}", self._langfuse_sink(credentials, tenant), tenant)
            for span in moved:
                destination.add(span)
        else:
            if len(self._tenants) >= self.settings.max_tenants:
                self._make_room()
            destination = self._destination(f"tenant:{tenant}", self._langfuse_sink(credentials, tenant), tenant)
            count("tenant_destinations_created")
        self._tenants[tenant] = (destination, now)
        return destination

    def _host(self, credentials: Credentials) -> str:
        host = credentials.host or self.settings.langfuse_host
        assert host is not None
        return host.rstrip("/")

    def _make_room(self) -> None:
        """Free a place for a new tenant: evict the least recently used idle destination, else
        retire the least recently used one."""
        for tenant, (destination, _) in self._tenants.items():
            if destination.idle():
                self._remove(tenant)
                count("tenant_destinations_evicted")
                return
        self._retire(next(iter(self._tenants)))
        count("tenant_destinations_retired")

    def _retire(self, tenant: str) -> None:
        """``tenant``'s destination leaves its place: it sends what it holds, then closes; past
        ``max_tenants`` retiring, the oldest retiring one is closed and its unsent spans dropped."""
        if len(self._retired) >= self.settings.max_tenants:
            _close(self._retired.popleft()[1], "spans_dropped.tenant_retired", self._leaving)
        destination = self._tenants.pop(tenant)[0]
        destination.retired = True
        self._retired.append((tenant, destination))

    def _remove(self, tenant: str) -> None:
        _close(self._tenants.pop(tenant)[0], "spans_dropped.credentials_revoked")

    # -- scheduling ---------------------------------------------------------------------------------
    def destinations(self) -> list[Destination]:
        """Every destination (a snapshot: flush and shutdown read it while the pipeline thread
        adds and removes tenants; copying a dict's values is one step for the interpreter)."""
        found = [d for d, _ in list(self._tenants.values())]
        found.extend(d for _, d in [*self._retired, *self._leaving])
        found.extend(d for d in (self._local, self._default) if d is not None)
        return found

    def dispatch(self, force: bool = False) -> None:
        """Route finished lookups, hand every due batch to the export workers, close destinations
        idle for too long."""
        self.apply_lookups()
        self._resolving.kick(self._pool)  # tenants queued behind hung lookups
        now = self._clock()
        pressured: set[str] = set()
        held = sum(len(spans) for spans in self._waiting.values())
        self._largest = None
        for destination in self.destinations():
            if destination.idle():  # holds nothing, nothing due (most of a thousand tenants' while a flush waits)
                continue
            held += destination.held
            if destination.filling:
                pressured.add(destination.key)
            if destination.due(now, self.settings.export_interval, force):
                batch = destination.take()  # one lane per host: one that hangs holds not every thread
                self._pool.submit(lambda d=destination, b=batch: d.export(b), getattr(destination.sink, "host", None))
            self._weigh(destination)
        self._pressured_keys, self.pressured = pressured, bool(pressured)
        self._held = held
        idle_for, stale = self.settings.tenant_idle_seconds, []
        for tenant, (destination, checked) in list(self._tenants.items()):
            if now - destination.last_used > idle_for and destination.idle() and tenant not in self._waiting:
                stale.append(tenant)
            elif (destination.waiting_for_keys and now - checked >= _RECHECK_CREDENTIALS  # (no span may come)
                  and tenant not in self._checking):
                self._recheck(tenant, destination)
        for tenant, destination in list(self._retired):  # so do retired ones' (unless being looked up)
            if (destination.waiting_for_keys and now - destination.keys_asked >= _RECHECK_CREDENTIALS
                    and tenant not in self._checking and tenant not in self._waiting):
                self._recheck(tenant, destination)
        for tenant in stale:
            self._remove(tenant)
            count("tenant_destinations_evicted")
        close_idle(self._retired, self._leaving)

    def pending(self) -> int:
        waiting = sum(len(spans) for spans in list(self._waiting.values()))
        return waiting + sum(d.pending + (1 if d.in_flight else 0) for d in self.destinations())

    def live_tenants(self) -> int:
        return len(self._tenants)

    def discard_all(self) -> tuple[int, int]:
        """Drop what waits (shutdown past its deadline); returns how many spans and how many scores.
        Nothing is routed after. A batch under way is settled by ``close``."""
        self._closed = True
        return abandon_all(self._waiting, self.destinations())

    def reset_after_fork(self) -> None:
        """In a forked child: fresh export threads, fresh connections and credentials locks, no
        lookups in flight, none of the parent's spans."""
        self._waiting = {}
        self._checking = set()
        self._resolving = Lookups(self._resolver, self._pool.size)
        self._lookups = self._resolving.done
        reset_after_fork(self._resolver)
        for destination in self.destinations():
            destination.after_fork()
        self.connections.forget()
        self._pool = self._pool.respawn()

    def close(self, timeout: float = 1.0) -> tuple[int, int]:
        """Close every destination and stop the export threads (waiting at most ``timeout``). Requests
        under way are cut short first (a local store write finishes), so their batches settle meanwhile:
        what went counted as sent, the rest as ``spans_dropped.shutdown``. Returns how many spans and
        scores of batches still unsettled then (not confirmed delivered) it counts as dropped."""
        self._closed = True
        lost = shut(self.destinations(), self._local, self._pool.stop, timeout)  # every destination closed
        self.connections.close()
        self._tenants.clear()
        self._retired.clear()
        self._leaving.clear()
        self._waiting.clear()
        self._checking.clear()
        self._resolving.clear()
        return lost

