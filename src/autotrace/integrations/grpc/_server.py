"""gRPC server interceptors (``grpc`` and ``grpc.aio``): each call joins the caller's trace with a
SERVER span, takes its tenant from the service (``tenant_from_call``, or a scope an outer
interceptor set) or else, only when ``trust_incoming_tenant`` is set, from the caller, keeps the
caller's other baggage entries current for the handler's own calls, and ends when
the handler, or the stream it returns, finishes, with the status the client gets: also when grpc
fails the call after the handler (a response it cannot serialise or send, see ``Serializer``) or
before any (no handler for the method, see ``_rejected``)."""

from __future__ import annotations

import gc
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from types import GeneratorType
from typing import Any

import grpc
import grpc.aio
from opentelemetry import context as otel_context

from ..._internal import guarded_failure
from ...context import (
    current_tenant,
    forget_inherited_scope,
    refuse_incoming_tenant,
    release_tenant,
    reset_tenant,
    set_tenant,
)
from ...middleware import awaited_answer, resolver_answer, tenant_of
from ...observation import Observation
from ...runtime import state
from ._common import KIND_SERVER, finish_call, others_aside, start_call, untraced
from ._handlers import ASYNC_GENERATOR, COROUTINE, MethodHandler, plan_of
from ._scope import call_parent, caller_context, incoming_baggage
from ._scope import current as _current
from ._serializer import Serializer

#: ``tenant_from_call(handler_call_details, servicer_context)``: the call's tenant id, or None.
TenantFromCall = Callable[[Any, Any], "str | Awaitable[str | None] | None"]


class _ServerCall:
    """The span and tenant scope of one incoming call."""

    __slots__ = ("baggage", "obs", "ran_out", "refused", "requests", "tenant", "tenant_token", "unsent")

    def __init__(self, handler_call_details: Any, known: bool = True, own: Any = None,
                 requests: bool = False) -> None:
        self.obs: Observation | None = None
        self.requests = requests  # it reads a request stream (see _ended_by_client)
        self.ran_out = False  # a sync stream's responses ran out (see _close_when_done)
        self.tenant: str | None = None  # tenant_from_call's answer (own) if a tenant id, else the trusted caller's
        self.tenant_token: Any = None
        #: ``tenant_from_call`` failed: no caller names the tenant later either (``refuse_incoming_tenant``)
        self.refused: Any = None
        self.baggage: Mapping[str, object] | None = None  # the caller's, but its tenant (see incoming_baggage)
        self.unsent: tuple[Any, str | None, BaseException | None] | None = None  # see Serializer
        try:
            ctx = caller_context(handler_call_details.invocation_metadata)
            tenant = tenant_of(own, ctx)  # ``tenant_from_call``'s answer (own), else the caller's when trusted
            if tenant is None and own is not None:  # it failed (as the middleware's tenant function)
                self.refused = refuse_incoming_tenant()
            # answered but no tenant id (it failed): none, not even an outer interceptor's scope
            if tenant is not None or (own is not None and current_tenant() is not None):
                self.tenant, self.tenant_token = tenant, set_tenant(tenant)
            self.obs = start_call(handler_call_details.method, KIND_SERVER, parent=call_parent(ctx, tenant), known=known)
            self.baggage = incoming_baggage(ctx)
        except Exception as exc:
            guarded_failure("grpc.server_start", exc)

    def close(self, servicer_context: Any, error: BaseException | None = None) -> None:
        if self.obs is not None:
            readable = _readable(servicer_context)
            unwatched, servicer_context = readable is not servicer_context, readable
            code = _context_code(servicer_context)
            if self.unsent is not None and self.unsent[0] is None:  # grpc failed, sending no status
                finish_call(self.obs, None, None, self.unsent[2])
            elif code is not None:  # set by the handler (abort, set_code), with the error it raised after
                finish_call(self.obs, code, _context_details(servicer_context), _raised(error))
            elif (gone := _ended_by_client(servicer_context, error, unwatched or self.requests)) is not None:
                finish_call(self.obs, gone[0], gone[1], interrupted=True)
            elif error is not None:
                finish_call(self.obs, grpc.StatusCode.UNKNOWN, None, error)
            elif self.unsent is not None:  # the response could not be serialised
                finish_call(self.obs, *self.unsent)
            else:
                finish_call(self.obs, grpc.StatusCode.OK)
        self.release()

    def release(self) -> None:
        """Undo this context's tenant scope (the tenant, and the refusal of a caller's)."""
        release_tenant(self.tenant_token)
        release_tenant(self.refused)
        self.tenant_token = self.refused = None


