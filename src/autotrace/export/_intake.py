"""Who gives way when the span queue is full: a queued span or score of a tenant holding more than
the arriving item's tenant (the newest such item), so one tenant filling the queue (with spans, or
an evaluation job's scores) never crowds out another's few spans and scores. Nothing here runs
while the queue has room: callers append with no per-tenant bookkeeping, and what each tenant
holds is counted from the queue itself once it is full (again once the pipeline thread has taken
a share of it since)."""

from __future__ import annotations

import threading
from collections import deque
from itertools import islice
from typing import Any

from .._internal import log_once
from ..scores import ScoreItem
from ._router_drops import dropped
from .tenant_tracker import TenantTracker

#: The queue is counted again once the pipeline thread has taken this share of it since: until
#: then the items appended since are not counted and those taken still are.
RECOUNT_SHARE = 16
#: A full queue of more items is counted on every n-th item only (as many as this in all).
_SAMPLE = 1024
#: The newest items looked through for one that gives way, at most.
_WINDOW = 1024
_ATTEMPTS = 4  # tries, at most, when other threads change the queue's newest end meanwhile


#: What ``FairIntake._holder`` says of a flush's barrier: no tenant holds it.
_NOBODY = object()


def _span_id(item: Any) -> int | None:
    """A queued span's id; None for a score or a flush's barrier (neither has a span context)."""
    context = getattr(item, "context", None)
    return None if context is None else context.span_id


class FairIntake:
    """Admits an item to the full queue if a tenant holds more queued items than the item's tenant
    would (as the router's budget does for the spans destinations hold): the newest item of such a
    tenant gives way, and the item goes to the front (the newest end stays the noisy tenant's, so
    the next one to give way is found at once). Callers come here one at a time, only once the
    queue is full; the pipeline thread takes from the front meanwhile."""

    def __init__(self, tenants: TenantTracker) -> None:
        self._tenants = tenants
        #: Reentrant: the garbage collector may end a span (a generator abandoned in a cycle) while a
        #: caller holds it, and that span comes here on the same thread.
        self._lock = threading.RLock()
        self._held: dict[str | None, int] = {}  # tenant -> its items queued, as last counted (estimated)
        self._most = 0  # the most any tenant holds
        self._counted_at: int | None = None  # the pipeline thread's progress when counted

    def admit(self, queue: deque[Any], limit: int, item: Any, tenant: str | None, progress: int) -> bool:
        """Queue ``item`` (a span or score of ``tenant``) in ``queue`` (full at ``limit`` items) if it
        has room now, or in the place of an item that gives way; whichever gives way is counted as
        ``queue_full``. Whether ``item`` was queued. ``progress``: how many items the pipeline thread
        has taken, to know when to count again."""
        counted = self._counted_at
        if (counted is not None and 0 <= progress - counted < max(1, limit // RECOUNT_SHARE)
                and self._most <= self._held.get(tenant, 0) + 1):
            queued, shed = False, None  # its tenant holds (about) the most: the common case, without the lock
        else:
            with self._lock:
                queued, shed = self._admit(queue, limit, item, tenant, progress)
        lost = shed if shed is not None else None if queued else item
        if lost is not None:
            span_id = _span_id(lost)
            if span_id is not None:
                self._tenants.span_finished(span_id)
            dropped("spans_dropped.queue_full", lost)
            log_once("queue_full", "autotrace: span queue full (%d); dropping the newest spans of the tenants "
                     "holding most (counted)", limit)
        return queued

    def _admit(self, queue: deque[Any], limit: int, item: Any, tenant: str | None,
               progress: int) -> tuple[bool, Any]:
        since = progress - self._counted_at if self._counted_at is not None else -1
        if not 0 <= since < max(1, limit // RECOUNT_SHARE):
            self._count(queue, progress)
        held, shed = self._held, None
        for _ in range(_ATTEMPTS):
            if len(queue) < limit:
                break
            if self._most <= held.get(tenant, 0) + 1:
                return False, None  # its tenant holds (about) the most: this item gives way
            shed = self._heavier(queue, held.get(tenant, 0) + 1)
            if shed is None:
                return False, None
            if self._removed(queue, shed):
                break
            shed = None
        else:
            return False, None
        if shed is None:
            queue.append(item)  # taken from meanwhile: room as usual
        else:
            queue.appendleft(item)
            gave = self._holder(shed)
            held[gave] = held.get(gave, 0) - 1
        held[tenant] = held.get(tenant, 0) + 1
        self._most = max(held.values())
        return True, shed

    def _holder(self, item: Any) -> Any:
        """The tenant a queued span or score is of; ``_NOBODY`` for a flush's barrier."""
        if type(item) is ScoreItem:
            return item.tenant
        span_id = _span_id(item)
        return _NOBODY if span_id is None else self._tenants.tenant_of(span_id)

    def _heavier(self, queue: deque[Any], more_than: int) -> Any:
        """The newest queued item of a tenant holding more than ``more_than`` items, if any is near the end."""
        held, holder = self._held, self._holder
        for item in list(islice(reversed(queue), _WINDOW)):  # (copied in C: unchanged meanwhile)
            tenant = holder(item)
            if tenant is not _NOBODY and held.get(tenant, 0) > more_than:
                return item
        return None

    @staticmethod
    def _removed(queue: deque[Any], item: Any) -> bool:
        """Remove ``item`` from the queue; False if it is gone (or the queue changed meanwhile)."""
        try:
            if queue[-1] is item:
                last = queue.pop()
                if last is item:
                    return True
                queue.append(last)  # appended by another thread meanwhile
            queue.remove(item)  # (from the front: the pipeline thread may have taken it)
            return True
        except (ValueError, IndexError):  # gone (or all taken), or the queue changed while a score was compared
            return False

    def _count(self, queue: deque[Any], progress: int) -> None:
        held: dict[str | None, int] = {}
        holder = self._holder
        every = max(1, len(queue) // _SAMPLE)
        for item in list(islice(queue, 0, None, every)):  # (copied in C: unchanged meanwhile)
            tenant = holder(item)
            if tenant is not _NOBODY:
                held[tenant] = held.get(tenant, 0) + every
        self._held, self._counted_at = held, progress
        self._most = max(held.values(), default=0)
