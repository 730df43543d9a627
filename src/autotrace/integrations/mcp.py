"""MCP (the ``mcp`` SDK): tool calls, resource reads and prompts as typed observations, one trace
from client to server.

Client: ``ClientSession.call_tool`` (``Client.call_tool``, each of its rounds, and every transport
pass through it) is a CLIENT ``tool`` observation named ``mcp.call_tool <tool>`` (``mcp.call_tool``
for a name the MCP specification does not allow: it is the caller's, or its LLM's, of any length and
characters, and stays in ``tool_name``, bounded as any value; ``_mcp_names``): the arguments, the
result (the text content joined, or the structured content when there is one; images, audio and
binary resources as a note of their kind and size), ``metadata.mcp_server`` / ``mcp_server_version``
when the session knows the server. A result with ``isError`` is ERROR, its text (content: while
captured) the status message (the caller gets the result unchanged); an exception marks the call (a
cancellation WARNING) and propagates. ``ClientSession.read_resource`` is a ``retriever`` named
``mcp.read_resource`` (a URI is no name: it is the input, ``{"uri": ...}``), its contents the
documents (id the content's URI, the start of a text, a blob as its MIME type and size) and
``doc_count``; ``ClientSession.get_prompt`` a ``span`` named ``mcp.get_prompt <prompt>`` (by the
same rule, the name in ``metadata.mcp_prompt``), the arguments in, the messages out (role and text;
other content as a note of its kind and size).

The request's ``_meta`` carries ``traceparent``/``tracestate`` and baggage (SEP-414) as gRPC
metadata does: the caller's other ``_meta`` keys are kept, and its baggage entries; trace headers it
passed are replaced by this call's. The SDK's own injection into every request it sends over
JSON-RPC (``inject_trace_context``, with the process's propagators) is followed by autotrace's, so
its keys too follow autotrace's rules: the sampled bit only (``full_trace_flags``), this service's
tenant only, and only when ``tenant_baggage`` is ``all`` (a session knows no target to match the
setting's patterns against). In process (no JSON-RPC) only the wrapped requests carry ``_meta``.
What the server sends back while a request runs (progress, and its sampling, elicitation and roots
requests) reaches the client's callbacks in that request's tracing state; its notifications (logs,
resource updates), naming no request, in no tenant's (``_mcp_callbacks``).

Server: every ``tools/call``, ``resources/read`` and ``prompts/get`` a server handles (lowlevel
``Server`` or ``MCPServer``, any transport) takes its handler from ``Server.get_request_handler``;
the handler given out runs in a SERVER observation of the client's type, named after the tool or
prompt (the method, for a name the MCP specification does not allow or an ``MCPServer`` does not
have, and for every resource), under the SDK's server span when there is one, else joined to the
caller's trace from ``_meta``; an ``ErrorData`` a lowlevel handler returns is an error there, as
the ``MCPError`` the SDK answers, and so is a result the SDK cannot send (it is ended with the
answer, ``_answer``); an ``MCPServer`` tool's, resource's or prompt's failure records what its
function raised (``_mcp_tool_errors``). No name a request carries names the SDK's own server or
client span unbounded (``_mcp_names``). The caller's tenant is taken only with
``trust_incoming_tenant`` (the SDK's server span, started before, takes it too), for every request
with a handler (``tools/list`` too: the SDK's span for it then has a tenant; ``initialize``,
answered by the SDK itself, has none).
An in-process server (the SDK's in-memory transports) runs in its client's context and so has the
client's tenant: the same program chose it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, set_span_in_context

from .. import recorder
from .._internal import guarded_failure
from ..context import release_tenant, set_tenant, trusted_incoming_tenant, without_tenant_baggage
from ..middleware import adopt_current_span
from ..observation import Observation, ObservationType, make_current, restore_context
from ..propagation import extract, inject, merge_baggage, tenant_travels_to
from ._mcp_callbacks import dispatch_input_request, enter, from_peer, leave, note_sent, on_request
from ._mcp_names import allowed, get_notification_handler, handled, named, registry, sdk_span, served
from ._mcp_results import Fields, get, prompt_outcome, read_outcome, tool_outcome
from ._mcp_tool_errors import RAISERS, behind, kept, original, unwatch, watch
from .base import Integration

_TRACE_KEYS = ("traceparent", "tracestate")


# -- results (what each records: ``_mcp_results``) --------------------------------------------------
def _returned_error(result: Any) -> BaseException | None:
    """The ``MCPError`` the SDK answers for an ``ErrorData`` a lowlevel handler returned, else None."""
    from mcp.shared.exceptions import MCPError  # loaded: the SDK gave this result
    from mcp_types import ErrorData

    return MCPError.from_error_data(result) if isinstance(result, ErrorData) else None


def _outcome(method: _Method, result: Any) -> tuple[Fields, BaseException | str | None]:
    """The fields a result records and, when it reports an error, its message (or the error)."""
    if result is None:
        return {}, None
    returned = _returned_error(result)
    if returned is not None:
        return {}, returned
    if get(result, "result_type", "resultType") == "input_required":
        requests = get(result, "input_requests", "inputRequests") or {}
        return {"output": {"input_required": {key: get(request, "method", "method")
                                              for key, request in requests.items()}}}, None
    return method.outcome(result)


def _finish(method: _Method, obs: Observation, result: Any = None, error: BaseException | None = None,
            behind: BaseException | None = None) -> None:
    """End ``obs`` with a request's result or error (never raises); ``behind``: the exception an
    error result was made of, recorded in place of its text."""
    try:
        if error is not None:
            obs.record_error(error)
        else:
            fields, failed = _outcome(method, result)
            obs.update(**fields)
            if failed is not None:
                obs.record_error(behind if behind is not None and isinstance(failed, str) else failed)
    except Exception as exc:
        guarded_failure("mcp.finish", exc)
    obs.end()


# -- the requests traced ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Method:
    """How one MCP request is recorded, by the client and by the server."""

    wire: str  # the JSON-RPC method
    client: str  # the ``ClientSession`` method
    type: ObservationType
    params: tuple[str, ...]  # the client method's leading positional parameters, read by name
    client_name: Callable[[Mapping[str, Any]], str]
    server_name: Callable[[Mapping[str, Any]], str | None]  # None: the method's name
    start: Callable[[Mapping[str, Any]], Fields]  # the fields known before it runs
    outcome: Callable[[Any], tuple[Fields, str | None]]
    progress: bool = False  # the client method takes ``progress_callback``, after ``read_timeout_seconds``

    @property
    def client_expects(self) -> tuple[str, ...]:
        """The client method's leading positional parameters the wrapper reads."""
        return (*self.params, "read_timeout_seconds", "progress_callback") if self.progress else self.params


