"""gRPC client interceptors (``grpc`` and ``grpc.aio``): each call becomes a CLIENT span that
carries W3C trace context and the tenant (as baggage) in the call metadata, and ends in the call's
done-callback, with its status."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio
from opentelemetry.trace import get_current_span, set_span_in_context

from ..._internal import guarded_failure
from ...observation import Observation
from ...propagation import PROPAGATION_KEYS, extract, inject, merge_baggage, tenant_travels_to
from ._aio_calls import _finished, _on_done_aio, _running_on_loop
from ._aio_calls import _loop_calls as _loop_calls  # (the loops whose calls are watched, as before)
from ._common import (
    KIND_CLIENT,
    finish_call,
    other_instrumentations,
    others_aside,
    start_call,
    suppressed,
    untraced,
)


def _outgoing_metadata(metadata: Any, obs: Observation, target: str | None) -> list[tuple[str, Any]]:
    """The call's metadata with this call's trace context, and the tenant unless the
    ``tenant_baggage`` setting keeps it from ``target`` (the channel's).

    Trace headers the caller passed (typically an incoming request's metadata forwarded as is)
    are replaced: this call's span is the parent the server must see, and an incoming tenant
    entry must not travel on. Their other baggage entries are kept.
    """
    pairs = list(metadata) if metadata else []
    given = [(_name(k), v) for k, v in pairs if _replaced(k, v)] if pairs else None
    carrier: dict[str, str] = {}
    inject(carrier, set_span_in_context(obs.span, merge_baggage(given) if given else None), tenant_travels_to(target))
    if given:
        pairs = [(k, v) for k, v in pairs if not _replaced(k, v)]
    pairs.extend(carrier.items())
    return pairs


def _replaced(key: Any, value: Any) -> bool:
    """A trace header the caller passed that grpc would send (a lower-case name, a value of
    printable ASCII). One it rejects is left in place, so that the call fails as it would untraced."""
    key = _name(key)
    if not (isinstance(key, str) and key in PROPAGATION_KEYS):
        return False
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return isinstance(text, str) and text.isascii() and text.isprintable()


def _name(key: Any) -> Any:
    """A metadata key as grpc sends it: it takes ``bytes`` keys too (``b"baggage"``), which, read as
    no trace header, were sent beside ours: the caller's tenant travelled on, and the server read
    two ``baggage`` headers naming different tenants."""
    return key.decode("latin-1") if isinstance(key, bytes) else key


def _client_parent(metadata: Any) -> Any:
    """The trace context the caller put in the metadata, used only when no span is current: a
    call made outside any trace then joins the trace the caller named."""
    try:
        if not metadata or get_current_span().get_span_context().is_valid:
            return None
        given = [(k, v) for k, v in ((_name(k), v) for k, v in metadata)
                 if isinstance(k, str) and k.lower() in ("traceparent", "tracestate")]
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
        _finished(obs, code, details)

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
    # grpc sets the status and wakes the reader before it runs the callbacks: a caller that read
    # to the end may free the call first. Its state (which does not hold the call) says how it ended.
    ended = functools.partial(_call_ended, ref, getattr(call, "_state", None), obs)

    if not register(ended):  # terminated meanwhile
        ended()


def _call_ended(ref: Callable[[], Any], rpc_state: Any, obs: Observation) -> None:
    """End ``obs`` when grpc calls back: with the call's status, or when the call (``ref``) was
    freed first, with the status its state (``rpc_state``) holds; a call freed while running was
    cancelled by grpc: the caller dropped it."""
    live = ref()
    if live is not None:
        _on_done(obs)(live)
        return
    code = getattr(rpc_state, "code", None)
    if code is not None and code is not grpc.StatusCode.CANCELLED:  # it ended before it was freed
        _finished(obs, code, getattr(rpc_state, "details", None))
    else:
        finish_call(obs, grpc.StatusCode.CANCELLED, "the caller dropped the call", interrupted=True)


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
    """Traces every call of a synchronous channel; ``target``: the channel's (see ``tenant_baggage``)."""

    #: Whether OpenTelemetry's gRPC client interceptor may be inside ours (see ``others_aside``).
    aside = True

    def __init__(self, target: str | None = None) -> None:
        self.target = target

    def _intercept(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        if untraced(details.method) or suppressed():
            return continuation(details, request)
        if details.metadata is not None and not isinstance(details.metadata, list | tuple):
            # any iterable of pairs: read a one-shot one (a generator) once, for the parent and the call
            try:
                details = _SyncClientCallDetails(details, list(details.metadata))
            except TypeError:  # not iterable: grpc reports it as it would without us
                pass
        obs = start_call(details.method, KIND_CLIENT, _client_parent(details.metadata))
        if obs is None:
            return continuation(details, request)
        try:
            new_details = _SyncClientCallDetails(details, _outgoing_metadata(details.metadata, obs, self.target))
        except Exception as exc:
            guarded_failure("grpc.metadata", exc)
            new_details = details
        try:
            with others_aside(self.aside):
                call = continuation(new_details, request)
        except BaseException as error:
            finish_call(obs, None, error=error)
            raise
        try:
            _watch(call, obs)
        except Exception as exc:
            guarded_failure("grpc.done_callback", exc)
            finish_call(obs, None)
        return call

    intercept_unary_unary = _intercept
    intercept_unary_stream = _intercept
    intercept_stream_unary = _intercept
    intercept_stream_stream = _intercept


# -- client, asyncio ------------------------------------------------------------------------------
async def _aio_intercept(continuation: Callable[..., Any], details: Any, request: Any, client: _AioClient) -> Any:
    if untraced(details.method) or suppressed():
        return await continuation(details, request)
    obs = start_call(details.method, KIND_CLIENT, _client_parent(details.metadata))
    if obs is None:
        return await continuation(details, request)
    try:
        metadata = grpc.aio.Metadata(*_outgoing_metadata(details.metadata, obs, client.target))
        details = grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                             details.wait_for_ready)
    except Exception as exc:
        guarded_failure("grpc.metadata", exc)
    try:
        with others_aside(client.aside):
            call = await continuation(details, request)
    except BaseException as error:
        finish_call(obs, None, error=error)
        raise
    running = None
    try:
        running = _running_on_loop(obs, call)
        call.add_done_callback(_on_done_aio(obs, running))
    except Exception as exc:
        guarded_failure("grpc.done_callback", exc)
        if running is not None:
            running.discard(obs)
        finish_call(obs, None)
    return call


class _AioClient:
    """What the four ``grpc.aio`` client interceptors share: the channel's target."""

    aside = True  # as ClientInterceptor's

    def __init__(self, target: str | None = None) -> None:
        self.target = target


class _AioUnaryUnary(_AioClient, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await _aio_intercept(continuation, details, request, self)


class _AioUnaryStream(_AioClient, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await _aio_intercept(continuation, details, request, self)


class _AioStreamUnary(_AioClient, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await _aio_intercept(continuation, details, request_iterator, self)


class _AioStreamStream(_AioClient, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await _aio_intercept(continuation, details, request_iterator, self)


def aio_client_interceptors(target: str | None = None) -> list[Any]:
    """One interceptor per call kind (``grpc.aio`` sorts interceptors by kind), for a channel to
    ``target`` (which decides whether the tenant travels: ``tenant_baggage``)."""
    return [_AioUnaryUnary(target), _AioUnaryStream(target), _AioStreamUnary(target), _AioStreamStream(target)]


def instrument_channel(channel: Any, target: str | None = None) -> Any:
    """Trace a channel created before ``install()`` (a channel this already traces, such as one
    created after ``install()``, also under the application's own interceptors, is returned as it
    is). ``target``: the one the channel was created with; without it, calls carry the tenant only
    if ``tenant_baggage`` is ``all``. A ``grpc.aio`` channel is traced in place (see ``_instrument_aio``)."""
    if isinstance(channel, grpc.aio.Channel):
        return _instrument_aio(channel, target)
    if _traced(channel):
        return channel
    channel, below = _under_others(channel)
    ours = ClientInterceptor(target)
    ours.aside = below
    return grpc.intercept_channel(channel, ours)


def _under_others(channel: Any) -> tuple[Any, bool]:
    """``channel`` without OpenTelemetry's gRPC client interceptor on it (its instrumentor puts one
    on every channel it makes; ours would be outside it, and a call get two spans), and whether
    another of its layers is still under the rest (under an application's interceptor): only
    then need ours set it aside (``others_aside``), whose flag also reaches the thread or task
    grpc reads a request stream in, and so every instrumentation there."""
    try:
        while other_instrumentations(channel):
            channel = channel._channel
        below = channel
        for _ in range(_MAX_WRAPPED):
            below = getattr(below, "_channel", None)
            if below is None:
                return channel, False
            if other_instrumentations(below):
                break
    except Exception as exc:
        guarded_failure("grpc.channel_others", exc)
    return channel, True


#: Where a ``grpc.aio`` channel keeps the interceptors it was created with, one list per call kind
#: (in ``aio_client_interceptors``' order); its stubs share these lists.
_AIO_KINDS = ("_unary_unary_interceptors", "_unary_stream_interceptors", "_stream_unary_interceptors",
              "_stream_stream_interceptors")


def _instrument_aio(channel: Any, target: str | None) -> Any:
    """The ``grpc.aio`` channel, its calls traced from now on, also through stubs made before: it
    takes interceptors only when created (``grpc.intercept_channel`` makes a sync channel of it,
    whose every call failed), so ours are added after its own, as ``install()`` adds them."""
    try:
        kinds = [getattr(channel, name) for name in _AIO_KINDS]
        if not any(isinstance(interceptor, _AioClient) for kind in kinds for interceptor in kind):
            for kind, interceptor in zip(kinds, aio_client_interceptors(target), strict=True):
                interceptor.aside = False  # last: OpenTelemetry's, put first, is outside
                kind.append(interceptor)
    except Exception as exc:  # a grpc that keeps them otherwise: the channel stays untraced
        guarded_failure("grpc.aio_channel", exc)
    return channel


_MAX_WRAPPED = 64  # channels looked through, to stop at a loop


def _traced(channel: Any) -> bool:
    """Whether ``channel``, or a channel it wraps (``grpc.intercept_channel``), has our interceptor:
    a second one would give each call two sibling CLIENT spans."""
    try:
        for _ in range(_MAX_WRAPPED):
            interceptor = getattr(channel, "_interceptor", None)  # grpc's intercepted channel
            if interceptor is None:
                return False
            if isinstance(interceptor, ClientInterceptor):
                return True
            channel = getattr(channel, "_channel", None)
    except Exception as exc:
        guarded_failure("grpc.channel_traced", exc)
    return False