def _raised(error: BaseException | None) -> Exception | None:
    """The error a handler raised after setting the call's status (``set_code``), or None for the
    signal grpc's ``abort`` raises, which is no failure of its own (the sync server's is a bare
    ``Exception()``, grpc.aio's an ``AbortError``), and for an interruption."""
    if not isinstance(error, Exception) or isinstance(error, grpc.aio.AbortError):
        return None
    return None if type(error) is Exception and not error.args else error


def _ended_by_client(servicer_context: Any, error: BaseException | None,
                     unwatched: bool = False) -> tuple[Any, str] | None:
    """The status of a call its client cancelled or let expire before the handler finished (the
    handler then returns, or is interrupted, with no status of its own); None if still live.
    ``unwatched``: a sync handler on grpc.aio, which is neither interrupted nor told that its call
    ended, or a handler that read a request stream, which grpc ends at the deadline as if the
    client had finished it (the handler reads fewer requests, no error; grpc.aio's context says
    the call is live): only a passed deadline shows (a cancelled call then reads as live)."""
    live = error is None or isinstance(error, Exception)  # not interrupted
    active = False
    try:
        is_active = getattr(servicer_context, "is_active", None)  # grpc.ServicerContext
        active = is_active() if is_active is not None else not servicer_context.cancelled()  # grpc.aio
        if active and live and not unwatched:
            return None
        remaining = servicer_context.time_remaining()
    except Exception:
        if live:
            return None
        remaining = None
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED, "the caller's deadline passed"
    if active and live:  # unwatched, with time left
        return None
    return grpc.StatusCode.CANCELLED, "the call was cancelled"


try:  # grpc's own classes, to find a sync handler's aio context (``_readable``); absent: not looked for
    from grpc._cython import cygrpc as _cygrpc
except ImportError:  # pragma: no cover - a grpc without its Cython core
    _cygrpc = None
_SYNC_CONTEXT: Any = getattr(_cygrpc, "_SyncServicerContext", None)
_AIO_CONTEXT: Any = getattr(_cygrpc, "_ServicerContext", None)


def _readable(servicer_context: Any) -> Any:
    """The context to read a call's status from. grpc.aio gives a sync handler a context with no
    ``code()``, ``details()`` or ``cancelled()``, wrapping the call's aio context, which has them:
    it is found among the references the wrapper holds (read only, the handler's own is unchanged)."""
    if type(servicer_context) is not _SYNC_CONTEXT:
        return servicer_context
    try:
        for held in gc.get_referents(servicer_context):
            if type(held) is _AIO_CONTEXT:
                return held
    except Exception as exc:
        guarded_failure("grpc.sync_context", exc)
    return servicer_context


def _context_code(servicer_context: Any) -> Any:
    try:
        return servicer_context.code()
    except Exception:
        return None


def _context_details(servicer_context: Any) -> str | None:
    try:
        details = servicer_context.details()
        return details.decode() if isinstance(details, bytes) else details
    except Exception:
        return None


async def _asked(resolve: TenantFromCall, handler_call_details: Any, servicer_context: Any,
                 requests: bool) -> _ServerCall:
    """The call, its tenant named by ``resolve`` (``tenant_from_call``), awaited when it is ``async``."""
    answer = resolver_answer(resolve, handler_call_details, servicer_context)
    if inspect.isawaitable(answer):
        answer = await awaited_answer(answer)
    return _ServerCall(handler_call_details, own=answer, requests=requests)


