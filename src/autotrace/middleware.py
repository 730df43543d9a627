"""ASGI and WSGI middleware that put each request's tenant (and incoming trace context) in scope.

The tenant comes from a function of the request that you supply (typically reading what your auth
middleware established; under ASGI it may be ``async``). A tenant arriving as baggage from another
service is used only when ``trust_incoming_tenant`` is configured, and only if your function found
none. Either way the incoming tenant entry is removed from the baggage the request carries on:
outgoing calls carry only the tenant in scope here. Headers are read as gRPC metadata is
(``autotrace.propagation.extract``: W3C trace context and baggage, whatever the global propagator,
with the same limits and counters).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import Context as ContextVars
from contextvars import ContextVar, copy_context
from functools import partial
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context

from ._internal import count, guarded_failure, log_once
from ._threadpool_bodies import Bodies, close_left, patch_starlette, serving
from .context import (
    back_in_trace,
    current_tenant,
    leave_other_tenants_trace,
    plain_tenant,
    refuse_incoming_tenant,
    release_tenant,
    reset_tenant,
    set_tenant,
    trusted_incoming_tenant,
    valid_tenant,
    without_tenant_baggage,
)
from .propagation import PROPAGATION_KEYS, extract
from .runtime import state

_WSGI_KEYS = tuple((f"HTTP_{name.upper()}", name) for name in PROPAGATION_KEYS)
#: The tenant a (trusting) middleware of this request took from its caller's baggage: a public
#: endpoint's middleware inside it (``trust_incoming_tenant=False``) does not keep that one.
_caller_named: ContextVar[str | None] = ContextVar("autotrace_caller_named_tenant", default=None)


def _trusting(value: object) -> bool:
    """``trust_incoming_tenant`` as given: only True trusts (``0``, ``None``, ``"false"`` never do)."""
    if not isinstance(value, bool):
        log_once("middleware_trust", "autotrace: trust_incoming_tenant is a %s, not True or False: taken as "
                 "False (no caller names a tenant)", type(value).__name__)
    return value is True


def _resolver_failed(exc: Exception) -> None:
    count("tenant_resolver_errors")
    log_once(f"middleware_resolver:{type(exc).__name__}", "autotrace: tenant function raised %s; "
             "request has no tenant", type(exc).__name__)


#: A tenant function's answer when it raised (``resolver_answer``): the request has no tenant, not
#: even a trusted caller's (``tenant_of``), for the function that should have named it could not.
FAILED: Any = object()


def resolver_answer(resolve: Callable[..., Any] | None, *request: Any) -> Any:
    """What the tenant function returns for ``request`` (``FAILED`` when it raises: counted). Shared
    by this middleware and the gRPC server's ``tenant_from_call``."""
    if resolve is None:
        return None
    try:
        return resolve(*request)
    except Exception as exc:
        _resolver_failed(exc)
        return FAILED


def tenant_of(value: Any, incoming: Context) -> str | None:
    """The request's tenant: the function's answer if it is a tenant id; when it answered None,
    (if trusted) the caller's baggage entry; none when it failed (raised, or answered no tenant id):
    a caller's entry never stands in for the tenant the service could not name."""
    if value is None:
        return trusted_incoming_tenant(incoming)
    if value is FAILED:
        return None
    if not valid_tenant(value):
        count("tenant_resolver_errors")
        log_once(f"middleware_resolver_value:{type(value).__name__}", "autotrace: tenant function returned "
                 "a %s that is no tenant id (1-128 characters of [A-Za-z0-9._:@/-]); request has no tenant",
                 type(value).__name__)
        if inspect.iscoroutine(value):  # an async function under WSGI (or a sync gRPC handler): never awaited
            value.close()
        return None
    return plain_tenant(value)


def _request_context(incoming: Context) -> Context:
    """The context the request runs in: the caller's trace and baggage (never its tenant entry).

    Nearly always nothing is attached yet and that is ``incoming`` itself. Under an outer layer
    (FastAPI's own request span, when the middleware is added with ``app.add_middleware``; a
    user's middleware span; this middleware installed twice) the current context is built on
    instead: replacing it dropped that layer's values (FastAPI's operation spans went missing)
    and made the request's spans siblings of its span rather than children."""
    current = otel_context.get_current()
    if not current:
        return without_tenant_baggage(incoming)
    if not trace.get_current_span(current).get_span_context().is_valid:
        current = trace.set_span_in_context(trace.get_current_span(incoming), current)
    for name, value in baggage.get_all(incoming).items():
        current = baggage.set_baggage(name, value, current)
    return without_tenant_baggage(current)


