"""What a tool, resource or prompt of an ``MCPServer`` raised, for its server observation.

``MCPServer.call_tool`` raises every failure of a tool as a ``ToolError`` whose ``__cause__`` is what
the tool raised (a crash as ``UnexpectedToolError``, its text left out); the SDK's ``tools/call``
handler answers it as an ``isError`` result and logs the original. A resource's crash is raised by
``MCPServer.read_resource`` as ``UnexpectedResourceError`` (the handler answers an ``MCPError``
naming only the URI), a prompt's by ``Prompt.render`` as ``ValueError("Error rendering prompt
...")`` (re-raised as another ``ValueError``), the original the ``__cause__`` of each. These are
wrapped (``kept``) to keep that exception, unchanged and still raised, for the handler's observation
(``watch``), which records the original (``original``) where it would record only the result's
text or the error the handler raised (``behind``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from typing import Any

#: Where the handler running here keeps what ``kept`` raised (None: nowhere).
_CAUGHT: ContextVar[list[BaseException] | None] = ContextVar("autotrace_mcp_tool_error", default=None)
_MAX_CHAIN = 8  # the links from a handler's error to what it was raised from that are followed
#: What is wrapped with ``kept``: the functions that raise a tool's, resource's or prompt's failure.
RAISERS = (("mcp.server.mcpserver.server", "MCPServer.call_tool"),
           ("mcp.server.mcpserver.server", "MCPServer.read_resource"),
           ("mcp.server.mcpserver.prompts.base", "Prompt.render"))


def watch(caught: list[BaseException]) -> Token[list[BaseException] | None]:
    """Keep in ``caught`` what ``kept`` raises in the handler running here, until ``unwatch``."""
    return _CAUGHT.set(caught)


def unwatch(token: Token[list[BaseException] | None] | None) -> None:
    """Stop ``watch``'s keeping (None: nothing was watched)."""
    if token is not None:
        _CAUGHT.reset(token)


async def kept(wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> Any:
    """``MCPServer.call_tool`` / ``read_resource``, ``Prompt.render``: what it raises in a watched
    handler is kept there; a tool (or resource) it calls in turn, in the same task, is not the
    handler's."""
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
    """What the tool, resource or prompt raised: the ``__cause__`` of the SDK's ``ToolError``,
    ``UnexpectedResourceError`` or prompt's ``ValueError`` (through the wrappers of a nested tool or
    resource that crashed), or the error itself (an unknown tool's, an anticipated
    ``ResourceError``); None if nothing was caught."""
    if not caught:
        return None
    from mcp.server.mcpserver.exceptions import ToolError, UnexpectedResourceError, UnexpectedToolError

    error = caught[-1]
    # ``Prompt.render`` raises a bare ``ValueError`` with a cause only around what the prompt raised
    wrapper = isinstance(error, (ToolError, UnexpectedResourceError)) or type(error) is ValueError
    cause = error.__cause__ if wrapper else None
    while isinstance(cause, (UnexpectedToolError, UnexpectedResourceError)) and cause.__cause__ is not None:
        cause = cause.__cause__
    return cause if cause is not None else error


def behind(error: BaseException | None, caught: list[BaseException]) -> BaseException | None:
    """What the handler's ``error`` was made of: when it was raised from (or is) what was caught, the
    crash the SDK wrapped there (``original``), else ``error`` itself (None: no error). An
    anticipated ``ResourceError`` is kept as the ``MCPError`` it is answered as, with its text."""
    if not caught or not isinstance(error, Exception):
        return error
    link: BaseException | None = error
    for _ in range(_MAX_CHAIN):
        if link is None:
            return error
        if link is caught[-1]:
            found = original(caught)
            return error if found is None or found is link else found
        link = link.__cause__ or link.__context__
    return error
