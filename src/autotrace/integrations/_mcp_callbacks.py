"""An MCP client's callbacks for what a server sends (``progress_callback``, the sampling,
elicitation and roots requests, and the notifications: ``logging_callback``, ``message_handler``,
notification bindings), run in the tracing state of the request they belong to: its tenant, trace
attributes, content-capture setting and active replay, and a parent in its trace.

The SDK runs them in the task that read the message: over stdio (and a streamable HTTP session's
standalone stream) that is the task started when the session connected, so a session shared by
several requests ran every callback (an LLM call in a sampling callback) under the tenant that had
connected, in a trace of its own. A progress callback is the call's own. A server's request names
its call's trace in ``_meta`` (the SDK's servers send their ``traceparent``): one of the session's
requests in flight in that trace lends its state (else one of the last that ended in it: a request
may come late, from a tool's background task or a call the client gave up on, and is never then
another call's), the server's span the parent: the one whose request's span it names (a server that
passes the client's context on), else what all of them share (``_sender``): calls in flight at
once in one trace may each leave content out, or carry their own trace attributes. A request naming
no such trace (a server that sends none) takes the state of the one request in flight, what several
of one tenant share, and never a tenant's when several tenants' requests are, or none is
(``_unnamed``). A notification names no request: it runs in no tenant's state (``_anonymous``),
unless it already runs in one of the session's requests' own (a streamable HTTP request's stream).
The input requests the client's own driver dispatches between the rounds of a call
(``InputRequiredResult``) run in that caller's task and keep its state. A session connected before
``install()`` took the SDK's own handlers then: its server's requests and notifications run as the
SDK runs them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

from .. import carried
from .._internal import guarded_failure
from ..carried import current_values
from ..propagation import extract

_TRACE_KEYS = ("traceparent", "tracestate")
_MAX_SENT = 16  # the spans a call's requests were sent in that are kept (a call of many rounds)
_MAX_ENDED = 32  # the traces of a session's calls that ended whose states are kept, the last ones
_MAX_ENDED_CALLS = 8  # in each, the last calls' states


class Caller:
    """The tracing state of one client request in flight (taken where its observation is current),
    known to its session by trace id until ``leave``."""

    __slots__ = ("otel", "sent", "session", "token", "trace_id", "values")

    def __init__(self, session: Any) -> None:
        self.values = current_values()
        self.otel = otel_context.get_current()
        self.session = session
        span = trace.get_current_span(self.otel).get_span_context()
        self.trace_id = span.trace_id
        self.sent = [span.span_id]  # the spans its requests were sent in (``note_sent``), which a server names
        self.token: Any = None  # of ``_CALLING``, set while it runs
        with _LOCK:
            _IN_FLIGHT.setdefault(session, {}).setdefault(self.trace_id, []).append(self)

    def leave(self) -> None:
        """The request has ended: its session's callbacks no longer take its state (never raises)."""
        try:
            with _LOCK:
                calls = _IN_FLIGHT.get(self.session, {})
                waiting = calls.get(self.trace_id, [])
                if self in waiting:
                    waiting.remove(self)
                if not waiting:
                    calls.pop(self.trace_id, None)
                if self.trace_id:
                    self._keep_ended()
            if self.token is not None:
                _CALLING.reset(self.token)
        except Exception as exc:  # ``_CALLING`` set in another context: left as it is
            guarded_failure("mcp.callback", exc)

    def _keep_ended(self) -> None:
        """Keep this request's state, by trace id, among its session's last that ended (``_LOCK``
        held), no longer holding the session, which it would keep alive."""
        ended = _ENDED.get(self.session)
        if ended is None:
            ended = _ENDED[self.session] = {}
        kept = ended.pop(self.trace_id, None)
        self.session = None
        ended[self.trace_id] = [*kept[1 - _MAX_ENDED_CALLS:], self] if kept else [self]  # the last ended, last
        if len(ended) > _MAX_ENDED:
            del ended[next(iter(ended))]

    def progress(self, callback: Any) -> Callable[..., Awaitable[Any]]:
        """``callback`` (the call's ``progress_callback``), run in this request's state."""

        async def progress(*args: Any, **kwargs: Any) -> Any:
            return await self.run(callback, args, kwargs, self.otel)

        return progress

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], otel: Context) -> Any:
        """``await fn(*args, **kwargs)`` with this request's variables and ``otel`` current; the
        task's own put back after (``carried.enter``)."""
        entered = carried.enter(self.values, otel, "mcp.callback")
        try:
            return await fn(*args, **kwargs)
        finally:
            carried.leave(entered)