def _wrap_behavior(behavior: Callable[..., Any], kind: str, handler_call_details: Any, streaming: bool,
                   aio: bool, serializer: Serializer | None, resolve: TenantFromCall | None,
                   requests: bool = False) -> Callable[..., Any]:
    """``behavior`` (of ``kind``, see ``_handlers``) run with the call's span and tenant current;
    ``requests``: it reads a request stream."""
    if kind == ASYNC_GENERATOR:
        async def agen(request: Any, servicer_context: Any) -> AsyncIterator[Any]:
            call = (_ServerCall(handler_call_details, requests=requests) if resolve is None
                    else await _asked(resolve, handler_call_details, servicer_context, requests))
            if serializer is not None:
                serializer.watch(call, servicer_context)
            try:
                responses = behavior(request, servicer_context)
                while True:
                    # current per item, not across ``yield``: grpc.aio may abandon this generator
                    # (a response it cannot send), which is then closed in another context
                    with _current(call.obs, None, call.baggage):
                        try:
                            item = await responses.__anext__()
                        except StopAsyncIteration:
                            break
                    try:
                        yield item
                    except GeneratorExit:  # grpc dropped the stream (its call ended): the cleanup is the call's
                        if inspect.isasyncgen(responses):  # closed now, as it would be once dropped
                            with _current(call.obs, call.tenant, call.baggage, call.refused is not None):
                                await responses.aclose()
                        raise
            except BaseException as error:
                call.close(servicer_context, error)
                raise
            call.close(servicer_context)

        return agen
    if kind == COROUTINE:
        async def coroutine(request: Any, servicer_context: Any) -> Any:
            call = (_ServerCall(handler_call_details, requests=requests) if resolve is None
                    else await _asked(resolve, handler_call_details, servicer_context, requests))
            if streaming and serializer is not None:  # its responses go out by ``context.write``
                serializer.watch(call, servicer_context)
            try:
                with _current(call.obs, None, call.baggage):
                    result = await behavior(request, servicer_context)
            except BaseException as error:
                call.close(servicer_context, error)
                raise
            if streaming:  # written already; grpc.aio sends nothing of what it returns
                call.close(servicer_context)
            else:
                _finish_unary(call, servicer_context, result, serializer, aio)
            return result

        return coroutine

    def function(request: Any, servicer_context: Any, *send: Any) -> Any:
        call = _ServerCall(handler_call_details, own=resolver_answer(resolve, handler_call_details, servicer_context),
                           requests=requests)
        if streaming and serializer is not None:
            serializer.watch(call, servicer_context)
        if send:  # a non-blocking stream (sync server): it sends its responses through a callback
            send = (_non_blocking(send[0], call, servicer_context),)
        try:
            with _current(call.obs, None, call.baggage):
                result = behavior(request, servicer_context, *send)
        except BaseException as error:
            call.close(servicer_context, error)
            raise
        if send:  # still running; the tenant scope is this thread's only
            call.release()
            return result
        if not streaming:
            _finish_unary(call, servicer_context, result, serializer, aio)
            return result
        if aio and not isinstance(result, Iterator):
            call.close(servicer_context, _not_iterable(result))
            return result
        return _stream(result, call, servicer_context, not aio, not (aio and _close_when_done(call, servicer_context)))

    return function


def _non_blocking(send: Callable[[Any], None], call: _ServerCall, servicer_context: Any) -> Callable[[Any], None]:
    """The ``send_response_callback`` of a sync server's non-blocking stream (a behavior with
    ``experimental_non_blocking``, which returns at once and sends from elsewhere): its last item,
    None, ends the span with the status so far; a call that ends otherwise (cancelled, its
    deadline passed) ends it when grpc calls the context's callbacks."""

    def ended() -> None:
        call.close(servicer_context)

    try:
        if not servicer_context.add_callback(ended):  # ended already
            ended()
    except Exception as exc:
        guarded_failure("grpc.non_blocking", exc)

    def sending(response: Any) -> None:
        if response is None:
            call.close(servicer_context)
        send(response)

    return sending


def _finish_unary(call: _ServerCall, servicer_context: Any, result: Any, serializer: Serializer | None,
                  aio: bool) -> None:
    """End a call whose handler returned one response, serialising it first (see ``Serializer``)
    when grpc will: always on a sync server; on grpc.aio only while the status is OK (it sends
    no response with an error status)."""
    if serializer is not None and (not aio or _context_code(_readable(servicer_context)) in (None, grpc.StatusCode.OK)):
        serializer.prepare(call, result)
    call.close(servicer_context)