def _enter(incoming: Context, answer: Any, trusting: bool = True) -> tuple[Any, Any, Any, Any, Any]:
    """Put the request's context and its tenant (``tenant_of`` the function's ``answer``) in scope.
    Under a span or scope of another tenant's (an outer layer's, a sub-application wrapped again
    resolving another tenant) the request starts a trace of its own, without that scope's trace
    attributes, as ``autotrace.tenant`` does there: else its spans went to the other's trace,
    carrying the other's user and session ids. A scope with no span current (where the server
    started) owns no caller's span: only its attributes go. A function that failed (raised, or
    answered no tenant id) leaves the request with no tenant, not one in scope before (the one a
    server was started under, one left on a pool's thread): only its None leaves that one; nor one a
    caller's baggage names later (an MCP server's request: ``refuse_incoming_tenant``). Not
    ``trusting`` (a public endpoint's middleware), its None leaves no caller the choice either, nor
    the tenant an outer trusting middleware took from the caller (``_caller_named``)."""
    try:
        tenant = tenant_of(answer, incoming) if trusting or answer is not None else None
    except Exception as exc:  # as a function that failed: no tenant (fail closed)
        guarded_failure("middleware.enter", exc)
        tenant, answer = None, FAILED
    context_token = tenant_token = left = refused = named = None
    try:  # never into the request: a failure here leaves it as it would run untraced (no tenant: fail closed)
        if tenant is None and (answer is not None or not trusting):  # failed, or untrusted: no caller names it
            refused = refuse_incoming_tenant()
        outer = trace.get_current_span().get_span_context().is_valid  # else the caller's span is made current here
        context_token = otel_context.attach(_request_context(incoming))
        previous = current_tenant()
        callers = not trusting and previous is not None and previous == _caller_named.get()
        if tenant is not None or (answer is not None and previous is not None) or callers:
            tenant_token = set_tenant(tenant)
            left = leave_other_tenants_trace(tenant, previous, outer)
        if trusting and answer is None and tenant is not None:  # the caller's baggage named it
            named = _caller_named.set(tenant)
        if tenant is not None:
            adopt_current_span(tenant)
    except Exception as exc:
        guarded_failure("middleware.enter", exc)
    return context_token, tenant_token, left, refused, named


def adopt_current_span(tenant: str) -> None:
    """The request's span, when a framework started it before this middleware ran (FastAPI's, with
    ``app.add_middleware``), is the request's: it takes the tenant too, instead of being left out
    of the tenant's trace (``SpanPipeline.adopt``: only a live local root that has none)."""
    pipeline = state.pipeline
    if pipeline is not None:
        span = trace.get_current_span()
        if span.get_span_context().is_valid:
            pipeline.adopt(span, tenant)


def _exit(tokens: tuple[Any, Any, Any, Any, Any]) -> None:
    """Undo ``_enter``, each step whatever the others do; never raises (an application's error
    leaving the request is never replaced by one of autotrace's)."""
    context_token, tenant_token, left, refused, named = tokens
    for step, token in ((back_in_trace, left), (reset_tenant, tenant_token), (release_tenant, refused),
                        (release_tenant, named), (otel_context.detach, context_token)):
        if token is not None:
            try:
                step(token)
            except Exception as exc:
                guarded_failure("middleware.exit", exc)


def _text(value: Any) -> str:
    """An ASGI header name or value as text: bytes, as the specification says, or a string from a
    server that sends them so."""
    return value.decode("latin-1") if isinstance(value, bytes | bytearray) else str(value)


def _combined(raw: Iterable[Any]) -> dict[str, str]:
    """The propagation headers among ASGI ``raw`` headers, by lower-case name, a repeated one's values
    joined by commas (RFC 9110 5.3), as W3C baggage and tracestate require and WSGI servers do; a
    repeated traceparent thus reads as invalid (a new trace starts), as the W3C trace-context test
    suite expects. Other headers are skipped: the reader ignores them."""
    values: dict[str, list[str]] = {}
    for name, value in raw:
        key = _text(name).lower()
        if key in PROPAGATION_KEYS:
            values.setdefault(key, []).append(_text(value))
    return {name: ",".join(parts) for name, parts in values.items()}


