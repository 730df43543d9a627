"""Raw responses the caller reads itself: ``with_raw_response`` on a stream, and
``with_streaming_response``. Their body is not read when the request returns, so their
observation waits for the caller's ``parse()``: the parsed response is recorded then, and a
parsed stream is tracked as any other (without usage being asked for: the caller may read its raw
lines, so no chunk of it could be hidden). A response never parsed ends its observation, with what
is known, when it is freed.

A response waiting to be parsed has its ``parse`` shadowed on the instance (``wait_for_parse``).
When a ``with_streaming_response`` block is left (``patch``), the SDK closes the response: a stream
parsed from it ends then too (interrupted if unread, as a stream closed early); a response left
unparsed by a cancellation or ``KeyboardInterrupt`` ends as interrupted (WARNING), and one that no
parse could add to (speech) or read any more (its body streamed or unread) ends then, not when freed.
A background response's raw fetch is recorded when parsed the same way (``on_parse``, ``_background``).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any

from ..._internal import count, guarded_failure
from ...observation import Observation
from . import _background, _extract, _media, _stream
from ._media_stream import stream_state

#: Where a response waiting to be parsed keeps its ``RawTracking`` (in its own ``__dict__``).
_KEY = "_autotrace_raw"
#: Where the SDK's ``with_streaming_response`` context managers keep their response (name-mangled).
_RESPONSE_FIELDS = ("_ResponseContextManager__response", "_AsyncResponseContextManager__response")


class RawTracking:
    """One raw response's observation, ended exactly once: when the caller has parsed the response
    (a stream ends it when the stream ends), or when the response is freed unparsed."""

    __slots__ = ("audio", "choices", "done", "kept", "obs", "operation", "options", "parsed_stream", "stream")

    def __init__(self, obs: Observation, operation: str, stream: bool, choices: int, options: Any = None) -> None:
        self.obs = obs
        self.options = options  # the request's: they name an audio or image call's model
        #: Speech's HTTP response (not the caller's object), measured if it ends unparsed.
        self.audio: Any = None
        self.operation = operation
        self.stream = stream
        self.choices = choices
        self.done = False
        #: The stream ``parse()`` gave, held weakly: its observation ends when the caller's block does.
        self.parsed_stream: weakref.ref[Any] | None = None
        #: The reply a parse helper's post-parser was given (``_Call._keep_reply``), if any.
        self.kept: list[Any] | None = None

    def parsed(self, result: Any) -> Any:
        """Record what ``parse()`` returned and hand it on; never raises."""
        if self.done:
            return result
        self.done = True
        obs = self.obs
        try:
            if self.stream:
                if _stream.track(result, obs, stream_state(self.operation, self.options, False, self.choices)):
                    self.parsed_stream = weakref.ref(result)
                    return result
                count("openai.stream_untracked")  # parsed ``to=`` another type, or a stream class not patched
            elif self.audio is not None:  # speech: ``parse()`` gives bytes; its HTTP response says the rest
                obs.defer(_media.speech_fields, self.audio, _media.requested_model(self.options))
            else:
                obs.defer(_extract.response_fields, self.operation, result, self.options)
                if self.operation == "responses":  # a background response: its reply comes later
                    _background.created(obs, result)
        except Exception as exc:
            guarded_failure("openai.raw_response", exc)
        obs.end()
        return result

    def failed(self, error: BaseException) -> None:
        if not self.done:
            self.done = True
            if self.kept:  # the reply came, a parse helper rejected it: what it said and cost
                self.obs.defer(_extract.response_fields, self.operation, self.kept[0], self.options)
            self.obs.record_error(error)
            self.obs.end()

    def unparsed(self, error: BaseException | None = None) -> None:
        """End, once, without a parse: the caller read the body another way, or not at all;
        ``error`` the interruption that left the caller's block (``patch``)."""
        if self.done:
            return
        self.done = True
        if self.audio is not None:  # speech read with ``read()``/``iter_bytes()``: its kind, and size if read whole
            self.obs.defer(_media.speech_fields, self.audio, _media.requested_model(self.options))
        if error is not None:
            self.obs.record_error(error)
        self.obs.end()

    def __del__(self) -> None:  # never parsed, and freed
        self.unparsed()