_LOCK = threading.Lock()
_IN_FLIGHT: weakref.WeakKeyDictionary[Any, dict[int, list[Caller]]] = weakref.WeakKeyDictionary()
_ENDED: weakref.WeakKeyDictionary[Any, dict[int, list[Caller]]] = weakref.WeakKeyDictionary()


#: The request running here (set by ``enter``), whose sending ``note_sent`` notes.
_CALLING: ContextVar[Caller | None] = ContextVar("autotrace_mcp_calling", default=None)
#: The session whose server's request is being answered (set by ``on_request``), in its task.
_PEER: ContextVar[Any] = ContextVar("autotrace_mcp_peer", default=None)
Found = tuple[Caller, Context] | None  # the state to run in and its OTel context; None: as it is


def _calls(session: Any) -> tuple[bool, dict[int, list[Caller]]]:
    """Whether the running context is one of ``session``'s requests' own, and its requests in flight
    by trace id (call with ``_LOCK`` held). Its own: where one of them runs (``_CALLING``: its
    stream, an in-process server's handler), with its tenant; or in the trace of one with its
    tenant while no other tenant's is in flight. Only sharing a trace and tenant is not enough: a
    session connected in one tenant's turn reads what its server sends there, also while another
    tenant's call is in flight, whose notifications then ran in the first tenant's state."""
    calls = _IN_FLIGHT.get(session, {})
    tenant = current_values()[0]
    calling = _CALLING.get()
    if calling is not None and calling.values[0] == tenant and calling in calls.get(calling.trace_id, ()):
        return True, calls
    trace_id = trace.get_current_span().get_span_context().trace_id
    callers = [caller for waiting in calls.values() for caller in waiting]
    own = trace_id != 0 and any(caller.values[0] == tenant for caller in calls.get(trace_id, ())) and \
        all(caller.values[0] == tenant for caller in callers)
    return own, calls


def _owner(session: Any, meta: Any) -> Found:
    """The session's request in flight (else ended) in the trace ``meta`` names, and the context
    that makes the server's span (named there) the parent; else None when it already runs in one of
    the session's requests' own state, and ``_unnamed``'s when not."""
    given = {key: meta[key] for key in _TRACE_KEYS if isinstance(meta.get(key), str)} \
        if isinstance(meta, Mapping) else {}
    span = trace.get_current_span(extract(given)) if "traceparent" in given else None
    named = span.get_span_context() if span is not None else None
    with _LOCK:
        own, calls = _calls(session)
        waiting = calls.get(named.trace_id) or _ENDED.get(session, {}).get(named.trace_id) \
            if named is not None and named.is_valid else None
        if not waiting:
            return None if own else _unnamed(session, [caller for callers in calls.values() for caller in callers])
        caller = _sender(session, waiting, named.span_id)  # type: ignore[union-attr]
    return caller, trace.set_span_in_context(span, caller.otel)  # type: ignore[arg-type]


def _sender(session: Any, callers: list[Caller], span_id: int) -> Caller:
    """Which of ``callers``, in flight in one trace, the server's request naming the span ``span_id``
    belongs to: the one whose request was sent in it, else the only one, else their common state."""
    found = next((caller for caller in callers if span_id in caller.sent), None)
    if found is not None:
        return found
    return callers[0] if len(callers) == 1 else _common(session, callers, Context())


def _common(session: Any, callers: list[Caller], otel: Context) -> Caller:
    """The state ``callers`` share, under ``otel``: a variable they differ in is unset, and content
    left out if any of them leaves it out."""
    first = callers[0].values
    shared = [value if all(caller.values[i] == value for caller in callers) else None
              for i, value in enumerate(first)]
    if any(caller.values[1] is False for caller in callers):
        shared[1] = False
    return _state(session, (shared[0], shared[1], shared[2], shared[3]), otel)


def _state(session: Any, values: Any, otel: Context) -> Caller:
    """A state to run a callback in that is no request's (never in flight)."""
    state = Caller.__new__(Caller)
    state.session, state.trace_id, state.otel, state.sent, state.token, state.values = session, 0, otel, [], None, values
    return state