class TenantASGIMiddleware:
    """``app = TenantASGIMiddleware(app, tenant_from_scope=lambda scope: scope["state"]["tenant"])``.

    ``tenant_from_scope`` may be a plain or an ``async`` function of the ASGI scope. HTTP and
    WebSocket connections are handled; other scopes (``lifespan``) pass through untouched. A sync
    body Starlette iterates in its thread pool runs all its steps in one context, and is closed in
    it if left unfinished by its reader (``_threadpool_bodies``). ``trust_incoming_tenant=False``: a
    caller's baggage never names the tenant of this middleware's requests, whatever the setting (on
    for internal services of the same process): a public endpoint."""

    def __init__(self, app: Any, tenant_from_scope: Callable[[Mapping[str, Any]], Any] | None = None, *,
                 trust_incoming_tenant: bool = True) -> None:
        self.app = app
        self.tenant_from_scope = tenant_from_scope
        self.trusting = _trusting(trust_incoming_tenant)
        try:
            patch_starlette()
        except Exception as exc:
            guarded_failure("middleware.patch", exc)

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        server = _Server(receive, send, scope) if scope["type"] == "http" else None  # before ``_enter``: the server's state
        incoming = extract(_combined(scope.get("headers", ())))
        value = resolver_answer(self.tenant_from_scope, scope)
        if inspect.isawaitable(value):
            value = await awaited_answer(value)
        tokens = _enter(incoming, value, self.trusting)
        bodies: Bodies = {}
        marked = serving.set(bodies)
        try:
            if server is None:
                await self.app(scope, receive, send)
            else:
                await self.app(scope, server.receive, server.send)
        finally:
            serving.reset(marked)
            if bodies:
                close_left(bodies, cut_off=server is not None and not server.finished)
            _exit(tokens)


