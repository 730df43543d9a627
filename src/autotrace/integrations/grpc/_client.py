"""gRPC client interceptors (``grpc`` and ``grpc.aio``): each call becomes a CLIENT span that
carries W3C trace context and the tenant (as baggage) in the call metadata, and ends in the call's
done-callback, with its status."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio
from opentelemetry.trace import get_current_span, set_span_in_context

from ..._internal import guarded_failure
from ...observation import Observation
from ...propagation import PROPAGATION_KEYS, extract, inject, merge_baggage
from ._common import KIND_CLIENT, finish_call, start_call


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
        finish_call(obs, code, details, interrupted=code is grpc.StatusCode.CANCELLED)

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
            finish_call(obs, grpc.StatusCode.CANCELLED, "the caller dropped the call", interrupted=True)
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
            finish_call(obs, None)
            raise
        finish_call(obs, code, details, interrupted=code is grpc.StatusCode.CANCELLED)

    def done(call: Any) -> None:
        try:
            code, details = _result_now(call.code()), _result_now(call.details())
            return finish_call(obs, code, details, interrupted=code is grpc.StatusCode.CANCELLED)
        except Exception:
            pass
        try:
            task = asyncio.get_running_loop().create_task(read_status(call))
        except Exception as exc:
            guarded_failure("grpc.aio_status", exc)
            finish_call(obs, None)
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
        obs = start_call(details.method, KIND_CLIENT, _client_parent(details.metadata))
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
async def _aio_intercept(continuation: Callable[..., Any], details: Any, request: Any) -> Any:
    obs = start_call(details.method, KIND_CLIENT, _client_parent(details.metadata))
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
        finish_call(obs, None, error=error)
        raise
    try:
        call.add_done_callback(_on_done_aio(obs))
    except Exception as exc:
        guarded_failure("grpc.done_callback", exc)
        finish_call(obs, None)
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