def _not_iterable(value: Any) -> TypeError | None:
    """The error grpc.aio meets iterating what a sync streaming handler returned (None, say), else
    None: a list is handed over whole, the handler's work done. Found without running any code of
    the application's (``iter`` would run an ``__iter__``)."""
    kind = type(value)
    if hasattr(kind, "__iter__") or hasattr(kind, "__getitem__"):
        return None
    try:
        iter(value)
    except TypeError as error:
        return error
    return None


def _stream(responses: Any, call: _ServerCall, servicer_context: Any, ends_at_none: bool,
            close_at_end: bool = True) -> Iterator[Any]:
    """Hands on what a sync streaming handler returned, with the span current. The sync server
    calls ``next`` on it, so a list fails the call (UNKNOWN): that error, grpc's own, is raised
    here, where it is recorded, and the call fails as it would untraced. The sync server ends
    the call at a None item (``ends_at_none``), with the status set so far, reading no further.
    Not ``close_at_end``: the span ends with the call (``_close_when_done``), or on an error. A
    stream grpc drops (its call ended) closes the handler's generator in the call's scope first."""
    try:
        while True:
            # the span and tenant again per item: grpc.aio reads sync streams on its thread pool
            with _current(call.obs, call.tenant, call.baggage, call.refused is not None):
                try:
                    item = next(responses)
                except StopIteration:
                    break
            if item is None and ends_at_none:
                call.close(servicer_context)
            try:
                yield item
            except GeneratorExit:  # grpc dropped the stream (its call ended): the cleanup is the call's
                if isinstance(responses, GeneratorType):  # closed now, as it would be once dropped
                    with _current(call.obs, call.tenant, call.baggage, call.refused is not None):
                        responses.close()
                raise
    except BaseException as error:
        call.close(servicer_context, error)
        raise
    call.ran_out = True
    if close_at_end:
        call.close(servicer_context)


def _close_when_done(call: _ServerCall, servicer_context: Any) -> bool:
    """Have a sync stream's span on grpc.aio end when its call does; False if it cannot be (no aio
    context to wait on). grpc.aio reads a sync stream on its thread pool one item ahead of sending
    it: the stream runs out before its last item is serialised, which may still fail (the
    serializer then ends the span with grpc's error). A call that ends before its stream runs out
    was given up (its deadline passed, or it was cancelled, also by its server stopping): WARNING,
    where it said OK or was never recorded (grpc does not stop reading the stream). Asked before
    the stream is read: a callback added once the call has ended is never called."""
    readable = _readable(servicer_context)

    def ended(_: Any) -> None:  # on the event loop, by grpc: never raises
        try:
            if not call.ran_out and call.obs is not None:  # its caller gave up: the deadline, or cancelled
                finish_call(call.obs, *_ended_by_client(readable, GeneratorExit()), interrupted=True)
            call.close(servicer_context)
        except Exception as exc:
            guarded_failure("grpc.server_end", exc)

    try:
        readable.add_done_callback(ended)
    except Exception:  # a context with no add_done_callback (not grpc.aio's own)
        return False
    return True


def _wrap_handler(handler: Any, handler_call_details: Any, aio: bool, resolve: TenantFromCall | None) -> Any:
    if handler is None:
        return None
    try:
        plan = plan_of(handler)
        serializer = Serializer(plan.serialize, aio)
        changes: dict[str, Any] = {"response_serializer": serializer}
        for field, behavior, streaming, kind, options in plan.behaviors:
            changes[field] = wrapped = _wrap_behavior(behavior, kind, handler_call_details, streaming, aio,
                                                      serializer, resolve, field.startswith("stream_"))
            for option, value in options:
                setattr(wrapped, option, value)
        if not hasattr(handler, "_replace"):
            handler = MethodHandler(*(getattr(handler, field, None) for field in MethodHandler._fields))
        return plan.rebuilt(handler, changes)
    except Exception as exc:
        guarded_failure("grpc.wrap_handler", exc)
        return handler


def _rejected(handler_call_details: Any, error: BaseException | None = None) -> None:
    """Record a call grpc rejects before any handler runs, with the status the client gets: no
    handler for the method (none registered, or an interceptor returned None: UNIMPLEMENTED), or
    an interceptor raised (UNKNOWN, with its error). Its span is named ``_OTHER`` (see ``start_call``)."""
    try:
        call = _ServerCall(handler_call_details, known=False)
        if call.obs is not None:
            if error is None:
                finish_call(call.obs, grpc.StatusCode.UNIMPLEMENTED, "Method not found!")  # grpc's details
            else:
                finish_call(call.obs, grpc.StatusCode.UNKNOWN, None, error)
        if call.tenant_token is not None:
            reset_tenant(call.tenant_token)
    except Exception as exc:
        guarded_failure("grpc.rejected", exc)