class _Server:
    """The server's side of an HTTP request: its ``receive``, and its ``send`` of the response's last
    message, called and stepped in the context the server called the middleware in (``context``,
    copied then); and whether the response was sent to its end (else its client went away, or the
    application failed, before that).

    A server registers callbacks and starts tasks there, which copy that context: uvicorn's
    ``receive`` resumes reading (paused by a body over 64 KiB) in a reader callback that every later
    request of the connection is started from, and its last ``send`` starts a request pipelined
    behind this one (CPython #140947). Run in the request's context, those began in its trace and
    tenant, or (under ``trust_incoming_tenant``) refused their caller's, as one was in scope."""

    __slots__ = ("_receive", "_send", "context", "finished", "trailers")

    def __init__(self, receive: Any, send: Any, scope: Mapping[str, Any]) -> None:
        self._receive, self._send = receive, send
        self.finished = False
        self.context = copy_context()
        extensions = scope.get("extensions")  # trailers are awaited only where the server takes them
        self.trailers = isinstance(extensions, Mapping) and "http.response.trailers" in extensions

    async def receive(self) -> Any:
        """The server's ``receive()``: a coroutine, as a server's is (``asyncio.create_task`` takes it)."""
        return await self._in_context(self._receive)

    def send(self, message: Mapping[str, Any]) -> Any:
        """The server's ``send`` of ``message``, to await (its own awaitable but for the last, and
        but for one that may start a request: a server push)."""
        if message.get("type") == "http.response.start":
            self.trailers = self.trailers and bool(message.get("trailers", False))
            return self._send(message)
        if message.get("more_body", False):
            return self._send(message)
        return self._last(message)  # ``http.response.body``, ``pathsend``, ``trailers``, ``push``...

    async def _last(self, message: Mapping[str, Any]) -> Any:
        """The server's ``send`` of ``message`` in ``context``; finished when it ends the response."""
        sent = await self._in_context(self._send, message)
        if _ends(message, self.trailers):
            self.finished = True
        return sent

    def _in_context(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)`` (an awaitable) made and stepped in a copy of ``context``, of its own: a step
        never enters one that another step has entered."""
        context = self.context.copy()
        awaitable = context.run(call, *args)
        return _stepped(context, awaitable.__await__()) if hasattr(awaitable, "__await__") else awaitable


#: Messages of an HTTP response that never end it (ASGI extensions: early hints, server push, debug).
_NEVER_LAST = frozenset({"http.response.start", "http.response.early_hint", "http.response.push",
                         "http.response.debug"})


def _ends(message: Mapping[str, Any], trailers: bool) -> bool:
    """Whether ``message`` (none with ``more_body``) is a response's last: its body's end, unless
    trailers were announced (and the server takes them); its last trailers; a message of an extension
    other than those that never end one (``pathsend``, one unknown here: as its end, which leaves
    a body the application still holds open)."""
    kind = message.get("type")
    if kind in _NEVER_LAST or message.get("more_trailers", False):
        return False
    return not (trailers and kind in ("http.response.body", "http.response.zerocopy"))


@types.coroutine
def _stepped(context: ContextVars, steps: Any) -> Any:
    """Awaiting the iterator ``steps`` (an awaitable's ``__await__``) with each step run in ``context``,
    as a task runs its own, in the awaiting task; as ``yield from`` does, also with an iterator that
    has only ``__next__`` (Granian's awaitables): a cancellation thrown into one without ``throw``
    is raised here."""
    run, value, throw = context.run, None, None
    while True:
        try:
            if throw is not None:
                awaited = run(throw, value)
            else:
                awaited = run(next, steps) if value is None else run(steps.send, value)
        except StopIteration as stop:
            return stop.value
        throw = None
        try:
            value = yield awaited
        except GeneratorExit:
            close = getattr(steps, "close", None)
            if close is not None:
                run(close)
            raise
        except BaseException as exc:  # a cancellation: thrown into it, as a task does
            throw, value = getattr(steps, "throw", None), exc
            if throw is None:
                raise


async def awaited_answer(value: Any) -> Any:
    """An ``async`` tenant function's answer (``FAILED`` when it raises: counted)."""
    try:
        return await value
    except Exception as exc:
        _resolver_failed(exc)
        return FAILED


class TenantWSGIMiddleware:
    """``app = TenantWSGIMiddleware(app, tenant_from_environ=lambda env: env.get("HTTP_X_TENANT"))``.

    The tenant and trace context are in scope while the application callable runs and while the
    server iterates (and closes) a streamed response body, e.g. Flask's ``stream_with_context``. A
    file for the server to send (``wsgi.file_wrapper``) is returned as it is, for sendfile; a
    ``close`` the application gave it (Django's response's) runs in scope too.
    ``trust_incoming_tenant=False``: as ``TenantASGIMiddleware``'s.
    """

    def __init__(self, app: Any, tenant_from_environ: Callable[[Mapping[str, Any]], str | None] | None = None, *,
                 trust_incoming_tenant: bool = True) -> None:
        self.app = app
        self.tenant_from_environ = tenant_from_environ
        self.trusting = _trusting(trust_incoming_tenant)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # a copy of the server thread's context holds the request's, for the call and for the body:
        # nothing set while serving the request stays behind on the thread for the next one
        scope = copy_context()
        body = scope.run(self._call, environ, start_response)
        if isinstance(body, list | tuple):
            return body  # nothing of the application runs later; len() stays usable
        if _is_server_file(body, environ):
            return _closed_in(scope, body)  # the server may send it as is (sendfile): the very object
        return _ScopedBody(body, scope)

    def _call(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {name: environ[key] for key, name in _WSGI_KEYS if isinstance(environ.get(key), str)}
        incoming = extract(headers)
        _enter(incoming, resolver_answer(self.tenant_from_environ, environ), self.trusting)
        return self.app(environ, start_response)


def _is_server_file(body: Any, environ: Mapping[str, Any]) -> bool:
    """Whether ``body`` may be a file the server sends as is, when it is the very object returned:
    one of its ``wsgi.file_wrapper`` class (gunicorn, wsgiref), or, where that is a function
    (uWSGI's returns the file it is given), a file-like body. Any other wrapper made uWSGI read
    the file line by line, a binary file's "lines" as large as the file, instead of sendfile."""
    wrapper = environ.get("wsgi.file_wrapper")
    if isinstance(wrapper, type):
        return isinstance(body, wrapper)
    return callable(wrapper) and callable(getattr(body, "read", None))


def _closed_in(scope: ContextVars, body: Any) -> Any:
    """``body`` with a ``close`` of another object's, which may be the application's (Django hands
    a file wrapper its response's, which sends ``request_finished``), run in the request's
    ``scope``. A file's own ``close`` (nothing of the application's) or a body that takes no
    attribute is left as it is."""
    close = getattr(body, "close", None)
    if callable(close) and getattr(close, "__self__", None) is not body:
        try:
            body.close = partial(scope.run, close)
        except Exception:  # slots, a read-only attribute, a __setattr__ of its own: sent as it is
            pass
    return body


class _ScopedBody:
    """A WSGI response body iterated and closed in its request's context (``scope``)."""

    __slots__ = ("_body", "_iterator", "_scope")

    def __init__(self, body: Iterable[bytes], scope: ContextVars) -> None:
        self._body = body
        self._scope = scope
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = self._scope.run(iter, self._body)
        return self._scope.run(next, self._iterator)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            self._scope.run(close)
