"""What the gRPC client and server interceptors share: starting a call's span and ending it with
the call's status."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from fnmatch import fnmatchcase
from typing import Any

import grpc
import grpc.aio
from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind

from ... import recorder
from ..._internal import guarded_failure
from ...observation import Observation, ObservationType, restore_context
from ...runtime import state

KIND_CLIENT = SpanKind.CLIENT
KIND_SERVER = SpanKind.SERVER
OTHER = "_OTHER"
_current_context = otel_context.get_current


def _method_parts(method: str | bytes) -> tuple[str, str]:
    text = method.decode() if isinstance(method, bytes) else method
    service, _, name = text.lstrip("/").partition("/")
    return service, name


def untraced(method: str | bytes) -> bool:
    """Whether calls of ``method`` get no span (the ``grpc_untraced_methods`` setting): every call
    while autotrace is not installed. The interceptors put on channels and servers stay there after
    ``uninstall()``: they then pass calls on as given, adding no span (it went to the global tracer
    provider) and no baggage (the tenant went to every host, whatever ``tenant_baggage`` said)."""
    settings = state.settings
    if settings is None:
        return True
    patterns = settings.grpc_untraced_methods
    if not patterns:
        return False
    try:
        return _matches(method.decode() if isinstance(method, bytes) else method, patterns)
    except Exception as exc:  # a method name no pattern can read (not text): traced
        guarded_failure("grpc.untraced", exc)
        return False


def suppressed() -> bool:
    """Whether OpenTelemetry's "suppress instrumentation" flag is set where a client call starts:
    its SDK sets it while a span processor exports, and ``suppress_instrumentation()`` for a block.
    Such a call gets no span and no headers, as under OpenTelemetry's own gRPC instrumentation:
    traced, each export of the application's OTLP/gRPC exporter was a span the exporter exported
    in turn, a new trace every few seconds, forever."""
    return bool(_current_context().get(_SUPPRESS_INSTRUMENTATION_KEY))  # ``get_value``, one call fewer


@functools.lru_cache(maxsize=1024)  # bounded: a server's callers may name any method
def _matches(method: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatchcase(method, pattern) for pattern in patterns)


#: The other gRPC instrumentation ``others_aside`` sets aside (OpenTelemetry's contrib one).
_OTHER_GRPC_INSTRUMENTATION = "opentelemetry.instrumentation.grpc"


def other_instrumentations(interceptor: object) -> bool:
    """Whether ``interceptor`` is one of OpenTelemetry's contrib gRPC instrumentation's."""
    return type(interceptor).__module__.startswith(_OTHER_GRPC_INSTRUMENTATION + ".")


def others_aside(needed: bool = True) -> AbstractContextManager[None]:
    """OpenTelemetry's "suppress instrumentation" flag set for the block in which a call we trace
    goes on to the interceptors inside ours: another gRPC instrumentation there
    (opentelemetry-instrumentation-grpc, which checks the flag) then stands aside. Otherwise a
    call had two sibling spans (its server span parents on the caller's metadata, not on ours),
    and on a client its headers replaced ours: the level-2 trace flags and no tenant. A context an
    interceptor inside ours made current for the call (grpc.aio runs the handler in it) is kept,
    the flag cleared: what the handler does is traced by every instrumentation. Only where that
    instrumentation may be inside ours (``needed``; not on a server or channel ``install()`` made,
    see ``_with_ours`` and ``_under_others``) and is loaded: everything else inside ours sees
    every instrumentation off too (the application's interceptors, an auth check in them calling
    a service through an instrumented HTTP client; the request stream grpc reads in a thread or
    task it starts there)."""
    if not needed or _OTHER_GRPC_INSTRUMENTATION not in sys.modules:
        return _NOT_ASIDE  # nearly always: one shared block that does nothing
    return _set_aside()


_NOT_ASIDE = nullcontext()


@contextmanager
def _set_aside() -> Iterator[None]:
    try:
        aside = otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True)
        token = otel_context.attach(aside)
    except Exception as exc:
        guarded_failure("grpc.suppress", exc)
        token = None
    try:
        yield
    finally:
        if token is not None and otel_context.get_current() is not aside:
            try:  # like the context it replaces, never detached
                otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, False))
            except Exception as exc:
                guarded_failure("grpc.suppress", exc)
        else:
            restore_context(token)


def start_call(method: str | bytes, kind: Any, parent: Any = None, known: bool = True) -> Observation | None:
    """The call's span, named ``service/method``; for a method the server has no handler for
    (``known=False``), ``_OTHER``, as OTel's RPC conventions say: the name comes from the caller,
    and a span name must not take any value a client sends. The path is kept in
    ``rpc.method_original``."""
    try:
        if not known:
            service, name = _method_parts(method)
            return recorder.start(ObservationType.SPAN, OTHER, kind=kind, parent=parent, attributes={
                "rpc.system": "grpc", "rpc.method": OTHER, "rpc.method_original": f"{service}/{name}",
            })
        span_name, attributes = _known_method(method)
        return recorder.start(ObservationType.SPAN, span_name, kind=kind, parent=parent, attributes=dict(attributes))
    except Exception as exc:
        guarded_failure("grpc.start", exc)
        return None


@functools.lru_cache(maxsize=1024)  # bounded: a client may call any method
def _known_method(method: str | bytes) -> tuple[str, dict[str, str]]:
    """A method's span name and attributes, worked out once (each span is given a copy)."""
    service, name = _method_parts(method)
    return f"{service}/{name}", {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def finish_call(obs: Observation, code: Any, details: str | None = None, error: BaseException | None = None,
            interrupted: bool = False) -> None:
    """Record the status and end the span; ``interrupted``: the call was cut short (cancelled, or
    its caller gave up), which is a WARNING, as for any interrupted step, not an ERROR."""
    if obs.ended:  # ended already (the loop's end, then the call's own callback)
        return
    try:
        status = code if isinstance(code, grpc.StatusCode) else None
        if status is not None:
            obs.span.set_attribute("rpc.grpc.status_code", status._value_[0])  # ``value``, read directly
        if interrupted:
            obs.set_level("WARNING", _message(status, details))
        elif error is not None:
            obs.record_error(error)
            if details and status is not None:  # the status the client reads, the error recorded with it
                obs.set_level("ERROR", _message(status, details))
        elif status is not None and status is not grpc.StatusCode.OK:
            obs.record_error(_message(status, details) or "")
    except Exception as exc:
        guarded_failure("grpc.finish", exc)
    obs.end()  # never raises: ended even if recording the status did not work


def _message(status: grpc.StatusCode | None, details: str | None) -> str | None:
    """A status as recorded: its name, and its details if any."""
    if status is None:
        return None
    return f"{status.name}: {details}" if details else status.name
