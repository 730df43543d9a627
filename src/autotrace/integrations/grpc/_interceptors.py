"""gRPC: client and server interceptors for ``grpc`` and ``grpc.aio``, installed by patching channel
and server creation.

Client calls become CLIENT spans that carry W3C trace context and the tenant (as baggage) in the
call metadata; servers join the caller's trace with a SERVER span, take the call's tenant from the
service (``tenant_from_call``, an outer interceptor's scope), else from the caller only when
``trust_incoming_tenant`` is set, and record the status code. Every kind of call is covered
by one mechanism: the span ends in the call's done-callback (client) or when the handler, or the
stream it returns, finishes (server). Channels and servers made before ``install()`` can be wrapped
with ``instrument_channel`` / ``server_interceptor``.

The client side is in ``_client``, the server side in ``_server``, what both share in ``_common``;
this module adds the interceptors to every channel and server the application creates.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..._internal import guarded_failure
from . import INTEGRATION
from ._client import (
    ClientInterceptor,
    _AioStreamStream,
    _AioStreamUnary,
    _AioUnaryStream,
    _AioUnaryUnary,
    aio_client_interceptors,
    instrument_channel,
)
from ._common import other_instrumentations
from ._server import AioServerInterceptor, ServerInterceptor, server_interceptor

__all__ = ["AioServerInterceptor", "ClientInterceptor", "ServerInterceptor", "aio_client_interceptors",
           "instrument_channel", "server_interceptor"]


# -- patching -------------------------------------------------------------------------------------
def _with_ours(args: Any, kwargs: Any, index: int, ours: list[Any], first: bool) -> tuple[Any, Any]:
    """``args``/``kwargs`` with ``ours`` added to the interceptors given by keyword or at position
    ``index``; when they already hold one of ours (``server_interceptor()`` passed explicitly),
    none is added, as one call must not get two spans (see ``_first_isolated``). ``first`` (a
    server's): without OpenTelemetry's gRPC server interceptor (``GrpcInstrumentorServer``
    instrumented after ``install()`` adds it here), which would start a second span, ours (added)
    first; else (a ``grpc.aio`` channel's) last, where OpenTelemetry's, which its instrumentor puts
    first, is outside. Either way none is inside ours: no flag sets it aside (``aside``), and what
    runs inside (the application's interceptors, the request stream grpc reads) sees every
    instrumentation on. The interceptors given are read once (an iterator is spent)."""
    try:
        new_args, new_kwargs = list(args), dict(kwargs)
        positional = len(new_args) > index
        given = list((new_args[index] if positional else new_kwargs.get("interceptors")) or ())
        if first:  # also beside ours given explicitly: it would be outside, each call two spans
            given = [interceptor for interceptor in given if not other_instrumentations(interceptor)]
        if any(isinstance(interceptor, _OURS) for interceptor in given):
            merged = (_first_isolated(given) if first else None) or given
        else:
            for interceptor in ours:
                interceptor.aside = False
            merged = [*ours, *given] if first else [*given, *ours]
        if positional:
            new_args[index] = merged
        else:
            new_kwargs["interceptors"] = merged
        return new_args, new_kwargs
    except Exception as exc:  # unusual arguments: let grpc judge them as given
        guarded_failure("grpc.interceptors", exc)
        return args, kwargs


def _first_isolated(given: list[Any]) -> list[Any] | None:
    """``given`` with its first, ``server_interceptor(asyncio=True)`` passed explicitly, replaced by a
    copy that isolates its calls, as ``install()``'s own does (see ``AioServerInterceptor``):
    first, it clears no scope another interceptor set, and its calls no longer inherit the tenant
    and span of the code that ran ``server.start()``. None when there is none such."""
    head = given[0]
    if type(head) is not AioServerInterceptor or head.isolate:
        return None
    isolated = copy.copy(head)  # the application's own object is left as it is
    isolated.isolate, isolated.aside = True, False  # OpenTelemetry's interceptor is off the list
    return [isolated, *given[1:]]


def _off() -> bool:
    """Whether the integration is off (``uninstall()``, an install without it) while a wrapper of
    its is still called: one another library wrapped since stays under that one's (counted as
    ``integration_patch_kept``). The call then goes on as given: adding ours (its spans would go to
    the global tracer provider) or taking OpenTelemetry's interceptor off would leave that
    library's servers and channels without their spans."""
    return not INTEGRATION.instrumented


def _target(args: Any, kwargs: Any) -> str | None:
    """The target a channel is created for (``insecure_channel(target, ...)``), if it is text."""
    target = args[0] if args else kwargs.get("target")
    return target if isinstance(target, str) else None


def _sync_channel(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    channel = wrapped(*args, **kwargs)
    if _off():
        return channel
    try:
        return instrument_channel(channel, _target(args, kwargs))
    except Exception as exc:
        guarded_failure("grpc.channel", exc)
        return channel


def _sync_server(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    # grpc.server(thread_pool, handlers, interceptors, ...)
    if _off():
        return wrapped(*args, **kwargs)
    args, kwargs = _with_ours(args, kwargs, 2, [ServerInterceptor()], first=True)
    return wrapped(*args, **kwargs)


def _aio_channel(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    # insecure_channel(target, options, compression, interceptors); secure_channel adds credentials
    if _off():
        return wrapped(*args, **kwargs)
    index = 4 if wrapped.__name__ == "secure_channel" else 3
    args, kwargs = _with_ours(args, kwargs, index, aio_client_interceptors(_target(args, kwargs)), first=False)
    return wrapped(*args, **kwargs)


def _aio_server(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    # grpc.aio.server(migration_thread_pool, handlers, interceptors, ...)
    if _off():
        return wrapped(*args, **kwargs)
    args, kwargs = _with_ours(args, kwargs, 2, [AioServerInterceptor(isolate=True)], first=True)
    return wrapped(*args, **kwargs)


_OURS = (ClientInterceptor, ServerInterceptor, AioServerInterceptor,
         _AioUnaryUnary, _AioUnaryStream, _AioStreamUnary, _AioStreamStream)
