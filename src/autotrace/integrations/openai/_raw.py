"""Raw responses the caller reads itself: ``with_raw_response`` on a stream, and
``with_streaming_response``. Their body is not read when the request returns, so their
observation waits for the caller's ``parse()``: the parsed response is recorded then, and a
parsed stream is tracked as any other (without usage being asked for: the caller may read its raw
lines, so no chunk of it could be hidden). A response never parsed ends its observation, with what
is known, when it is freed.

A response waiting to be parsed has its ``parse`` shadowed on the instance (``wait_for_parse``);
no class is patched.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any

from ..._internal import count, guarded_failure
from ...observation import Observation
from . import _background, _extract, _media, _stream
from ._media_stream import stream_state


class RawTracking:
    """One raw response's observation, ended exactly once: when the caller has parsed the response
    (a stream ends it when the stream ends), or when the response is freed unparsed."""

    __slots__ = ("audio", "choices", "done", "obs", "operation", "options", "stream")

    def __init__(self, obs: Observation, operation: str, stream: bool, choices: int, options: Any = None) -> None:
        self.obs = obs
        self.options = options  # the request's: they name an audio or image call's model
        #: Speech's HTTP response (not the caller's object), measured if it ends unparsed.
        self.audio: Any = None
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
                if _stream.track(result, obs, stream_state(self.operation, self.options, False, self.choices)):
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
            self.obs.record_error(error)
            self.obs.end()

    def __del__(self) -> None:  # never parsed: the caller read the body another way, or not at all
        if not self.done:
            self.done = True
            if self.audio is not None:  # speech read with ``read()``/``iter_bytes()``: its kind, and size if read whole
                self.obs.defer(_media.speech_fields, self.audio, _media.requested_model(self.options))
            self.obs.end()


def wait_for_parse(response: Any, obs: Observation, operation: str, stream: bool, choices: int,
                   options: Any = None) -> bool:
    """Have ``obs`` end when the caller parses ``response``; False, with nothing changed, if it cannot.

    The response's own ``parse`` is shadowed by one on the instance, for its first call only (then
    removed): no class is patched, so responses autotrace does not wait for take no extra step. It
    holds the response weakly, so a response never parsed is freed, and ends ``obs``, at once."""
    fields = getattr(response, "__dict__", None)
    parse = getattr(type(response), "parse", None)
    if type(fields) is not dict or not callable(parse):
        return False
    found = RawTracking(obs, operation, stream, choices, options)
    if operation == _media.SPEECH:
        found.audio = getattr(response, "http_response", None)
    owner = weakref.ref(response)

    def call(*args: Any, **kwargs: Any) -> Any:
        instance = owner()
        if instance is not None:
            instance.__dict__.pop("parse", None)  # later calls: the SDK's own (it caches the result)
        try:
            return parse(instance, *args, **kwargs)
        except BaseException as error:
            found.failed(error)
            raise

    if inspect.iscoroutinefunction(parse):
        async def parse_async(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await call(*args, **kwargs)
            except BaseException as error:
                found.failed(error)
                raise
            return found.parsed(result)

        fields["parse"] = parse_async
    else:
        fields["parse"] = lambda *args, **kwargs: found.parsed(call(*args, **kwargs))
    return True