def _resolver(tenant_from_call: TenantFromCall | None) -> TenantFromCall | None:
    """``tenant_from_call`` if given (callable), else ``install(grpc_tenant_from_call=...)``'s, if any."""
    if tenant_from_call is None:
        settings = state.settings
        return settings.grpc_tenant_from_call if settings is not None else None
    if not callable(tenant_from_call):
        raise TypeError(f"tenant_from_call must be callable, got a {type(tenant_from_call).__name__}")
    return tenant_from_call


class ServerInterceptor(grpc.ServerInterceptor):
    """Joins incoming calls of a synchronous server to the caller's trace; ``tenant_from_call``: see
    ``server_interceptor``."""

    #: Whether OpenTelemetry's gRPC interceptor may be inside ours (see ``others_aside``): False
    #: where ``install()`` made the server without one there.
    aside = True

    def __init__(self, tenant_from_call: TenantFromCall | None = None) -> None:
        self.tenant_from_call = _resolver(tenant_from_call)

    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        if untraced(handler_call_details.method):  # also when grpc rejects it: no span at all
            return continuation(handler_call_details)
        try:
            with others_aside(self.aside):
                handler = continuation(handler_call_details)
        except Exception as error:  # an interceptor after ours failed: grpc rejects the call
            _rejected(handler_call_details, error)
            raise
        if handler is None:  # no handler for the method: grpc rejects the call
            _rejected(handler_call_details)
            return None
        return _wrap_handler(handler, handler_call_details, False, self.tenant_from_call)


class AioServerInterceptor(grpc.aio.ServerInterceptor):
    """Joins incoming calls of an asyncio server to the caller's trace.

    ``isolate`` (set where ``install()`` puts it, or finds it, first among a server's interceptors):
    grpc.aio runs each call in a copy of the context ``server.start()`` ran in; the call is cleared
    of what that held (a tenant, trace attributes, a current span or baggage), as grpc's sync
    server starts every call from an empty context. What interceptors after it set is kept for the handler.
    ``tenant_from_call``: see ``server_interceptor``."""

    aside = True  # as ServerInterceptor's

    def __init__(self, isolate: bool = False, tenant_from_call: TenantFromCall | None = None) -> None:
        self.isolate = isolate
        self.tenant_from_call = _resolver(tenant_from_call)

    async def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        if self.isolate and state.settings is not None:  # after ``uninstall()``, calls run as given (``untraced``)
            _forget_inherited()
        if untraced(handler_call_details.method):
            return await continuation(handler_call_details)
        try:
            with others_aside(self.aside):
                handler = await continuation(handler_call_details)
        except Exception as error:
            _rejected(handler_call_details, error)
            raise
        if handler is None:
            _rejected(handler_call_details)
            return None
        return _wrap_handler(handler, handler_call_details, True, self.tenant_from_call)


def _forget_inherited() -> None:
    try:
        forget_inherited_scope()
        if otel_context.get_current():
            otel_context.attach(otel_context.Context())  # the call's own context: never detached
    except Exception as exc:
        guarded_failure("grpc.isolate", exc)


def server_interceptor(asyncio: bool = False, tenant_from_call: TenantFromCall | None = None) -> grpc.ServerInterceptor:
    """An interceptor to pass to a server created before ``install()`` (or by other means).

    ``tenant_from_call(handler_call_details, servicer_context)`` (default: the installed
    ``grpc_tenant_from_call``) names each call's tenant, for its server span and handler: its tenant
    id wins over an outer interceptor's scope, which wins over a trusted caller's; None names none.
    One that raises or returns no tenant id is counted and logged once (the middleware's rules),
    and the call has none: not a trusted caller's, nor an outer interceptor's scope."""
    if asyncio:
        return AioServerInterceptor(tenant_from_call=tenant_from_call)
    return ServerInterceptor(tenant_from_call)
