"""MCP (the ``mcp`` SDK): tool calls as ``tool`` observations, one trace from client to server.

Client: ``ClientSession.call_tool`` (``Client.call_tool``, each of its rounds, and every transport
pass through it) is a CLIENT ``tool`` observation named ``mcp.call_tool <tool>``: the arguments,
the result (the text content joined, or the structured content when there is one; images, audio
and binary resources as a note of their kind and size), ``metadata.mcp_server`` /
``mcp_server_version`` when the session knows the server. A result with ``isError`` is ERROR, its
text the status message (the caller gets the result unchanged); an exception marks the call (a
cancellation WARNING) and propagates.

The request's ``_meta`` carries ``traceparent``/``tracestate`` and baggage (SEP-414) as gRPC
metadata does: the caller's other ``_meta`` keys are kept, and its baggage entries; trace headers it
passed are replaced by this call's. The SDK's own injection into every request it sends over
JSON-RPC (``inject_trace_context``, with the process's propagators) is followed by autotrace's, so
its keys too follow autotrace's rules: the sampled bit only (``full_trace_flags``), this service's
tenant only, and only when ``tenant_baggage`` is ``all`` (a session knows no target to match the
setting's patterns against).

Server: every ``tools/call`` a server handles (lowlevel ``Server`` or ``MCPServer``, any transport)
takes its handler from ``Server.get_request_handler``; the handler given out runs in a SERVER
``tool`` observation named after the tool (``tools/call`` for a name the MCP specification does not
allow), under the SDK's server span when there is one, else joined to the caller's trace from
``_meta``. The caller's tenant is taken only with ``trust_incoming_tenant`` (the SDK's server span,
started before, takes it too). An in-process server (the SDK's in-memory transports) runs in its
client's context and so has the client's tenant: the same program chose it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, set_span_in_context

from .. import recorder
from .._internal import guarded_failure
from ..context import reset_tenant, set_tenant, trusted_incoming_tenant, without_tenant_baggage
from ..middleware import adopt_current_span
from ..observation import Observation, ObservationType, make_current, restore_context
from ..propagation import extract, inject, merge_baggage, tenant_travels_to
from .base import Integration

#: Tool names the MCP specification allows (2025-11-25: 1-128 of these characters).
_TOOL_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_TRACE_KEYS = ("traceparent", "tracestate")
_TOOLS_CALL = "tools/call"


# -- results ----------------------------------------------------------------------------------------
def _get(item: Any, attribute: str, key: str) -> Any:
    """``item``'s field, whether the SDK's model or the raw dict a server handler may return."""
    return item.get(key) if isinstance(item, Mapping) else getattr(item, attribute, None)


def _part_text(part: Any) -> str:
    """A content block as text: its text, or a note of the kind and size of a payload."""
    kind = _get(part, "type", "type")
    if kind == "text":
        return str(_get(part, "text", "text"))
    if kind in ("image", "audio"):
        data = _get(part, "data", "data")
        return f"<{_get(part, 'mime_type', 'mimeType') or kind} base64, {len(data) if isinstance(data, str) else 0} chars>"
    if kind == "resource_link":
        return f"<resource_link {_get(part, 'uri', 'uri')}>"
    if kind == "resource":
        resource = _get(part, "resource", "resource")
        text = _get(resource, "text", "text")
        if isinstance(text, str):
            return text
        blob = _get(resource, "blob", "blob")
        mime = _get(resource, "mime_type", "mimeType") or "resource"
        return f"<{mime} base64, {len(blob) if isinstance(blob, str) else 0} chars: {_get(resource, 'uri', 'uri')}>"
    return f"<{kind}>"


def _result_fields(result: Any) -> tuple[Any, str | None]:
    """A tool result's output and, when it reports an error (``isError``), its message."""
    if result is None:
        return None, None
    if _get(result, "result_type", "resultType") == "input_required":
        requests = _get(result, "input_requests", "inputRequests") or {}
        return {"input_required": {key: _get(request, "method", "method") for key, request in requests.items()}}, None
    content = _get(result, "content", "content")
    text = "\n".join(_part_text(part) for part in content) if isinstance(content, list) else None
    structured = _get(result, "structured_content", "structuredContent")
    output = structured if structured is not None else text
    if _get(result, "is_error", "isError") is True:
        return output, text or "the tool reported an error"
    return output, None


