"""The span pipeline: ONE span processor that decides the tenant of every span at start (kept
beside the span, not in its attributes), and at end moves it off the caller's thread, where it is
serialised, capped, redacted, cut to the size limit and routed.

Every span goes through it, third-party OpenTelemetry spans included, so redaction and tenant
routing cannot be bypassed. The caller's thread only appends to a bounded queue.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import deque
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .. import _langfuse_sdk, bounds, schema
from .._internal import count, follow_fork, guarded_failure, log_once
from ..config import Settings
from ..context import current_trace_attributes
from ..runtime import state
from ..scores import ScoreItem
from ..spans import ObservationSpan
from ._intake import FairIntake
from ._router_drops import dropped as _dropped
from ._span_texts import bound_texts
from .redaction import SPAN_NAME, STATUS_MESSAGE, Redactor, redacting_for
from .router import Router
from .score_redaction import redact_score
from .span_copy import SpanCopy, dropped_counts
from .span_parts import SpanParts
from .tenant_tracker import MAX_LIVE_SPANS, TenantTracker
from .workers import as_own_thread, on_own_thread, own_thread, run_stranded, survive

#: Once this many spans wait, the pipeline thread is woken and the caller pauses briefly (or a
#: destination's buffer is past a quarter full: then it only pauses). A loop that calls an SDK
#: which releases the GIL for a moment on every call (openai's ``uuid4()``) re-takes it before a
#: waiting thread can run, so the pipeline thread would starve for seconds; a real sleep hands it
#: the GIL, which it then keeps for a whole switch interval. Waking it any earlier only makes it
#: wait for the GIL, which slows every call of such a loop. In a loop around openai that is about
#: one pause per three hundred calls; when the GIL is free (I/O-bound code) the queue never gets
#: this long, and the thread also wakes on its timer.
DRAIN_AT = 256
BACKPRESSURE_PAUSE = 0.0005
SETTLE_AT_SHUTDOWN = 0.05  # seconds of a shutdown's timeout (a tenth at most) kept for cut requests to settle
_TENANT = schema.TENANT
#: Spans started on autotrace's own threads (a redaction hook's) remembered until they end, at most.
MAX_INSIDE = 4096
#: Modules the pipeline's and export threads import when first needed: the IDNA codec (the first
#: connection by name), ``urllib.request`` (a destination's proxy, at a tenant's first span) and the
#: TLS set-up (the first https destination).
_LAZY_IMPORTS = ("encodings.idna", "urllib.request", "autotrace.export.tls")
#: The tenant tracker of the last pipeline shut down: an ``install()`` after ``uninstall()`` takes it
#: over, so a span open across both ends with the tenant it started with (one tracker, bounded).
_last_tenants: TenantTracker | None = None


class _Barrier:
    """Queued by ``flush``: everything queued before it is routed when the pipeline thread reaches
    it; ``done`` is set once that is also exported (or counted), whatever was queued after."""

    __slots__ = ("deadline", "done")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.done = threading.Event()


class SpanPipeline(SpanProcessor):
    """Bounded hand-off from caller threads to one background thread that finalises and routes."""

    def __init__(self, settings: Settings, router: Router, redactor: Redactor,
                 previous: SpanPipeline | None = None) -> None:
        """``previous``: the pipeline this one replaces, whose open spans keep their tenants here."""
        self.settings = settings
        self.router = router
        self.redactor = redactor
        self.tenants = TenantTracker(settings.tenant_resolver, max(MAX_LIVE_SPANS, 4 * settings.queue_size))
        predecessor = previous.tenants if previous is not None else _last_tenants
        if predecessor is not None:
            self.tenants.take_over(predecessor)
        self._queue: deque[ReadableSpan | ScoreItem | _Barrier] = deque()
        self._max_queue = settings.queue_size
        self._intake = FairIntake(self.tenants)  # who gives way once the queue is full
        self._long_settings = bounds.has_long_string((settings.environment, settings.release), settings.max_value_bytes)
        self._drain_at = max(1, min(DRAIN_AT, settings.queue_size // 2))
        self._backpressure = settings.backpressure
        self._wake = threading.Event()
        self._busy = False
        self._closing = False  # shutdown has begun: what comes now is handed on
        self._stopped = False
        #: While a flush waits: what was finalised after its barrier, in order with later barriers,
        #: routed once everything before is exported (pipeline thread only; None when no flush waits).
        self._held: deque[tuple[str | None, Any] | _Barrier] | None = None
        self._held_until = 0.0  # the latest deadline of the flushes held
        self._processed = 0
        #: Spans started on autotrace's own threads and not ended yet (``on_start``), by span id: the SDK
        #: hands ``on_end`` a copy of its span, which carries no mark of ours.
        self._inside: set[int] = set()
        self._parts = SpanParts(redactor)  # events, links, resource, scope, trace state (pipeline thread)
        self._quarter_limit = settings.max_value_bytes // 4  # a text of no more characters is within the limit
        #: None until the first span or score (``_start``): a process that records none (a pre-fork
        #: server's master) forks with no thread of ours (a threaded process's fork may deadlock).
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._refused = False  # the interpreter refused to start it (counted once)
        follow_fork(self)

    def _start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="autotrace-pipeline", daemon=True)
        thread.start()
        return thread

    def _start(self, drain_here: bool = False) -> None:
        """Start the pipeline thread, once (others that find it starting return: it drains what they
        queued). Refused (at interpreter exit on Python 3.12), the next span tries again, and a flush
        (``drain_here``) drains on its own thread meanwhile, as autotrace's own (``as_own_thread``)."""
        if not self._starting.acquire(blocking=False):
            return
        try:
            if self._thread is None and not self._stopped:
                self._thread = self._start_thread()
        except RuntimeError as exc:  # "can't create new thread at interpreter shutdown"
            if not self._refused:
                self._refused = True
                count("pipeline_thread_refused")
                log_once("pipeline_thread", "autotrace: no pipeline thread (%s); spans are exported when flushed", exc)
            if drain_here:  # its hooks' and exports' own calls are not traced, as on the pipeline thread
                with as_own_thread():
                    self._drain()
        finally:
            self._starting.release()

    def _before_fork(self) -> None:
        """Once the threads run: what they import when first needed, imported now (waiting for one of
        them that is importing it). A module that a thread the child does not have was importing
        at the fork stays locked in the child for good, and its pipeline or export threads with it."""
        if self._thread is None:
            return
        for name in _LAZY_IMPORTS:
            try:
                importlib.import_module(name)
            except Exception:  # (nothing is counted or logged here: see ``follow_fork``)
                pass

    def _after_fork_in_child(self) -> None:
        """In a forked child the thread is gone (a new one starts at its first span): drop the parent's spans."""
        if self._stopped:
            return
        self._forget_claims((*self._queue, *(self._held or ())))  # the parent's to export
        self._queue.clear()
        self._held = None
        self._intake = FairIntake(self.tenants)  # a parent's caller may have held its lock at the fork
        self._wake = threading.Event()
        self._busy = False
        self._processed = 0
        self._thread = None
        self._starting = threading.Lock()  # a parent's thread may have held it at the fork
        self.router.reset_after_fork()

    @staticmethod
    def _forget_claims(items: Any) -> None:
        """Items never routed: a Langfuse SDK client's claims on them are not needed (``_langfuse_sdk``)."""
        if _langfuse_sdk.claimed:
            for item in list(items):
                _langfuse_sdk.forget(item[1] if type(item) is tuple else item)  # held: (tenant, item)

    # -- caller's thread ----------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            context = span.context
            if type(span) is not ObservationSpan and not context.trace_flags.sampled:
                return  # recorded for the application (its sampler's RECORD_ONLY), never exported
            if on_own_thread():  # a redaction hook's or credentials resolver's: would feed itself
                if len(self._inside) >= MAX_INSIDE:  # spans never ended: the oldest marks go, counted
                    count("inside_export_marks_dropped", len(self._inside))
                    self._inside.clear()
                self._inside.add(context.span_id)
                return
            parent = span.parent
            tenant = self.tenants.span_started(context.span_id, context.trace_id, parent)
            if tenant is not None:  # kept on the span too: see ``_finalize``
                span._autotrace_tenant = tenant  # type: ignore[attr-defined]
            elif parent is None or parent.is_remote:
                span._autotrace_adoptable = True  # type: ignore[attr-defined]  # see ``adopt``
            trace_attrs = current_trace_attributes()
            if trace_attrs:
                span.set_attributes(trace_attrs)
        except Exception as exc:
            guarded_failure("pipeline.on_start", exc)

    def adopt(self, span: Any, tenant: str) -> bool:
        """Give ``tenant`` to ``span`` if it is a live local root that this pipeline saw start without
        one: a web framework's request span, started before the middleware that knows the request's
        tenant (``autotrace.middleware``). Any other span keeps what it started with."""
        try:
            if not getattr(span, "_autotrace_adoptable", False) or not span.is_recording():
                return False
            span._autotrace_adoptable = False
            context = span.get_span_context()
            if not self.tenants.adopt(context.span_id, context.trace_id, tenant):
                return False
            span._autotrace_tenant = tenant
            return True
        except Exception as exc:
            guarded_failure("pipeline.adopt", exc)
            return False

    def on_end(self, span: ReadableSpan) -> None:
        try:
            if type(span) is not ObservationSpan and not span.context.trace_flags.sampled:  # type: ignore[union-attr]
                return  # a trace left out by the sampler (an autotrace span is only made when sampled)
            if self._inside and span.context.span_id in self._inside:  # type: ignore[union-attr]
                self._inside.discard(span.context.span_id)  # type: ignore[union-attr]
                _dropped("spans_dropped.inside_export", span)
                return
            if span.parent is None or span.parent.is_remote:
                self.tenants.trace_ended(span.context.trace_id, span.context.span_id)  # type: ignore[union-attr]
            queue = self._queue
            if len(queue) < self._max_queue:  # 0 once shut down
                queue.append(span)
            elif self._closing:
                self._hand_on(span)
                return
            elif not self._intake.admit(queue, self._max_queue, span, self.tenants.tenant_of(
                    span.context.span_id), self._processed):  # type: ignore[union-attr]
                return
            if self._thread is None:  # the first span
                self._start()
            behind = len(queue) >= self._drain_at
            if behind and not self._wake.is_set():
                self._wake.set()
            if self._backpressure and (behind or (self.router.pressured and self.router.pressured_for(
                    self.tenants.tenant_of(span.context.span_id)))):  # type: ignore[union-attr]
                count("backpressure_pauses")
                time.sleep(BACKPRESSURE_PAUSE)
        except Exception as exc:
            guarded_failure("pipeline.on_end", exc)

    def submit(self, item: ScoreItem) -> None:
        """Queue a non-span item (a score) for the same redaction and routing as spans."""
        if len(self._queue) < self._max_queue:
            self._queue.append(item)
        elif self._closing:
            self._hand_on(item)
            return
        elif not self._intake.admit(self._queue, self._max_queue, item, item.tenant, self._processed):
            return
        if self._thread is None:
            self._start()
        self._wake.set()

    def _hand_on(self, item: ReadableSpan | ScoreItem) -> None:
        """An item that reached this pipeline once it was shut down (a thread that read the installed
        pipeline just before ``install`` replaced it): to the pipeline installed now, else counted."""
        successor = state.pipeline
        if successor is not None and successor is not self and not successor._closing:
            if type(item) is ScoreItem:
                successor.submit(item)
            else:
                successor.on_end(item)
        else:
            _dropped("spans_dropped.shutdown", item)

    # -- pipeline thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        own_thread()
        interval = self.settings.export_interval
        while not self._stopped:
            self._wake.wait(timeout=min(interval, 0.25))
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        self._busy = True
        try:
            queue = self._queue
            while queue and not self._stopped:  # once stopped, shutdown counts what is left
                item = queue.popleft()
                if type(item) is _Barrier:  # a flush: hold what follows until what precedes is exported
                    if self._held is None:
                        self._held, self._held_until = deque(), 0.0
                    self._held.append(item)
                    self._held_until = max(self._held_until, item.deadline)
                    continue
                try:
                    self._finalize(item)
                except BaseException as exc:  # a score's redaction hook's CancelledError too (``survive``)
                    survive("pipeline.finalize", exc)  # (first: a Ctrl-C goes on up, the span not counted twice)
                    _dropped("spans_dropped.pipeline_error", item)
                self._processed += 1
                if self._processed % self.settings.max_export_batch == 0:
                    self.router.dispatch()
            self.router.dispatch(force=self._held is not None)
            if self._held is not None:
                self._release_held()
            run_stranded()  # export jobs no worker thread could be started for (at exit on Python 3.12)
        except BaseException as exc:
            survive("pipeline.drain", exc)
        finally:
            self._busy = False

    def _release_held(self) -> None:
        """Once the router has exported (or counted) everything: the flushes waiting at the front
        are done, and what was held up to the next waiting flush is routed. Held past the queue's
        size, or once every waiting flush has timed out, everything is routed (those flushes say False)."""
        held = self._held
        assert held is not None
        if self.router.pending() == 0:
            while held and type(held[0]) is _Barrier:
                held.popleft().done.set()  # type: ignore[union-attr]
        elif len(held) <= self.settings.queue_size and time.monotonic() < self._held_until:  # (not _max_queue: 0 at shutdown)
            return
        else:
            held = deque(item for item in held if type(item) is not _Barrier)
        while held and type(held[0]) is not _Barrier:
            self.router.route(*held.popleft())  # type: ignore[misc]
        self._held = held or None
        if held:
            self.router.dispatch(force=True)

    def _route(self, tenant: str | None, item: Any) -> None:
        """Route a finalised item, or hold it while a flush waits for what came before it."""
        if self._held is None:
            self.router.route(tenant, item)
        else:
            self._held.append((tenant, item))

    def _finalize(self, span: ReadableSpan | ScoreItem) -> None:
        if isinstance(span, ScoreItem):
            if redact_score(span, self.redactor):
                self._route(span.tenant, span)
            return
        tenant, lost = self.tenants.span_finished(span.context.span_id)  # type: ignore[union-attr]
        if tenant is None:  # not in the tracker: evicted (too many live spans), or started under an
            tenant = getattr(span, "_autotrace_tenant", None)  # install since uninstalled: as it started
            if tenant is None and lost:  # never exported elsewhere
                _dropped("spans_dropped.tenant_evicted", span)
                return
        max_bytes = self.settings.max_value_bytes
        if type(span) is ObservationSpan:
            span.settle()  # its observation's attributes, from the fields it ended with
            attrs = span.attributes  # handed over with the ended span (finished in place below)
        else:
            attrs = dict(span.attributes or {})  # any other span's attributes are read-only
        if schema.OBS_TYPE not in attrs:
            attrs[schema.OBS_TYPE] = schema.infer_type(attrs)
        if self.settings.environment and schema.ENVIRONMENT not in attrs:
            attrs[schema.ENVIRONMENT] = self.settings.environment
        if self.settings.release and schema.RELEASE not in attrs:
            attrs[schema.RELEASE] = self.settings.release
        if tenant is not None:  # the tenant decided at start, whatever the span's code set since
            attrs[_TENANT] = tenant
        elif _TENANT in attrs:
            del attrs[_TENANT]
        # an autotrace span's values were bounded when they were set, unless set through the OTel API
        capped = type(span) is ObservationSpan and not span.long_values and not self._long_settings
        held = len(attrs)
        attrs = schema.cap_attributes(attrs, max_bytes, values_capped=capped)
        capped_away = held - len(attrs)  # past the attribute cap: said in the span's dropped count too
        span_type = str(attrs[schema.OBS_TYPE])
        name, status, events, links = span.name, span.status, span.events, span.links
        resource, scope, context = span.resource, span.instrumentation_scope, span.context
        redactor = self.redactor
        # texts beside the attributes are bounded too (an exception's message and stack trace are
        # event attributes): held for redaction, cut once redacted, like attributes; most spans have
        # a short name and nothing else of the kind, and skip both steps
        plain = not (events or links or status.description) and len(name) <= self._quarter_limit
        try:
            if not plain:
                name, status, events, links = bound_texts(bounds.hold_value, max_bytes, name, status, events, links)
            if redactor.enabled:
                if redactor.hooks:
                    redacting_for(tenant)
                attrs, _report = redactor.redact_attributes(attrs, span_type)
                name = redactor.redact_text(name, SPAN_NAME, span_type)
                if status.description:
                    status = type(status)(status.status_code,
                                          redactor.redact_text(status.description, STATUS_MESSAGE, span_type))
                if events:
                    events = tuple(self._parts.event(event, span_type) for event in events)
                if links:
                    links = tuple(self._parts.link(link, span_type) for link in links)
                resource, scope = self._parts.origin(resource, scope)
                if context.trace_state:  # type: ignore[union-attr]  # from an incoming request: anyone's text
                    context = self._parts.trace_state(context)  # type: ignore[arg-type]
            if not plain:
                name, status, events, links = bound_texts(bounds.cut_value, max_bytes, name, status, events, links)
        except BaseException as exc:  # fail closed: an unredacted span is never exported (``survive``)
            _dropped("spans_dropped.redaction_failed", span)
            survive("redaction", exc)
            return
        # at the limit, now that what it held is redacted; a root span's name is the trace's in Langfuse
        schema.cut_values(attrs, max_bytes, name if span.parent is None else None)
        if type(span) is ObservationSpan:  # ended and handed over: finish it in place
            span.attributes, span.name, span.status, span.events, span.links = attrs, name, status, events, links
            span.resource, span.instrumentation_scope, span.context = resource, scope, context
            if capped_away:
                span.dropped_attributes += capped_away
            finished: ReadableSpan | ObservationSpan = span
        else:
            dropped_attributes, dropped_events, dropped_links = dropped_counts(span)
            finished = SpanCopy(
                name=name, context=context, parent=span.parent, resource=resource, attributes=attrs,
                events=events, links=links, kind=span.kind, status=status, start_time=span.start_time,
                end_time=span.end_time, instrumentation_scope=scope,
                dropped=(dropped_attributes + capped_away, dropped_events, dropped_links),
            )
        self._route(tenant, finished)

    # -- control ------------------------------------------------------------------------------------
    def pending(self) -> int:
        held = self._held
        return len(self._queue) + (1 if self._busy else 0) + (len(held) if held else 0) + self.router.pending()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.flush(timeout_millis / 1000)

    def flush(self, timeout: float = 5.0) -> bool:
        """Export everything finished before the call; True once that is exported or counted as
        dropped within ``timeout`` seconds (spans other threads finish meanwhile do not hold it up).
        On an export thread (a redaction hook, a credentials resolver), which the export may be
        waiting for, it cannot wait: False unless all is sent."""
        if self._stopped or self.pending() == 0:
            return True
        if on_own_thread():
            return False
        for destination in self.router.destinations():  # a host paused after a blip may be back: probed now
            destination.hurry()  # (one probe at a time; else the flush waits out the cool-down in vain)
        deadline = time.monotonic() + timeout
        barrier = _Barrier(deadline)
        self._queue.append(barrier)  # past the queue's bound too: one per flush that waits
        while True:
            if self._thread is None:  # refused (or starting on another thread)
                self._start(drain_here=True)
            self._wake.set()  # the pipeline thread looks again each time (exports end on other threads)
            left = deadline - time.monotonic()
            if barrier.done.wait(max(0.0, min(0.005, left))):
                return True
            if left <= 0:
                return False

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush within ``timeout``, then stop, all within ``timeout`` (threads stuck on a hung
        endpoint are daemons, left to end by themselves); what was not sent is counted as dropped (a
        request cut short too: its endpoint may have taken it, unconfirmed); what went, as exported.
        Spans and scores that reach it from then on go to the pipeline installed now (else counted)."""
        global _last_tenants
        if self._stopped:
            return
        _last_tenants = self.tenants
        self._closing = True
        self._max_queue = 0  # ``on_end`` and ``submit`` hand on whatever comes now
        deadline = time.monotonic() + timeout
        self.flush(timeout - min(SETTLE_AT_SHUTDOWN, timeout / 10))  # the rest: for ``router.close``
        self._stopped = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():  # (not from a redaction hook)
            thread.join(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
        left = [item[1] if type(item) is tuple else item for item in (*self._queue, *(self._held or ()))
                if type(item) is not _Barrier]  # held: (tenant, item)
        self._queue.clear()
        self._held = None
        self._forget_claims(left)
        scores = sum(1 for item in left if type(item) is ScoreItem)  # then what the router drops, and cuts short
        lost = (len(left) - scores, scores, *self.router.discard_all(), *self.router.close(deadline - time.monotonic()))
        spans, scores = sum(lost[::2]), sum(lost[1::2])
        if scores:
            count("scores_dropped.shutdown", scores)
        if spans:
            count("spans_dropped.shutdown", spans)
            log_once("shutdown_lost", "autotrace: %d spans not exported before shutdown timeout", spans)
