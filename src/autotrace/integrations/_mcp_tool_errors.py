"""What a tool of an ``MCPServer`` raised, for its server observation.

``MCPServer.call_tool`` raises every failure of a tool as a ``ToolError`` whose ``__cause__`` is what
the tool raised (a crash as ``UnexpectedToolError``, its text left out); the SDK's ``tools/call``
handler answers it as an ``isError`` result and logs the original. ``call_tool`` is wrapped to keep
that exception, unchanged and still raised, for the handler's observation (``watch``), which records
the original (``original``) where it would record only the result's text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from typing import Any

#: Where the ``tools/call`` handler running here keeps what ``call_tool`` raised (None: nowhere).
_CAUGHT: ContextVar[list[BaseException] | None] = ContextVar("autotrace_mcp_tool_error", default=None)


def watch(caught: list[BaseException]) -> Token[list[BaseException] | None]:
    """Keep in ``caught`` what ``call_tool`` raises in the handler running here, until ``unwatch``."""
    return _CAUGHT.set(caught)


def unwatch(token: Token[list[BaseException] | None] | None) -> None:
    """Stop ``watch``'s keeping (None: nothing was watched)."""
    if token is not None:
        _CAUGHT.reset(token)


async def call_tool(wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
    """``MCPServer.call_tool``: what it raises in a watched handler is kept there; a tool the tool
    calls (in the same task) is not the handler's."""
    caught = _CAUGHT.get()
    if caught is None:
        return await wrapped(*args, **kwargs)
    token = _CAUGHT.set(None)
    try:
        result = await wrapped(*args, **kwargs)
    except Exception as error:
        caught[:] = [error]
        raise
    finally:
        _CAUGHT.reset(token)
    caught.clear()  # a later call (a middleware's retry) has succeeded
    return result


def original(caught: list[BaseException]) -> BaseException | None:
    """What the tool raised: the ``__cause__`` of the SDK's ``ToolError`` (through the wrappers of
    a nested tool or resource that crashed), or the error itself (an unknown tool's); None if
    nothing was caught."""
    if not caught:
        return None
    from mcp.server.mcpserver.exceptions import ToolError, UnexpectedResourceError, UnexpectedToolError

    error = caught[-1]
    cause = error.__cause__ if isinstance(error, ToolError) else None
    while isinstance(cause, (UnexpectedToolError, UnexpectedResourceError)) and cause.__cause__ is not None:
        cause = cause.__cause__
    return cause if cause is not None else error