def _finish(obs: Observation, result: Any = None, error: BaseException | None = None) -> None:
    """End ``obs`` with a call's result or error (never raises)."""
    try:
        if error is not None:
            obs.record_error(error)
        else:
            output, failed = _result_fields(result)
            obs.update(result=output)
            if failed is not None:
                obs.record_error(failed)
    except Exception as exc:
        guarded_failure("mcp.finish", exc)
    obs.end()


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
    """One ``call_tool``: its observation and the ``_meta`` to send (None: the caller's, as is)."""

    __slots__ = ("meta", "obs")

    def __init__(self, session: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        name = args[0] if args else kwargs.get("name")
        arguments = args[1] if len(args) > 1 else kwargs.get("arguments")
        meta = kwargs.get("meta")
        self.obs = recorder.start(ObservationType.TOOL, f"mcp.call_tool {name}", kind=SpanKind.CLIENT,
                                  parent=_client_parent(meta if isinstance(meta, Mapping) else None))
        self.obs.update(tool_name=str(name), arguments=arguments, metadata=_server_metadata(session))
        self.meta: dict[str, Any] | None = None
        if meta is None or isinstance(meta, Mapping):  # anything else fails in the SDK, as untraced
            self.meta = dict(meta) if meta else {}
            _propagate(self.meta, self.meta.get("baggage"), set_span_in_context(self.obs.span))


def _start_client_call(session: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _ClientCall | None:
    try:
        return _ClientCall(session, args, kwargs)
    except Exception as exc:
        guarded_failure("mcp.call_tool", exc)
        return None


async def _call_tool(wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:
    """``ClientSession.call_tool``: the call as a tool observation, current while it runs."""
    call = _start_client_call(instance, args, kwargs)
    if call is None:
        return await wrapped(*args, **kwargs)
    if call.meta is not None:
        kwargs = {**kwargs, "meta": call.meta}
    token = make_current(call.obs)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as error:
        restore_context(token)
        _finish(call.obs, error=error)
        raise
    restore_context(token)
    _finish(call.obs, result)
    return result


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
    return result


# -- server -----------------------------------------------------------------------------------------
class _ServerCall:
    """One ``tools/call`` a server handles: the caller's trace joined, its tenant when trusted."""

    __slots__ = ("context", "obs", "tenant_token")

    def __init__(self, params: Any) -> None:
        self.obs: Observation | None = None
        self.tenant_token: Any = None
        self.context: Context | None = None
        try:
            name = getattr(params, "name", None)
            meta = getattr(params, "meta", None)
            incoming = extract(meta if isinstance(meta, Mapping) else None)
            tenant = trusted_incoming_tenant(incoming)
            if tenant is not None:
                self.tenant_token = set_tenant(tenant)
                adopt_current_span(tenant)  # the SDK's server span, started before the tenant was known
            parent = _server_parent(incoming)
            shown = name if isinstance(name, str) and _TOOL_NAME.fullmatch(name) else _TOOLS_CALL
            self.obs = recorder.start(ObservationType.TOOL, shown, kind=SpanKind.SERVER, parent=parent)
            self.obs.update(tool_name=name if isinstance(name, str) else None,
                            arguments=getattr(params, "arguments", None))
            self.context = set_span_in_context(self.obs.span, without_tenant_baggage(parent))  # None: the current
        except Exception as exc:
            guarded_failure("mcp.server_start", exc)

    def close(self, result: Any = None, error: BaseException | None = None) -> None:
        if self.obs is not None:
            _finish(self.obs, result, error)
        if self.tenant_token is not None:
            try:
                reset_tenant(self.tenant_token)
            except ValueError:  # reset from another context
                pass
            self.tenant_token = None


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


def _traced_handler(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def traced(ctx: Any, params: Any) -> Any:
        call = _ServerCall(params)
        token = _attach(call.context)
        try:
            result = await handler(ctx, params)
        except BaseException as error:
            restore_context(token)
            call.close(error=error)
            raise
        restore_context(token)
        call.close(result)
        return result

    traced.__wrapped__ = handler  # type: ignore[attr-defined]
    return traced


def _get_request_handler(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> Any:
    entry = wrapped(*args, **kwargs)
    try:
        method = args[0] if args else kwargs.get("method")
        if method == _TOOLS_CALL and entry is not None:
            return dataclasses.replace(entry, handler=_traced_handler(entry.handler))
    except Exception as exc:
        guarded_failure("mcp.server_handler", exc)
    return entry


class McpIntegration(Integration):
    """Patches ``ClientSession.call_tool`` and ``Server.get_request_handler`` (``tools/call``)."""

    name = "mcp"
    distribution = "mcp"
    module = "mcp"
    supported = ">=2,<3"

    def _instrument(self) -> None:
        wrap = self.patcher.wrap
        wrap("mcp.client.session", "ClientSession.call_tool", _call_tool, expects=("name", "arguments"))
        wrap("mcp.server.lowlevel.server", "Server.get_request_handler", _get_request_handler, expects=("method",))
        wrap("mcp.shared.jsonrpc_dispatcher", "inject_trace_context", _inject_trace_context, optional=True,
             expects=("meta",))


INTEGRATION = McpIntegration()
