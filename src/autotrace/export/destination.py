"""A destination: one sink with its own bounded buffer, batching, and retry with backoff.

Destinations never block the pipeline: the router adds spans (dropping and counting when the
buffer is full) and hands due batches to the export workers; a failing or slow destination keeps
only its own spans waiting.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .._internal import count, count_keyed, guarded_failure, log_once_per
from ..scores import ScoreItem
from ._host_health import HostHealth
from .sink import Sink, SinkResult
from .trim import TRIMMED_VALUE_BYTES, trimmed

_BACKOFF_BASE = 0.5
_BACKOFF_MAX = 30.0
#: The endpoint, or a proxy before it (nginx's ``client_max_body_size``), refused a request's size.
_TOO_LARGE = 413
#: Whole batches sent at a lowered size cap before it is doubled again (towards ``max_batch``).
_REGROW_AFTER = 8
#: Statuses that say the keys are wrong (revoked by a rotation, say), not the request.
_AUTH_REFUSED = frozenset({401, 403})
#: Seconds a batch refused with keys not refused before waits for new ones (the refusal has the router
#: look them up at once; twice its 5 s re-check of a tenant's credentials, for a secret store still behind).
_KEYS_WAIT = 10.0


class Destination:
    """Buffered, batched delivery of spans to one sink."""

    def __init__(
        self,
        key: str,
        sink: Sink,
        *,
        max_queue: int,
        max_batch: int,
        max_retries: int,
        clock: Callable[[], float] = time.monotonic,
        on_auth_refused: Callable[[], None] | None = None,
    ) -> None:
        """``on_auth_refused``: called (on the export thread) when the endpoint refuses the keys."""
        self.key = key
        self._on_auth_refused = on_auth_refused
        self.sink = sink
        #: Whether the sink's host answers (shared with every destination sending there), if known.
        health = getattr(sink, "health", None)
        self._health = health if isinstance(health, HostHealth) else None
        self.max_queue = max_queue
        self.max_batch = max_batch
        #: The most spans a batch takes: ``max_batch``, halved for each batch refused as too large
        #: and doubled back after ``_REGROW_AFTER`` batches of that size are taken.
        self.batch_cap = max_batch
        self._taken_at_cap = 0
        self.max_retries = max_retries
        self._clock = clock
        self._buffer: deque[Any] = deque()
        self._lock = threading.Lock()
        self._retry_batch: list[Any] | None = None
        self._attempts = 0
        self._next_attempt = 0.0
        #: The sink's keys (``fingerprint``) the endpoint last refused: a batch they got refused
        #: waits for others (``_waits_for_keys``); one refused when that is known is dropped at once.
        self._refused_keys: str | None = None
        #: The retry batch waits for keys other than those (``due``), not for a backoff.
        self._waiting_for_keys = False
        self._oldest = 0.0
        self.in_flight = False
        self._in_flight_size = 0
        self._in_flight_batch: list[Any] | None = None  # until settled: what ``discard`` counts by kind
        #: The batch in flight is counted: as lost by ``discard`` (its outcome must not count it again),
        #: or by its outcome (``discard`` must not count it as lost too).
        self._in_flight_counted = False
        #: Gave its place to another tenant (see the router): sends what it holds without waiting.
        self.retired = False
        #: Given up (retiring, or at shutdown), maybe with a batch under way: what it leaves is
        #: counted as this drop (``abandon``); None while not given up.
        self._abandoned: str | None = None
        #: Its sink closed (``close``): a request under way was cut short, a later one never sent.
        self._closed = False
        #: Set while no ``sink.export`` call runs (``wait_sent``).
        self._sent = threading.Event()
        self._sent.set()
        #: When its keys were last asked for while a batch waits for new ones (set by the router too).
        self.keys_asked = 0.0
        self.last_used = clock()

    # -- producer side (pipeline thread) ------------------------------------------------------------
    def add(self, span: Any) -> bool:
        """Buffer one span; False (and counted) when the buffer is full."""
        with self._lock:
            if len(self._buffer) >= self.max_queue:
                count("scores_dropped.destination_full" if type(span) is ScoreItem else "spans_dropped.destination_full")
                log_once_per("full", self.key, "autotrace: export buffer of %s is full; dropping spans (counted)",
                             self.key)
                return False
            if not self._buffer:
                self._oldest = self._clock()
            self._buffer.append(span)
            self.last_used = self._clock()
            return True

    @property
    def pending(self) -> int:
        """Spans waiting here, including a batch waiting to be retried."""
        return len(self._buffer) + (len(self._retry_batch) if self._retry_batch else 0)

    @property
    def held(self) -> int:
        """Spans this destination holds in memory: waiting, to be retried, or being sent."""
        return self.pending + (self._in_flight_size if self.in_flight else 0)

    @property
    def filling(self) -> bool:
        """Healthy but falling behind: worth slowing callers down. A failing endpoint (retrying or
        in backoff, or on a host that stopped answering) never is: an outage must not slow the application."""
        return (self._attempts == 0 and self._next_attempt == 0.0 and self.pending > self.max_queue // 4
                and not (self._health is not None and self._health.unresponsive))

    @property
    def waiting_for_keys(self) -> bool:
        """A batch the endpoint refused for its keys waits for new ones (``_waits_for_keys``)."""
        return self._waiting_for_keys

    def idle(self) -> bool:
        return not self.in_flight and self.pending == 0

    def due(self, now: float, interval: float, force: bool) -> bool:
        """Whether a batch should be exported now. A batch waiting for new keys goes as soon as the
        sink has them, or at a flush (with the keys it has: refused again, it is dropped). Never while
        the host is paused (``_host_health``): it stopped answering."""
        if self.in_flight or (self._health is not None and self._health.paused()):
            return False
        if now < self._next_attempt and not (self._waiting_for_keys and (force or self._keys() != self._refused_keys)):
            return False
        if self._retry_batch:
            return True
        size = len(self._buffer)
        return size > 0 and (force or self.retired or size >= self.batch_cap or now - self._oldest >= interval)

    def hurry(self) -> None:
        """At shutdown: a cool-down of a paused host ends now, so one batch probes it at once (it may
        be back) rather than every span waiting out the cool-down to be dropped."""
        if self._health is not None and self._health.paused():
            self._health.hurry()

    def take(self) -> list[Any]:
        """Claim the next batch for export (the retry batch first)."""
        with self._lock:
            self.in_flight = True
            if self._retry_batch:
                batch, self._retry_batch = self._retry_batch, None
                self._waiting_for_keys = False
            else:
                size = min(self.batch_cap, len(self._buffer))
                batch = [self._buffer.popleft() for _ in range(size)]
                if self._buffer:
                    self._oldest = self._clock()
            self._in_flight_size = len(batch)
            self._in_flight_batch = batch
            self._in_flight_counted = False
            return batch

    # -- worker side --------------------------------------------------------------------------------
    def export(self, batch: list[Any]) -> None:
        """Send one batch; on a retryable failure keep it for later with exponential backoff."""
        keys = self._keys()  # those the batch goes with: the router may rotate them while it is sent
        self._sent.clear()
        try:
            if self._health is not None and not self._health.allow():  # paused while this batch waited
                self._hold(batch)
                return
            try:
                result = self.sink.export(batch)
            except Exception as exc:  # a broken sink counts as a retryable failure
                guarded_failure("export", exc, key=self.sink.name)
                result = SinkResult(ok=False, retryable=True, reason=type(exc).__name__)
            with self._lock:  # against ``discard``: each span of the batch is counted once, here or there
                if self._in_flight_counted:
                    return
                if self._abandoned and self._closed and not result.ok:  # cut short by shutdown's close
                    warnings = self._cut_short(batch, result)
                else:
                    warnings = self._settle(batch, result, keys)
                self._in_flight_counted = True  # settled: ``discard`` counts only what is left here
                self._in_flight_batch = None
                if self._abandoned:  # given up meanwhile: a retry (or split) never goes
                    _given_up(self._clear(), self._abandoned)
            # said while the batch is still in flight: a ``flush`` that waited for it finds them said
            for warning in warnings:
                log_once_per(*warning)
            if result.status in _AUTH_REFUSED and self._on_auth_refused is not None:
                self._on_auth_refused()
        finally:
            self.in_flight = False
            self._sent.set()

    def _hold(self, batch: list[Any]) -> None:
        """Keep a batch not sent (its host is paused) to go first once the host answers: no attempt,
        no backoff."""
        with self._lock:
            if not self._in_flight_counted:  # (else ``discard`` counted it: shutdown)
                self._in_flight_counted = True
                self._in_flight_batch = None
                if self._abandoned:
                    _given_up(batch, self._abandoned)
                else:
                    self._retry_batch = batch

    def _settle(self, batch: list[Any], result: SinkResult, keys: str | None) -> list[tuple[Any, ...]]:
        """Count the outcome and plan a retry (lock held); ``keys``: those the batch was sent with.
        Returns the warnings to log."""
        if not result.ok and result.settled:  # the endpoint took part of it before failing
            warnings = self._partly_taken(list(result.settled), result)
            done = {id(item) for item in result.settled}
            batch = [item for item in batch if id(item) not in done]
            if not batch:
                return warnings
            return warnings + self._settle(batch, dataclasses.replace(result, settled=(), rejected=(),
                                                                      rejected_spans=0, message=""), keys)
        if result.ok:
            self._attempts = 0
            self._next_attempt = 0.0
            self._refused_keys = None
            self._taken(len(batch))
            if not (result.rejected or result.rejected_spans or result.message):
                _count_each(batch, "spans_exported", "scores_exported", self.sink.name)
                return []
            return self._partly_taken(batch, result)
        if result.status == _TOO_LARGE:
            return [self._too_large(batch, result)]
        count_keyed("export_failures", self.sink.name)
        if result.status in _AUTH_REFUSED and self._waits_for_keys(batch, keys):
            return [(f"keys:{result.reason}", self.key, "autotrace: %s refused the keys (%s); the batch waits up to "
                     "%d s for new ones (a rotation), then is dropped (counted)", self.key, result.reason, _KEYS_WAIT)]
        self._attempts += 1
        if result.retryable and self._attempts <= self.max_retries:
            delay = min(_BACKOFF_MAX, _BACKOFF_BASE * 2 ** min(self._attempts - 1, 32))  # no float overflow
            self._next_attempt = self._clock() + _at_least_asked(delay * (0.5 + random.random() / 2), result)
            self._retry_batch = batch
            return [(f"retry:{result.reason}", self.key, "autotrace: export to %s failed (%s); retrying with backoff",
                     self.key, result.described)]
        _count_each(batch, "spans_dropped.export_failed", "scores_dropped.export_failed")
        self._attempts = 0
        # throttled: the next batch waits as long as the endpoint asked too
        self._next_attempt = self._clock() + _at_least_asked(_BACKOFF_BASE if result.retryable else 0.0, result)
        return [(f"drop:{result.reason}", self.key, "autotrace: export to %s failed (%s); batch dropped (counted)",
                 self.key, result.described)]

    def _cut_short(self, batch: list[Any], result: SinkResult) -> list[tuple[Any, ...]]:
        """A batch of a destination given up whose sink was closed under it (lock held): what the
        endpoint took before (``settled``) counts as taken, the rest as given up (not as failed)."""
        done = {id(item) for item in result.settled}
        warnings = self._partly_taken(list(result.settled), result) if result.settled else []
        _given_up([item for item in batch if id(item) not in done], self._abandoned or "")
        return warnings

    def _keys(self) -> str | None:
        return getattr(self.sink, "fingerprint", None)

    def _waits_for_keys(self, batch: list[Any], keys: str | None) -> bool:
        """A batch refused for its ``keys`` (lock held): kept, to go at once when the sink has other
        keys (a rotation that revoked these, maybe while it was sent: the refusal makes the router
        look them up again), or after ``_KEYS_WAIT`` with these. False, to drop it, when these keys,
        still the sink's, were refused already (wrong ones: later batches are not held up) or
        retries are off."""
        if keys is None or (keys == self._refused_keys and keys == self._keys()) or self.max_retries <= 0:
            return False
        self._refused_keys = keys
        self._retry_batch = batch
        self.keys_asked = self._clock()  # (the refusal has them asked for: ``on_auth_refused``)
        self._waiting_for_keys = True
        self._attempts += 1
        self._next_attempt = self._clock() + _KEYS_WAIT
        return True

    def _partly_taken(self, batch: list[Any], result: SinkResult) -> list[tuple[Any, ...]]:
        """A batch taken with some of it refused for good (lock held): the items named
        (``rejected``) and as many spans as the endpoint counted without naming them
        (``rejected_spans``) are dropped, counted; the endpoint is not asked again (OTLP: a
        partial success is never retried). Returns the warnings to log."""
        warnings: list[tuple[Any, ...]] = []
        kept = batch
        if result.rejected:
            refused = {id(item) for item in result.rejected}
            kept = [item for item in batch if id(item) not in refused]
            _count_each(list(result.rejected), "spans_dropped.export_failed", "scores_dropped.export_failed")
            warnings.append((f"refused:{result.reason}", self.key, "autotrace: %s refused %d item(s) of a batch "
                             "(%s); those dropped (counted), the rest exported", self.key, len(refused), result.reason))
        scores = sum(1 for item in kept if type(item) is ScoreItem)
        rejected = min(result.rejected_spans, len(kept) - scores)
        for name, n in (("spans_exported", len(kept) - scores - rejected), ("scores_exported", scores)):
            if n:
                count_keyed(name, self.sink.name, n)
        if rejected:
            count("spans_dropped.rejected", rejected)
            warnings.append(("rejected", self.key, "autotrace: %s refused %d span(s) of a batch of %d (%s); those "
                             "dropped (counted as spans_dropped.rejected), the rest exported", self.key,
                             result.rejected_spans, len(kept) - scores, result.message or "no reason given"))
        elif result.message:
            count_keyed("export_warnings", self.sink.name)
            warnings.append(("export_warning", self.key, "autotrace: %s took a batch with a warning: %s", self.key,
                             result.message))
        return warnings

    def _too_large(self, batch: list[Any], result: SinkResult) -> tuple[Any, ...]:
        """A batch refused for its size (lock held): its halves go next, at once, and later batches
        are no larger; a span refused alone goes next with its values cut (``trim``), and is dropped
        (counted) when refused even so. The endpoint answered: no backoff."""
        self._attempts = 0
        self._next_attempt = 0.0
        if len(batch) == 1:
            smaller = None if type(batch[0]) is ScoreItem else trimmed(batch[0])
            if smaller is None:
                _count_each(batch, "spans_dropped.too_large", "scores_dropped.too_large")
                return ("too_large:one", self.key, "autotrace: %s refused a single span as too large (%s); dropped "
                        "(counted as spans_dropped.too_large)", self.key, result.reason)
            self._send_next([smaller])
            count_keyed("spans_trimmed", self.sink.name)
            return ("too_large:trim", self.key, "autotrace: %s refused a single span as too large (%s); sending it "
                    "again with each value cut to %d bytes (counted as spans_trimmed)", self.key, result.reason,
                    TRIMMED_VALUE_BYTES)
        self.batch_cap = max(1, min(self.batch_cap, len(batch) // 2))
        self._taken_at_cap = 0
        self._send_next(batch)
        count_keyed("export_batches_split", self.sink.name)
        return ("too_large:split", self.key, "autotrace: %s refused a batch of %d as too large (%s); sending "
                "batches of at most %d", self.key, len(batch), result.reason, self.batch_cap)

    def _send_next(self, items: list[Any]) -> None:
        """Put ``items`` back (lock held), in order, before anything newer."""
        if not self._buffer:
            self._oldest = self._clock()
        self._buffer.extendleft(reversed(items))

    def _taken(self, size: int) -> None:
        """A batch of ``size`` was taken (lock held): after enough at a lowered cap, try twice that."""
        if self.batch_cap < self.max_batch and size >= self.batch_cap:
            self._taken_at_cap += 1
            if self._taken_at_cap >= _REGROW_AFTER:
                self.batch_cap = min(self.max_batch, self.batch_cap * 2)
                self._taken_at_cap = 0

    def shed_newest(self) -> Any:
        """Remove and return the newest span waiting (not one to be retried), None if none: given up
        for another tenant's span past the router's budget."""
        with self._lock:
            return self._buffer.pop() if self._buffer else None

    def take_all(self) -> list[Any]:
        """Remove and return every span waiting here (the retry batch first), to re-target them."""
        with self._lock:
            return self._clear()

    def _clear(self) -> list[Any]:
        """Remove and return what waits here, the retry batch first (lock held)."""
        spans = [*(self._retry_batch or ()), *self._buffer]
        self._buffer.clear()
        self._retry_batch = None
        self._waiting_for_keys = False
        return spans

    def discard(self) -> tuple[int, int]:
        """Drop everything still buffered (shutdown past its deadline); returns how many spans and
        how many scores were not confirmed delivered, counting a batch still in flight."""
        with self._lock:
            lost = self._clear()
            if self.in_flight and not self._in_flight_counted:
                lost += self._in_flight_batch or ()
                self._in_flight_counted = True
                self._in_flight_batch = None
        return _kinds(lost)

    def abandon(self, reason: str = "spans_dropped.tenant_retired") -> tuple[int, int]:
        """Give this destination up (retiring, closed by the router once idle; or at shutdown): drop
        what waits here, returning how many spans and scores; a batch under way is not retried: it
        counts as exported if delivered (the part delivered, if its sink is closed under it), else
        as ``reason`` (a score as its ``scores_dropped`` twin)."""
        with self._lock:
            self._abandoned = reason
            return _kinds(self._clear())

    def after_fork(self) -> None:
        """Forget the parent's spans, lock and connection state in a forked child."""
        self._lock = threading.Lock()
        self._buffer.clear()
        self._retry_batch = None
        self._attempts = 0
        self._next_attempt = 0.0
        self._refused_keys = None
        self._waiting_for_keys = False
        self.in_flight = False
        self._in_flight_counted = False
        self._in_flight_batch = None
        self._sent = threading.Event()
        self._sent.set()
        reset = getattr(self.sink, "after_fork", None)
        if reset is not None:
            try:
                reset()
            except Exception as exc:
                guarded_failure("sink.after_fork", exc)

    def wait_sent(self, timeout: float) -> None:
        """Wait at most ``timeout`` for a ``sink.export`` call under way to return (and its batch to
        settle): at shutdown, a store write its ``close`` let finish."""
        self._sent.wait(timeout)

    def close(self) -> None:
        """Close the sink, cutting a request under way short (at shutdown); idempotent."""
        self._closed = True
        try:
            self.sink.close()
        except Exception as exc:
            guarded_failure("sink.close", exc)


def _at_least_asked(delay: float, result: SinkResult) -> float:
    """``delay``, or the endpoint's ``Retry-After`` if longer (at most ``_BACKOFF_MAX``)."""
    return delay if result.retry_after is None else max(delay, min(result.retry_after, _BACKOFF_MAX))


def _given_up(items: list[Any], reason: str) -> None:
    """Count what a batch under way left at a destination given up (``abandon``) as lost for
    ``reason`` (``spans_dropped.<why>``; a score as ``scores_dropped.<why>``)."""
    _count_each(items, reason, reason.replace("spans_", "scores_", 1))


def _kinds(items: list[Any]) -> tuple[int, int]:
    """How many of ``items`` are spans, and how many scores."""
    scores = sum(1 for item in items if type(item) is ScoreItem)
    return len(items) - scores, scores


def _count_each(batch: list[Any], span_counter: str, score_counter: str, key: str | None = None) -> None:
    """Count a batch's spans and scores apart (per destination ``key`` when given)."""
    scores = sum(1 for item in batch if type(item) is ScoreItem)
    for name, n in ((span_counter, len(batch) - scores), (score_counter, scores)):
        if n and key is not None:
            count_keyed(name, key, n)
        elif n:
            count(name, n)