def _text(value: Any) -> str | None:
    """A name or URI as text (None stays None)."""
    return value if isinstance(value, str) or value is None else str(value)


_METHODS = {method.wire: method for method in (
    _Method("tools/call", "call_tool", ObservationType.TOOL, ("name", "arguments"),
            lambda p: named("mcp.call_tool", p), allowed,
            lambda p: {"tool_name": _text(p.get("name")), "arguments": p.get("arguments")}, tool_outcome,
            progress=True),
    _Method("resources/read", "read_resource", ObservationType.RETRIEVER, ("uri",),
            lambda p: "mcp.read_resource", lambda p: None,
            lambda p: {"input": {"uri": _text(p.get("uri"))}}, read_outcome),
    _Method("prompts/get", "get_prompt", ObservationType.SPAN, ("name", "arguments"),
            lambda p: named("mcp.get_prompt", p), allowed,
            lambda p: {"input": p.get("arguments"), "metadata": {"mcp_prompt": _text(p.get("name"))}},
            prompt_outcome),
)}


# -- client -----------------------------------------------------------------------------------------
def _server_metadata(session: Any) -> dict[str, Any] | None:
    """The server's name and version, as its initialize (or discover) result gave them."""
    info = getattr(session, "server_info", None)
    if info is None:
        return None
    return {"mcp_server": getattr(info, "name", None) or None, "mcp_server_version": getattr(info, "version", None) or None}


