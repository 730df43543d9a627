"""Raw responses the caller reads itself: ``with_raw_response`` on a stream, and
``with_streaming_response``. Their body is not read when the request returns, so their
observation waits for the caller's ``parse()``: the parsed response is recorded then, and a
parsed stream is tracked as any other (without usage being asked for: the caller may read its raw
lines, so no chunk of it could be hidden). A response never parsed ends its observation, with what
is known, when it is freed.

The SDK's response classes are patched (``patch``); a response waiting to be parsed carries a
``RawTracking`` in its ``__dict__``. Any other takes the SDK's own ``parse`` at the cost of one
dictionary lookup.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..._internal import count, guarded_failure
from ...observation import Observation
from . import _extract, _stream
from ._stream import StreamState

#: Where a response waiting to be parsed keeps its ``RawTracking``.
_KEY = "_autotrace_raw"


class RawTracking:
    """One raw response's observation, ended exactly once: when the caller has parsed the response
    (a stream ends it when the stream ends), or when the response is freed unparsed."""

    __slots__ = ("choices", "done", "obs", "operation", "stream")

    def __init__(self, obs: Observation, operation: str, stream: bool, choices: int) -> None:
        self.obs = obs
        self.operation = operation
        self.stream = stream
        self.choices = choices
        self.done = False

    def parsed(self, result: Any) -> Any:
        """Record what ``parse()`` returned and hand it on; never raises."""
        if self.done:
            return result
        self.done = True
        obs = self.obs
        try:
            if self.stream:
                if _stream.track(result, obs, StreamState(self.operation, hide_usage_chunk=False,
                                                          choices=self.choices)):
                    return result
                count("openai.stream_untracked")  # parsed ``to=`` another type, or a stream class not patched
            else:
                obs.defer(_extract.response_fields, self.operation, result)
        except Exception as exc:
            guarded_failure("openai.raw_response", exc)
        obs.end()
        return result

    def failed(self, error: BaseException) -> None:
        if not self.done:
            self.done = True
            self.obs.record_error(error)
            self.obs.end()

    def __del__(self) -> None:  # never parsed: the caller read the body another way, or not at all
        if not self.done:
            self.done = True
            self.obs.end()


def wait_for_parse(response: Any, obs: Observation, operation: str, stream: bool, choices: int) -> bool:
    """Have ``obs`` end when the caller parses ``response``; False, with nothing changed, if it cannot."""
    fields = getattr(response, "__dict__", None)
    if type(fields) is not dict or not _PATCHED:
        return False
    fields[_KEY] = RawTracking(obs, operation, stream, choices)
    return True


def _parse(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``parse`` of the SDK's response classes (async: a coroutine function)."""
    fields = getattr(instance, "__dict__", None)
    found = fields.pop(_KEY, None) if type(fields) is dict else None
    if found is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        found.failed(error)
        raise
    if inspect.isawaitable(result):
        return _parsed_later(result, found)
    return found.parsed(result)


async def _parsed_later(awaitable: Any, found: RawTracking) -> Any:
    try:
        result = await awaitable
    except BaseException as error:
        found.failed(error)
        raise
    return found.parsed(result)


#: Whether every response class's ``parse`` is patched (else no response waits for one).
_PATCHED = False


def patch(patcher: Any) -> None:
    """Patch ``parse`` of the SDK's raw response classes."""
    global _PATCHED
    _PATCHED = all([patcher.wrap("openai._legacy_response", "LegacyAPIResponse.parse", _parse),
                    patcher.wrap("openai._response", "APIResponse.parse", _parse),
                    patcher.wrap("openai._response", "AsyncAPIResponse.parse", _parse)])
