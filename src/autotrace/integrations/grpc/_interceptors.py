"""gRPC: client and server interceptors for ``grpc`` and ``grpc.aio``, installed by patching channel
and server creation.

Client calls become CLIENT spans that carry W3C trace context and the tenant (as baggage) in the
call metadata; servers join the caller's trace with a SERVER span, adopt the caller's tenant only
when ``trust_incoming_tenant`` is set, and record the status code. Every kind of call is covered
by one mechanism: the span ends in the call's done-callback (client) or when the handler, or the
stream it returns, finishes (server). Channels and servers made before ``install()`` can be wrapped
with ``instrument_channel`` / ``server_interceptor``.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import grpc.aio
from opentelemetry.trace import SpanKind, get_current_span, set_span_in_context

from ... import recorder
from ..._internal import guarded_failure
from ...context import reset_tenant, set_tenant, tenant_from_baggage
from ...observation import Observation, ObservationType, make_current, restore_context
from ...propagation import PROPAGATION_KEYS, extract, inject, merge_baggage
from ...runtime import state

_KIND_CLIENT = SpanKind.CLIENT
_KIND_SERVER = SpanKind.SERVER


def _method_parts(method: str | bytes) -> tuple[str, str]:
    text = method.decode() if isinstance(method, bytes) else method
    service, _, name = text.lstrip("/").partition("/")
    return service, name


def _start(method: str | bytes, kind: Any, parent: Any = None) -> Observation | None:
    try:
        service, name = _method_parts(method)
        return recorder.start(ObservationType.SPAN, f"{service}/{name}", kind=kind, parent=parent, attributes={
            "rpc.system": "grpc", "rpc.service": service, "rpc.method": name,
        })
    except Exception as exc:
        guarded_failure("grpc.start", exc)
        return None


def _finish(obs: Observation, code: Any, details: str | None = None, error: BaseException | None = None,
            interrupted: bool = False) -> None:
    """Record the status and end the span; ``interrupted``: the call was cut short (cancelled, or
    its caller gave up), which is a WARNING, as for any interrupted step, not an ERROR."""
    try:
        status = code if isinstance(code, grpc.StatusCode) else None
        if status is not None:
            obs.span.set_attribute("rpc.grpc.status_code", status.value[0])
        message = f"{status.name}: {details or ''}".rstrip(": ") if status is not None else None
        if interrupted:
            obs.set_level("WARNING", message)
        elif error is not None:
            obs.record_error(error)
        elif status is not None and status is not grpc.StatusCode.OK:
            obs.record_error(message or "")
        obs.end()
    except Exception as exc:
        guarded_failure("grpc.finish", exc)


def _outgoing_metadata(metadata: Any, obs: Observation) -> list[tuple[str, Any]]:
    """The call's metadata with this call's trace context and tenant.

    Trace headers the caller passed (typically an incoming request's metadata forwarded as is)
    are replaced: this call's span is the parent the server must see, and an incoming tenant
    entry must not travel on. Their other baggage entries are kept.
    """
    pairs = list(metadata or ())
    given = [(k, v) for k, v in pairs if isinstance(k, str) and k.lower() in PROPAGATION_KEYS]
    carrier: dict[str, str] = {}
    inject(carrier, set_span_in_context(obs.span, merge_baggage(given) if given else None))
    if given:
        pairs = [(k, v) for k, v in pairs if not (isinstance(k, str) and k.lower() in PROPAGATION_KEYS)]
    pairs.extend(carrier.items())
    return pairs


def _client_parent(metadata: Any) -> Any:
    """The trace context the caller put in the metadata, used only when no span is current: a
    call made outside any trace then joins the trace the caller named."""
    try:
        if get_current_span().get_span_context().is_valid or not metadata:
            return None
        given = [(k, v) for k, v in metadata if isinstance(k, str) and k.lower() in ("traceparent", "tracestate")]
        return extract(given) if given else None
    except Exception as exc:
        guarded_failure("grpc.client_parent", exc)
        return None


def _on_done(obs: Observation) -> Callable[[Any], None]:
    def done(call: Any) -> None:
        try:
            code, details = call.code(), call.details()
        except Exception:
            code, details = None, None
        _finish(obs, code, details, interrupted=code is grpc.StatusCode.CANCELLED)

    return done


def _watch(call: Any, obs: Observation) -> None:
    """End ``obs`` when the synchronous ``call`` ends, holding it only weakly: grpc cancels a call
    its caller drops (a stream read in part, a future never waited on) when the object is freed,
    and ``add_done_callback`` keeps it alive (and running on the server) until the channel closes."""
    try:
        if call.done():
            _on_done(obs)(call)
            return
        ref = weakref.ref(call)
        register = call.add_callback
    except (AttributeError, TypeError):  # another interceptor's return value
        call.add_done_callback(_on_done(obs))
        return

    def ended() -> None:
        live = ref()
        if live is None:  # freed, so grpc cancelled it
            _finish(obs, grpc.StatusCode.CANCELLED, "the caller dropped the call", interrupted=True)
        else:
            _on_done(obs)(live)

    if not register(ended):  # terminated meanwhile
        ended()


_pending_tasks: set[Any] = set()


def _result_now(coroutine: Any) -> Any:
    """The result of ``coroutine`` if it finishes without waiting; LookupError if it would wait."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    finally:
        coroutine.close()
    raise LookupError("would wait")


def _on_done_aio(obs: Observation) -> Callable[[Any], None]:
    """``grpc.aio`` calls report their status through coroutines, which for a done call finish at
    once: read here, as a task may never run (a call freed as its loop ends calls back with no loop
    running; ``asyncio.run`` cancels tasks left at its end). A task waits for a status not there yet."""

    async def read_status(call: Any) -> None:
        try:
            code, details = await call.code(), await call.details()
        except Exception:
            code, details = None, None
        except asyncio.CancelledError:
            _finish(obs, None)
            raise
        _finish(obs, code, details, interrupted=code is grpc.StatusCode.CANCELLED)

    def done(call: Any) -> None:
        try:
            code, details = _result_now(call.code()), _result_now(call.details())
            return _finish(obs, code, details, interrupted=code is grpc.StatusCode.CANCELLED)
        except Exception:
            pass
        try:
            task = asyncio.get_running_loop().create_task(read_status(call))
        except Exception as exc:
            guarded_failure("grpc.aio_status", exc)
            _finish(obs, None)
            return
        _pending_tasks.add(task)
        task.add_done_callback(_pending_tasks.discard)

    return done


# -- client, sync ---------------------------------------------------------------------------------
class _SyncClientCallDetails(grpc.ClientCallDetails):
    def __init__(self, base: Any, metadata: list[tuple[str, Any]]) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


class ClientInterceptor(
    grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor,
):
    """Traces every call of a synchronous channel."""

    def _intercept(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        if details.metadata is not None and not isinstance(details.metadata, list | tuple):
            # any iterable of pairs: read a one-shot one (a generator) once, for the parent and the call
            try:
                details = _SyncClientCallDetails(details, list(details.metadata))
            except TypeError:  # not iterable: grpc reports it as it would without us
                pass
        obs = _start(details.method, _KIND_CLIENT, _client_parent(details.metadata))
        if obs is None:
            return continuation(details, request)
        try:
            new_details = _SyncClientCallDetails(details, _outgoing_metadata(details.metadata, obs))
        except Exception as exc:
            guarded_failure("grpc.metadata", exc)
            new_details = details
        try:
            call = continuation(new_details, request)
        except BaseException as error:
            _finish(obs, None, error=error)
            raise
        try:
            _watch(call, obs)
        except Exception as exc:
            guarded_failure("grpc.done_callback", exc)
            _finish(obs, None)
        return call

    intercept_unary_unary = _intercept
    intercept_unary_stream = _intercept
    intercept_stream_unary = _intercept
    intercept_stream_stream = _intercept


# -- client, asyncio ------------------------------------------------------------------------------
async def _aio_intercept(continuation: Callable[..., Any], details: Any, request: Any) -> Any:
    obs = _start(details.method, _KIND_CLIENT, _client_parent(details.metadata))
    if obs is None:
        return await continuation(details, request)
    try:
        metadata = grpc.aio.Metadata(*_outgoing_metadata(details.metadata, obs))
        details = grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                             details.wait_for_ready)
    except Exception as exc:
        guarded_failure("grpc.metadata", exc)
    try:
        call = await continuation(details, request)
    except BaseException as error:
        _finish(obs, None, error=error)
        raise
    try:
        call.add_done_callback(_on_done_aio(obs))
    except Exception as exc:
        guarded_failure("grpc.done_callback", exc)
        _finish(obs, None)
    return call


class _AioUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await _aio_intercept(continuation, details, request)


class _AioUnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await _aio_intercept(continuation, details, request)


class _AioStreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await _aio_intercept(continuation, details, request_iterator)


class _AioStreamStream(grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await _aio_intercept(continuation, details, request_iterator)


def aio_client_interceptors() -> list[Any]:
    """One interceptor per call kind (``grpc.aio`` sorts interceptors by kind)."""
    return [_AioUnaryUnary(), _AioUnaryStream(), _AioStreamUnary(), _AioStreamStream()]


# -- server ---------------------------------------------------------------------------------------
class _ServerCall:
    """The span and tenant scope of one incoming call."""

    __slots__ = ("obs", "tenant", "tenant_token")

    def __init__(self, handler_call_details: Any) -> None:
        self.obs: Observation | None = None
        self.tenant: str | None = None  # adopted from the caller
        self.tenant_token: Any = None
        try:
            ctx = extract(tuple(handler_call_details.invocation_metadata or ()))
            settings = state.settings
            if settings is not None and settings.trust_incoming_tenant:
                tenant = tenant_from_baggage(ctx)
                if tenant is not None:
                    self.tenant, self.tenant_token = tenant, set_tenant(tenant)
            self.obs = _start(handler_call_details.method, _KIND_SERVER, parent=ctx)
        except Exception as exc:
            guarded_failure("grpc.server_start", exc)

    def close(self, servicer_context: Any, error: BaseException | None = None) -> None:
        if self.obs is not None:
            code = _context_code(servicer_context)
            if code is not None:  # set by the handler (abort, set_code)
                _finish(self.obs, code, _context_details(servicer_context),
                        error if code is grpc.StatusCode.UNKNOWN else None)
            elif (gone := _ended_by_client(servicer_context, error)) is not None:
                _finish(self.obs, gone[0], gone[1], interrupted=True)
            elif error is not None:
                _finish(self.obs, grpc.StatusCode.UNKNOWN, None, error)
            else:
                _finish(self.obs, grpc.StatusCode.OK)
        if self.tenant_token is not None:
            try:
                reset_tenant(self.tenant_token)
            except ValueError:  # reset from another context (a stream finished elsewhere)
                pass
            self.tenant_token = None


def _ended_by_client(servicer_context: Any, error: BaseException | None) -> tuple[Any, str] | None:
    """The status of a call its client cancelled or let expire before the handler finished (the
    handler then returns, or is interrupted, with no status of its own); None if still live."""
    try:
        is_active = getattr(servicer_context, "is_active", None)  # grpc.ServicerContext
        active = is_active() if is_active is not None else not servicer_context.cancelled()  # grpc.aio
        if active and (error is None or isinstance(error, Exception)):
            return None
        remaining = servicer_context.time_remaining()
    except Exception:
        if error is None or isinstance(error, Exception):
            return None
        remaining = None
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED, "the caller's deadline passed"
    return grpc.StatusCode.CANCELLED, "the call was cancelled"


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


def _wrap_behavior(behavior: Callable[..., Any], handler_call_details: Any, streaming: bool) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):
        async def agen(request: Any, servicer_context: Any) -> AsyncIterator[Any]:
            call = _ServerCall(handler_call_details)
            try:
                with _current(call.obs):
                    async for item in behavior(request, servicer_context):
                        yield item
            except BaseException as error:
                call.close(servicer_context, error)
                raise
            call.close(servicer_context)

        return agen
    if inspect.iscoroutinefunction(behavior):
        async def coroutine(request: Any, servicer_context: Any) -> Any:
            call = _ServerCall(handler_call_details)
            try:
                with _current(call.obs):
                    result = await behavior(request, servicer_context)
            except BaseException as error:
                call.close(servicer_context, error)
                raise
            call.close(servicer_context)
            return result

        return coroutine

    def function(request: Any, servicer_context: Any) -> Any:
        call = _ServerCall(handler_call_details)
        try:
            with _current(call.obs):
                result = behavior(request, servicer_context)
        except BaseException as error:
            call.close(servicer_context, error)
            raise
        if streaming and isinstance(result, Iterator):
            return _stream(result, call, servicer_context)
        call.close(servicer_context)
        return result

    return function


def _stream(items: Iterator[Any], call: _ServerCall, servicer_context: Any) -> Iterator[Any]:
    try:
        while True:
            # the span and tenant again per item: grpc.aio reads sync streams on its thread pool
            with _current(call.obs, call.tenant):
                try:
                    item = next(items)
                except StopIteration:
                    break
            yield item
    except BaseException as error:
        call.close(servicer_context, error)
        raise
    call.close(servicer_context)


class _current:
    """Make an observation's span (and a tenant) current for a block (no-op for None)."""

    __slots__ = ("obs", "tenant", "tenant_token", "token")

    def __init__(self, obs: Observation | None, tenant: str | None = None) -> None:
        self.obs = obs
        self.tenant = tenant
        self.token: Any = None
        self.tenant_token: Any = None

    def __enter__(self) -> None:
        if self.obs is not None:
            self.token = make_current(self.obs)
        if self.tenant is not None:
            self.tenant_token = set_tenant(self.tenant)

    def __exit__(self, *exc: object) -> None:
        if self.tenant_token is not None:
            reset_tenant(self.tenant_token)
            self.tenant_token = None
        restore_context(self.token)


_BEHAVIORS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


def _wrap_handler(handler: Any, handler_call_details: Any) -> Any:
    if handler is None:
        return None
    try:
        changes = {}
        for field in _BEHAVIORS:
            behavior = getattr(handler, field, None)
            if behavior is not None:
                changes[field] = _wrap_behavior(behavior, handler_call_details, field.endswith("stream"))
        return handler._replace(**changes)
    except Exception as exc:
        guarded_failure("grpc.wrap_handler", exc)
        return handler


class ServerInterceptor(grpc.ServerInterceptor):
    """Joins incoming calls of a synchronous server to the caller's trace."""

    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        return _wrap_handler(continuation(handler_call_details), handler_call_details)


class AioServerInterceptor(grpc.aio.ServerInterceptor):
    """Joins incoming calls of an asyncio server to the caller's trace."""

    async def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        return _wrap_handler(await continuation(handler_call_details), handler_call_details)


_traced_channels: weakref.WeakSet[Any] = weakref.WeakSet()


def instrument_channel(channel: grpc.Channel) -> grpc.Channel:
    """Trace a synchronous channel created before ``install()`` (a channel this already traces,
    such as one created after ``install()``, is returned as it is)."""
    try:
        if channel in _traced_channels:
            return channel
    except TypeError:  # not weakly referenceable, so not one of ours
        pass
    traced = grpc.intercept_channel(channel, ClientInterceptor())
    _traced_channels.add(traced)
    return traced


def server_interceptor(asyncio: bool = False) -> grpc.ServerInterceptor:
    """An interceptor to pass to a server created before ``install()`` (or by other means)."""
    return AioServerInterceptor() if asyncio else ServerInterceptor()


# -- patching -------------------------------------------------------------------------------------
def _with_ours(args: Any, kwargs: Any, index: int, ours: list[Any], first: bool) -> tuple[Any, Any]:
    """``args``/``kwargs`` with ``ours`` added to the interceptors given by keyword or at position
    ``index``; unchanged when they already hold one of ours (``server_interceptor()`` passed
    explicitly), as one call must not get two spans."""
    try:
        new_args, new_kwargs = list(args), dict(kwargs)
        positional = len(new_args) > index
        given = list((new_args[index] if positional else new_kwargs.get("interceptors")) or ())
        if any(isinstance(interceptor, _OURS) for interceptor in given):
            return args, kwargs
        merged = [*ours, *given] if first else [*given, *ours]
        if positional:
            new_args[index] = merged
        else:
            new_kwargs["interceptors"] = merged
        return new_args, new_kwargs
    except Exception as exc:  # unusual arguments: let grpc judge them as given
        guarded_failure("grpc.interceptors", exc)
        return args, kwargs


def _sync_channel(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    channel = wrapped(*args, **kwargs)
    try:
        return instrument_channel(channel)
    except Exception as exc:
        guarded_failure("grpc.channel", exc)
        return channel


def _sync_server(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    # grpc.server(thread_pool, handlers, interceptors, ...)
    args, kwargs = _with_ours(args, kwargs, 2, [ServerInterceptor()], first=True)
    return wrapped(*args, **kwargs)


def _aio_channel(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    # insecure_channel(target, options, compression, interceptors); secure_channel adds credentials
    index = 4 if wrapped.__name__ == "secure_channel" else 3
    args, kwargs = _with_ours(args, kwargs, index, aio_client_interceptors(), first=False)
    return wrapped(*args, **kwargs)


def _aio_server(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    # grpc.aio.server(migration_thread_pool, handlers, interceptors, ...)
    args, kwargs = _with_ours(args, kwargs, 2, [AioServerInterceptor()], first=True)
    return wrapped(*args, **kwargs)


_OURS = (ClientInterceptor, ServerInterceptor, AioServerInterceptor,
         _AioUnaryUnary, _AioUnaryStream, _AioStreamUnary, _AioStreamStream)