def _client_parent(meta: Mapping[str, Any] | None) -> Context | None:
    """The trace the caller's ``_meta`` names, used only when no span is current (as for gRPC)."""
    if trace.get_current_span().get_span_context().is_valid or not meta:
        return None
    given = {key: meta[key] for key in _TRACE_KEYS if isinstance(meta.get(key), str)}
    return extract(given) if given else None


def _propagate(meta: dict[str, Any], given_baggage: Any, context: Context | None = None) -> None:
    """Write into ``meta`` the trace context of ``context`` (default: the current one) and baggage
    (``given_baggage``, the caller's, with this service's tenant when it travels), as
    ``propagation.inject`` writes them for every other call: trace headers already there are
    replaced, and a baggage key left with no entry is removed."""
    base = merge_baggage([("baggage", given_baggage)], context) if isinstance(given_baggage, str) else context
    carrier: dict[str, str] = {}
    inject(carrier, base, tenant_travels_to(None))
    if "traceparent" in carrier:
        meta["traceparent"] = carrier["traceparent"]
        if "tracestate" in carrier:
            meta["tracestate"] = carrier["tracestate"]
        else:
            meta.pop("tracestate", None)
    if "baggage" in carrier:
        meta["baggage"] = carrier["baggage"]
    else:
        meta.pop("baggage", None)


