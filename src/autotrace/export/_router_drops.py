"""What the router sends nowhere: the counters of dropped spans and scores, and the tenants found
without keys, each with why (``KeylessTenants``)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .. import _langfuse_sdk
from .._internal import count, guarded_failure
from ..scores import ScoreItem

#: A tenant whose keys could not be looked up: it may well have a project of its own.
FAILED = "spans_dropped.credentials_failed"
#: A tenant that had keys and has none now (removed from the file, deleted from the secret store).
REVOKED = "spans_dropped.credentials_revoked"
#: The drops of spans without keys, as their one warning says them.
DESCRIBED = {"spans_dropped.no_tenant": "with no tenant",
             "spans_dropped.unknown_tenant": "of a tenant with no Langfuse keys",
             FAILED: "of tenants whose credentials could not be looked up (the resolver failed)",
             REVOKED: "of tenants whose credentials were removed (revoked)"}
#: Seconds shutdown waits, once the local store is closed, for the batch it was writing to settle
#: (its write is over: the rest of the batch is refused at once).
_STORE_SETTLE = 1.0
#: Tenants remembered as having had keys (``KeylessTenants``), least recently found forgotten first.
_MAX_HAD_KEYS = 10_000


class KeylessTenants:
    """Tenants found without keys, and since when (bounded: ``limit``, the oldest forgotten first),
    each with why: None when it has none (the ``unknown_tenant`` policy's), ``FAILED`` or
    ``REVOKED`` (its spans never go to the default project). Revoked is any tenant found with keys
    before (the last ``_MAX_HAD_KEYS`` of them): a file rewritten without one customer, even for a
    moment, must not send that customer's traces into the default project. Tenants asked about
    without ever having keys (a junk tenant id per request, say) never push those out."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._found: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self._had_keys: OrderedDict[str, None] = OrderedDict()

    def get(self, tenant: str) -> tuple[float, str | None] | None:
        """When ``tenant`` was found without keys and why, if it is remembered."""
        return self._found.get(tenant)

    def keys_found(self, tenant: str) -> None:
        """``tenant`` has keys (a lookup found them)."""
        self._found.pop(tenant, None)
        self._had_keys[tenant] = None
        self._had_keys.move_to_end(tenant)
        if len(self._had_keys) > _MAX_HAD_KEYS:
            self._had_keys.popitem(last=False)

    def none_found(self, tenant: str, now: float, failed: bool) -> str | None:
        """A lookup found no keys for ``tenant`` (``failed``: it could not tell); returns why."""
        why = FAILED if failed else REVOKED if tenant in self._had_keys else None
        self._found[tenant] = (now, why)
        self._found.move_to_end(tenant)
        while len(self._found) > self._limit:
            self._found.popitem(last=False)
        return why


def dropped(reason: str, item: Any) -> None:
    """Count ``item`` dropped for ``reason`` (``spans_dropped.<why>``): a score as ``scores_dropped.<why>``."""
    if _langfuse_sdk.claimed:
        _langfuse_sdk.forget(item)
    count(of_scores(reason) if type(item) is ScoreItem else reason)


def of_scores(reason: str) -> str:
    """The counter of scores dropped for ``reason`` (``spans_dropped.<why>``): ``scores_dropped.<why>``."""
    return reason.replace("spans_", "scores_", 1)


def closed(destination: Any, reason: str, leaving: list[Any] | None = None) -> None:
    """Close ``destination`` (a ``Destination``), counting what it had not delivered under ``reason``
    (its scores as ``scores_dropped.<why>``). With ``leaving`` (a retiring one given up): a batch
    under way settles by its outcome (``Destination.abandon``), the destination in ``leaving`` until
    then (``close_idle``)."""
    spans, scores = destination.discard() if leaving is None else destination.abandon()
    if spans:
        count(reason, spans)
    if scores:
        count(of_scores(reason), scores)
    if leaving is not None and not destination.idle():
        leaving.append(("", destination))
        return
    destination.close()


def close_idle(*entries: Any) -> None:
    """Close the idle destinations of these deques or lists of ``(tenant, destination)``, removed from them."""
    for group in entries:
        for entry in [entry for entry in group if entry[1].idle()]:
            group.remove(entry)
            entry[1].close()


def abandon_all(waiting: dict[str, Any], destinations: list[Any]) -> tuple[int, int]:
    """Shutdown past its deadline: drop the spans parked for lookups (``waiting``, cleared) and what
    every destination holds; a batch under way settles by its outcome (``Destination.abandon``).
    Returns how many spans and how many scores were dropped."""
    lost = [item for items in list(waiting.values()) for item in items]
    waiting.clear()
    scores = sum(1 for item in lost if type(item) is ScoreItem)
    totals = [(len(lost) - scores, scores), *(d.abandon("spans_dropped.shutdown") for d in destinations)]
    return sum(spans for spans, _ in totals), sum(scores for _, scores in totals)


def shut(destinations: list[Any], local: Any, stop: Callable[[float], None], timeout: float) -> tuple[int, int]:
    """Close every destination (``Destination``): requests under way are cut short, a write to the
    local store (``local``) under way finishes (closing the store waits for it, up to ``_STORE_SETTLE``
    past ``timeout``: else it is rolled back) and nothing after it is written; then ``stop`` the export
    threads and let the store's batch settle (what it wrote counts as exported), all within ``timeout``
    plus ``_STORE_SETTLE``. Drops a batch still unsettled then (not confirmed delivered: its request
    may have reached the endpoint); returns how many spans and scores."""
    deadline = time.monotonic() + max(0.0, timeout)
    for destination in destinations:
        if destination is not local:
            destination.close()
    if local is not None:
        try:  # (``LocalStoreSink``: ``Destination.close`` below finds it closed)
            local.sink.close(_left(deadline + _STORE_SETTLE))
        except Exception as exc:
            guarded_failure("sink.close", exc)
        local.close()
    stop(_left(deadline))
    if local is not None:
        local.wait_sent(_left(deadline + _STORE_SETTLE))
    totals = [d.discard() for d in destinations]
    return sum(spans for spans, _ in totals), sum(scores for _, scores in totals)


def _left(deadline: float) -> float:
    """Seconds until ``deadline`` (``time.monotonic``), as a wait takes them (no more than ``TIMEOUT_MAX``)."""
    return min(max(0.0, deadline - time.monotonic()), threading.TIMEOUT_MAX)
