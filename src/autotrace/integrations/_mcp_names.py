"""What MCP spans are named: a name a request carries (a tool's or prompt's, the method of a
request) is no span name unless it is bounded.

The SDK's own server span (``OpenTelemetryMiddleware``) takes ``{method} {params.name}`` as the
client sent them, of any length and any characters, for every method (``ping <anything>``); a client
could give every request a span name of its own. As autotrace's own observations (and gRPC's
``_OTHER``) it keeps the name only for a request that names a tool or prompt (``tools/call``,
``prompts/get``) and only when the MCP specification allows it (``allowed``), and the method only
when the specification defines it; another method is ``_OTHER`` (``mcp.method.name`` keeps what was
sent) until the server is found to have a handler for it (``handled``: an extension's method), which
names it again. A name the specification allows is still the client's: an ``MCPServer``, which knows
its tools and prompts (``registry``), names no span after one it does not have (``served``). The
SDK's client span (``MCP send {method} {params.name}``) and autotrace's client observations
(``named``) keep a name by the same rule: a client's tool name may be its LLM's output.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from .._internal import guarded_failure

#: Tool (and prompt) names the MCP specification allows (2025-11-25: 1-128 of these characters).
_TOOL_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
OTHER = "_OTHER"
_METHOD = "mcp.method.name"
#: Where an ``MCPServer`` keeps what a request names: its manager attribute and lookup by name.
_REGISTRIES = {"tools/call": ("_tool_manager", "get_tool"), "prompts/get": ("_prompt_manager", "get_prompt")}


#: The requests whose ``name`` names a tool or prompt (others' is no name of theirs).
_NAMING = frozenset(_REGISTRIES)
_SENT = "MCP send "  # the start of the SDK's client span's name


def allowed(params: Mapping[str, Any]) -> str | None:
    """The tool's or prompt's name as the MCP specification allows it, else None."""
    name = params.get("name")
    return name if isinstance(name, str) and _TOOL_NAME.fullmatch(name) else None


def named(prefix: str, params: Mapping[str, Any]) -> str:
    """A client observation's name: ``{prefix} {name}`` for a name the specification allows, else
    ``prefix`` (the name stays in the observation's fields, bounded as any value)."""
    name = allowed(params)
    return prefix if name is None else f"{prefix} {name}"


@functools.cache
def _spec() -> frozenset[str]:
    """The methods (requests and notifications) the specification defines."""
    from mcp_types import methods  # loaded: the SDK is naming a span

    return frozenset(methods.SPEC_CLIENT_METHODS) | frozenset(methods.SPEC_CLIENT_NOTIFICATION_METHODS)


def _with_name(method: str, name: str, start: str) -> str:
    """``{start}{method}``, with `` {params.name}`` as the SDK's span ``name`` (``{start}{method}
    {params.name}``) has it when the request names a tool or prompt the specification allows."""
    given = name[len(start) + len(method) + 1:] if name.startswith(f"{start}{method} ") else None
    keep = given is not None and method in _NAMING and _TOOL_NAME.fullmatch(given) is not None
    return f"{start}{method} {given}" if keep else f"{start}{method}"


def _bounded(method: str, name: str, kind: Any) -> str | None:
    """The span name the SDK gave, bounded: a server's (``{method}`` or ``{method} {name}``), its
    method ``_OTHER`` when the specification does not define it; a client's (``MCP send ...``), whose
    method is the sender's own. None: a span of another kind or name, as it is."""
    if kind == SpanKind.SERVER:
        return _with_name(method, name, "") if method in _spec() else OTHER
    if kind == SpanKind.CLIENT and name.startswith(_SENT):
        return _with_name(method, name, _SENT)
    return None


def sdk_span(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``otel_span``, as the server's middleware (``name=``) and the JSON-RPC dispatcher (the name
    first) call it: the name bounded."""
    try:
        method, name = (kwargs.get("attributes") or {}).get(_METHOD), args[0] if args else kwargs.get("name")
        if isinstance(method, str) and isinstance(name, str):
            bounded = _bounded(method, name, kwargs.get("kind"))
            if bounded is not None and bounded != name:
                args, kwargs = ((bounded, *args[1:]), kwargs) if args else (args, {**kwargs, "name": bounded})
    except Exception as exc:
        guarded_failure("mcp.server_span", exc)
    return wrapped(*args, **kwargs)


def handled(method: Any) -> None:
    """The server has a handler for ``method``: the SDK's span for it, when current and named
    ``_OTHER`` (no method of the specification's), is named after it (never raises)."""
    try:
        if not isinstance(method, str) or method in _spec():
            return
        span = trace.get_current_span()
        if getattr(span, "name", None) == OTHER and (getattr(span, "attributes", None) or {}).get(_METHOD) == method:
            span.update_name(method)
    except Exception as exc:
        guarded_failure("mcp.server_span", exc)


def registry(method: str, handler: Any) -> Callable[[str], Any] | None:
    """The lookup by name (None: unknown) of the tools or prompts an ``MCPServer``'s ``handler`` of
    ``method`` serves; None for another handler (a lowlevel server's: its names are not known)."""
    where = _REGISTRIES.get(method)
    module = sys.modules.get("mcp.server.mcpserver.server")
    owner = getattr(handler, "__self__", None)
    if where is None or module is None or not isinstance(owner, getattr(module, "MCPServer", ())):
        return None
    lookup = getattr(getattr(owner, where[0], None), where[1], None)
    return lookup if callable(lookup) else None


def served(method: str, name: str | None, known: Callable[[str], Any] | None) -> str:
    """The name of the server's observation of a request naming ``name`` (None: no name it
    allows): ``name`` unless ``known`` (``registry``) finds no such tool or prompt, else the method,
    which then names the SDK's span for the request too, when current and named after ``name``."""
    if name is None or known is None or known(name) is not None:
        return name or method
    try:
        span = trace.get_current_span()
        if getattr(span, "name", None) == f"{method} {name}" and \
                (getattr(span, "attributes", None) or {}).get(_METHOD) == method:
            span.update_name(method)
    except Exception as exc:
        guarded_failure("mcp.server_span", exc)
    return method


def get_notification_handler(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                             kwargs: dict[str, Any]) -> Any:
    """``Server.get_notification_handler``: a notification it has a handler for names its span."""
    entry = wrapped(*args, **kwargs)
    if entry is not None:
        handled(args[0] if args else kwargs.get("method"))
    return entry