class _ClientCall:
    """One request a client sends: its observation and the ``_meta`` to send (None: the caller's,
    as is)."""

    __slots__ = ("meta", "obs")

    def __init__(self, method: _Method, session: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        params = {key: args[i] if i < len(args) else kwargs.get(key) for i, key in enumerate(method.params)}
        name, fields, server = method.client_name(params), method.start(params), _server_metadata(session)
        meta = kwargs.get("meta")
        fields = {**fields, "metadata": {**(fields.get("metadata") or {}), **(server or {})} or None}
        self.obs = recorder.start_with(method.type, name, f"mcp.{method.client}", kind=SpanKind.CLIENT,
                                       parent=_client_parent(meta if isinstance(meta, Mapping) else None), **fields)
        self.meta: dict[str, Any] | None = None
        if meta is None or isinstance(meta, Mapping):  # anything else fails in the SDK, as untraced
            try:  # the observation has started: a failure here leaves the caller's _meta as it is
                sent = dict(meta) if meta else {}
                _propagate(sent, sent.get("baggage"), set_span_in_context(self.obs.span))
                self.meta = sent
            except Exception as exc:
                guarded_failure("mcp.propagate", exc)


def _client_wrapper(method: _Method) -> Callable[..., Awaitable[Any]]:
    """The wrapper of ``ClientSession.<method.client>``: the request as an observation, current
    while it runs, its ``_meta`` carrying the trace."""

    async def wrapper(wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        try:
            call = _ClientCall(method, instance, args, kwargs)
        except Exception as exc:
            guarded_failure(f"mcp.{method.client}", exc)
            return await wrapped(*args, **kwargs)
        if call.meta is not None:
            kwargs = {**kwargs, "meta": call.meta}
        token = make_current(call.obs)
        caller, args, kwargs = enter(instance, method.progress, args, kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            leave(caller)
            restore_context(token)
            _finish(method, call.obs, error=error)
            raise
        leave(caller)
        restore_context(token)
        _finish(method, call.obs, result)
        return result

    return wrapper


def _inject_trace_context(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                          kwargs: dict[str, Any]) -> Any:
    """The SDK's own ``_meta`` injection for every request it sends (with the process's
    propagators): its W3C keys become autotrace's, so the flags rule (``full_trace_flags``) and the
    tenant rules hold there too, and an incoming tenant entry in the context is not sent on."""
    meta = args[0] if args else kwargs.get("meta")
    given = meta.get("baggage") if isinstance(meta, dict) else None
    result = wrapped(*args, **kwargs)
    try:
        if isinstance(meta, dict):
            _propagate(meta, given)
    except Exception as exc:
        guarded_failure("mcp.inject", exc)
    note_sent()  # the span the server's requests for this one name
    return result


# -- server -----------------------------------------------------------------------------------------
class _ServerCall:
    """One request a server handles: its tenant when trusted and, for a traced ``method`` (None:
    another request, ``tools/list`` ...), its observation in the caller's trace."""

    __slots__ = ("caught", "context", "method", "obs", "tenant_token")

    def __init__(self, method: _Method | None, params: Any, known: Callable[[str], Any] | None = None) -> None:
        self.method = method
        self.obs: Observation | None = None
        self.tenant_token: Any = None
        self.context: Context | None = None
        self.caught: list[BaseException] = []  # what the ``MCPServer`` raised in the handler (``kept``)
        try:
            meta = getattr(params, "meta", None)
            incoming = extract(meta if isinstance(meta, Mapping) else None)
            tenant = trusted_incoming_tenant(incoming)
            if tenant is not None:
                self.tenant_token = set_tenant(tenant)
                adopt_current_span(tenant)  # the SDK's server span, started before the tenant was known
            if method is None:
                return
            given = {key: getattr(params, key, None) for key in method.params}
            name, fields = served(method.wire, method.server_name(given), known), method.start(given)
            parent = _server_parent(incoming)
            self.obs = recorder.start(method.type, name, kind=SpanKind.SERVER, parent=parent)
            self.obs.update(**fields)
            self.context = set_span_in_context(self.obs.span, without_tenant_baggage(parent))  # None: the current
        except Exception as exc:
            guarded_failure("mcp.server_start", exc)

    def close(self, result: Any = None, error: BaseException | None = None) -> None:
        """The handler has ended: its tenant is let go; its observation ends now, or (a result, in a
        request ``_answer`` runs) with the answer the client gets."""
        release_tenant(self.tenant_token)
        self.tenant_token = None
        error = behind(error, self.caught)  # what an ``MCPServer``'s resource or prompt raised
        answering = _ANSWERING.get() if error is None else None
        if answering is not None and self.obs is not None:
            answering.append((self, result))
        else:
            self.finish(result, error)

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        if self.obs is not None and self.method is not None:
            _finish(self.method, self.obs, result, error, original(self.caught))


def _server_parent(incoming: Context) -> Context | None:
    """The caller's context from ``_meta``; None (the current span) when that one already is in the
    caller's trace (the SDK's own server span, or an in-process client's context) or ``_meta``
    named no trace."""
    named = trace.get_current_span(incoming).get_span_context()
    if not named.is_valid:
        return None
    current = trace.get_current_span().get_span_context()
    return None if current.is_valid and current.trace_id == named.trace_id else incoming


def _attach(context: Context | None) -> object | None:
    """Make ``context`` current; a token for ``restore_context``."""
    if context is None:
        return None
    try:
        return otel_context.attach(context)
    except Exception as exc:
        guarded_failure("mcp.attach", exc)
        return None


def _traced_handler(method: _Method | None, handler: Callable[..., Awaitable[Any]],
                    known: Callable[[str], Any] | None) -> Callable[..., Awaitable[Any]]:
    async def traced(ctx: Any, params: Any) -> Any:
        call = _ServerCall(method, params, known)
        token = _attach(call.context)
        watching = watch(call.caught) if call.obs is not None else None
        try:
            result = await handler(ctx, params)
        except BaseException as error:
            unwatch(watching)
            restore_context(token)
            call.close(error=error)
            raise
        unwatch(watching)
        restore_context(token)
        call.close(result)
        return result

    traced.__wrapped__ = handler  # type: ignore[attr-defined]
    return traced


#: The handlers' calls (and results) of the request ``_answer`` runs here, ended with its answer.
_ANSWERING: ContextVar[list[tuple[_ServerCall, Any]] | None] = ContextVar("autotrace_mcp_answering", default=None)


async def _answer(wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
    """``ServerRunner._on_request``: a handler's observation ends with what the client gets, which
    the SDK makes of its result only after it returns: a result it cannot send (a malformed one, or
    of a type it does not take) is answered as an error, which fails the observation too."""
    answering: list[tuple[_ServerCall, Any]] = []
    token = _ANSWERING.set(answering)
    try:
        answer = await wrapped(*args, **kwargs)
    except BaseException as error:
        _ANSWERING.reset(token)
        for call, _ in answering:
            call.finish(error=error)
        raise
    _ANSWERING.reset(token)
    for call, result in answering:
        call.finish(result)
    return answer


def _get_request_handler(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> Any:
    entry = wrapped(*args, **kwargs)
    try:
        if entry is not None:  # every request: its tenant when trusted; the three traced: their observation
            name = args[0] if args else kwargs.get("method")
            handled(name)
            method = _METHODS.get(name)
            known = registry(name, entry.handler) if method is not None else None
            return dataclasses.replace(entry, handler=_traced_handler(method, entry.handler, known))
    except Exception as exc:
        guarded_failure("mcp.server_handler", exc)
    return entry


class McpIntegration(Integration):
    """Patches ``ClientSession.call_tool`` / ``read_resource`` / ``get_prompt`` (and
    ``dispatch_input_request``, ``_on_request`` and ``_on_notify``: what the server sends them) and
    ``Server.get_request_handler`` (the same three requests, and the tenant of every other),
    ``ServerRunner._on_request`` (their observations end with the answer) and how the SDK names its
    server and client spans (``otel_span``, ``get_notification_handler``)."""

    name = "mcp"
    distribution = "mcp"
    module = "mcp"
    supported = ">=2,<3"

    def _instrument(self) -> None:
        wrap = self.patcher.wrap
        for method in _METHODS.values():
            wrap("mcp.client.session", f"ClientSession.{method.client}", _client_wrapper(method),
                 expects=method.client_expects)
        wrap("mcp.client.session", "ClientSession.dispatch_input_request", dispatch_input_request,
             expects=("ctx", "request"))
        for target, wrapper in (("_on_request", on_request), ("_on_notify", from_peer)):
            wrap("mcp.client.session", f"ClientSession.{target}", wrapper, expects=("dctx", "method", "params"))
        wrap("mcp.client.session", "ClientSession._deliver_bound_notifications", from_peer, optional=True)
        wrap("mcp.client.session", "ClientSession._deliver_stream_exception", from_peer, optional=True)
        wrap("mcp.server.lowlevel.server", "Server.get_request_handler", _get_request_handler, expects=("method",))
        wrap("mcp.server.lowlevel.server", "Server.get_notification_handler", get_notification_handler,
             optional=True, expects=("method",))
        wrap("mcp.server._otel", "otel_span", sdk_span, optional=True)
        wrap("mcp.shared.jsonrpc_dispatcher", "otel_span", sdk_span, optional=True)
        for module, target in RAISERS:  # what they raise, for the server's observations
            wrap(module, target, kept, optional=True)
        wrap("mcp.server.runner", "ServerRunner._on_request", _answer, optional=True,
             expects=("dctx", "method", "params"))
        wrap("mcp.shared.jsonrpc_dispatcher", "inject_trace_context", _inject_trace_context, optional=True,
             expects=("meta",))


INTEGRATION = McpIntegration()