def _unnamed(session: Any, callers: list[Caller]) -> tuple[Caller, Context]:
    """A server's request naming no trace of the session's (a server that sends none): the one
    request in flight's state, under its span; with several of one tenant, the state they share
    (``_common``) in a trace of its own; else (several tenants' requests in flight, or none) ``_anonymous``: whose
    it is cannot be told, never another tenant's nor the one that connected the session."""
    if len(callers) == 1:
        return callers[0], callers[0].otel
    if callers and len({caller.values[0] for caller in callers}) == 1:
        return _common(session, callers, Context()), Context()
    return _anonymous(session, callers)


def _anonymous(session: Any, callers: list[Caller]) -> tuple[Caller, Context]:
    """No tenant's state, in a trace of its own, content left out if where it runs or any of
    ``callers`` leaves it out."""
    leaves_out = current_values()[1] is False or any(caller.values[1] is False for caller in callers)
    return _state(session, (None, False if leaves_out else None, None, None), Context()), Context()


async def _run(session: Any, find: Callable[[], Found], wrapped: Callable[..., Awaitable[Any]],
               args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``await wrapped(*args, **kwargs)`` in the state ``find`` gives (None: as it is). If it fails,
    in no tenant's state, content left out: as it is would be the state of whoever connected the session."""
    try:
        found = find()
    except Exception as exc:
        guarded_failure("mcp.callback", exc)
        found = _state(session, (None, False, None, None), Context()), Context()
    if found is None:
        return await wrapped(*args, **kwargs)
    caller, otel = found
    return await caller.run(wrapped, args, kwargs, otel)


async def on_request(wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:
    """``ClientSession._on_request``: a request the server sent (its callback then takes a request's
    state in ``dispatch_input_request``)."""
    token = _PEER.set(instance)
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _PEER.reset(token)


async def dispatch_input_request(wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...],
                                 kwargs: dict[str, Any]) -> Any:
    """``ClientSession.dispatch_input_request``: a sampling, elicitation or roots request the server
    sent runs in the state of the request whose trace ``_meta`` names; one the client's own driver
    dispatches (an ``InputRequiredResult``'s), in its caller's task, as it is."""
    if _PEER.get() is not instance:
        return await wrapped(*args, **kwargs)
    request_context = args[0] if args else kwargs.get("ctx")
    return await _run(instance, lambda: _owner(instance, getattr(request_context, "meta", None)), wrapped, args,
                      kwargs)


def _unattributed(session: Any) -> Found:
    """A notification's state: as it is in one of the session's requests' own, else ``_anonymous``."""
    with _LOCK:
        own, calls = _calls(session)
        callers = [caller for callers in calls.values() for caller in callers]
    return None if own else _anonymous(session, callers)


async def from_peer(wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
    """``ClientSession._on_notify`` (every notification the server sends: ``logging_callback``,
    ``message_handler``) and the session's tasks that deliver notification bindings and transport
    errors: a notification names no request, so it runs in no tenant's state (``_unattributed``)."""
    return await _run(instance, lambda: _unattributed(instance), wrapped, args, kwargs)


def enter(session: Any, progress: bool, args: tuple[Any, ...],
          kwargs: dict[str, Any]) -> tuple[Caller | None, tuple[Any, ...], dict[str, Any]]:
    """A request whose observation is current, known to ``session`` while it runs, and the
    arguments to send: with ``progress``, its ``progress_callback`` (the fourth) run in its state."""
    try:
        caller = Caller(session)
    except Exception as exc:
        guarded_failure("mcp.callback", exc)
        return None, args, kwargs
    try:
        caller.token = _CALLING.set(caller)
    except Exception as exc:
        guarded_failure("mcp.callback", exc)
    if progress and kwargs.get("progress_callback") is not None:
        kwargs = {**kwargs, "progress_callback": caller.progress(kwargs["progress_callback"])}
    elif progress and len(args) > 3 and args[3] is not None:
        args = (*args[:3], caller.progress(args[3]), *args[4:])
    return caller, args, kwargs


def note_sent() -> None:
    """The request running here is being sent, in the current span (the SDK's own client span), which
    the server's requests for it name (never raises)."""
    try:
        caller = _CALLING.get()
        if caller is not None and len(caller.sent) < _MAX_SENT:
            caller.sent.append(trace.get_current_span().get_span_context().span_id)
    except Exception as exc:
        guarded_failure("mcp.callback", exc)


def leave(caller: Caller | None) -> None:
    """The request has ended: its session's callbacks no longer take its state."""
    if caller is not None:
        caller.leave()