def wait_for_parse(response: Any, obs: Observation, operation: str, stream: bool, choices: int,
                   options: Any = None, kept: list[Any] | None = None) -> bool:
    """Have ``obs`` end when the caller parses ``response``; False, with nothing changed, if it
    cannot. ``kept``: where a parse helper's post-parser keeps the reply it is given."""
    if not _parseable(response):
        return False
    found = response.__dict__[_KEY] = RawTracking(obs, operation, stream, choices, options)
    found.kept = kept
    if operation == _media.SPEECH:
        found.audio = getattr(response, "http_response", None)
    return on_parse(response, found.parsed, found.failed)


def _parseable(response: Any) -> bool:
    """Whether ``response``'s ``parse`` can be shadowed on the instance (``on_parse``)."""
    return type(getattr(response, "__dict__", None)) is dict and callable(getattr(type(response), "parse", None))


def on_parse(response: Any, parsed: Callable[[Any], Any], failed: Callable[[BaseException], None]) -> bool:
    """Have the caller's first ``parse()`` of ``response`` hand its result to ``parsed`` (which
    returns what the caller gets, and never raises) and its error to ``failed``; False, with
    nothing changed, if it cannot.

    The response's own ``parse`` is shadowed by one on the instance, for its first call only (then
    removed): no class is patched, so responses autotrace does not wait for take no extra step. It
    holds the response weakly, so a response never parsed is freed at once."""
    if not _parseable(response):
        return False
    fields, parse = response.__dict__, type(response).parse
    owner = weakref.ref(response)

    def call(*args: Any, **kwargs: Any) -> Any:
        instance = owner()
        if instance is not None:
            instance.__dict__.pop("parse", None)  # later calls: the SDK's own (it caches the result)
        try:
            return parse(instance, *args, **kwargs)
        except BaseException as error:
            failed(error)
            raise

    if inspect.iscoroutinefunction(parse):
        async def parse_async(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await call(*args, **kwargs)
            except BaseException as error:
                failed(error)
                raise
            return parsed(result)

        fields["parse"] = parse_async
    else:
        fields["parse"] = lambda *args, **kwargs: parsed(call(*args, **kwargs))
    return True


def patch(patcher: Any) -> None:
    """Have the SDK's ``with_streaming_response`` context managers end, as their block is left,
    the observation of the stream parsed from the response they close (a cancellation or
    ``KeyboardInterrupt`` its status, else interrupted if unread, as a stream closed early), or of
    a response left unparsed: by a cancellation or ``KeyboardInterrupt`` (its status), or with a
    body no later parse can give more of (speech's, as ``stream_to_file`` writes it) or read
    (one the caller streamed or did not read). A body read whole waits for the caller's parse
    (an ``Exception`` leaving the block is the caller's own failure, not the call's)."""
    for target in ("ResponseContextManager.__exit__", "AsyncResponseContextManager.__aexit__"):
        patcher.wrap("openai._response", target, _block_left, optional=True)


def _body_kept(response: Any) -> bool:
    """Whether the caller read ``response``'s whole body into memory (``read()``), so that it can
    still be parsed after the SDK closes the response."""
    return "_content" in getattr(getattr(response, "http_response", None), "__dict__", {})


def _block_left(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``__exit__``/``__aexit__``: the SDK's own, after ending the observation its block leaves."""
    try:
        fields = vars(instance)
        response = next((held for name in _RESPONSE_FIELDS if (held := fields.get(name)) is not None), None)
        found = getattr(response, "__dict__", {}).get(_KEY)
        if found is not None:
            error = args[1] if len(args) > 1 else kwargs.get("exc")
            interrupted = error if error is not None and not isinstance(error, Exception) else None
            stream = found.parsed_stream() if found.parsed_stream is not None else None
            if stream is not None and (tracked := _stream.tracking(stream)) is not None:
                tracked.finish(interrupted, interrupted=interrupted is None)  # the SDK closes its response
            elif interrupted is not None:
                found.unparsed(interrupted)
            elif found.audio is not None or not _body_kept(response):
                found.unparsed()  # speech (a parse adds nothing), or a body no parse can read once closed
    except Exception as exc:
        guarded_failure("openai.raw_response", exc)
    return wrapped(*args, **kwargs)
