"""Streamed LlamaIndex generations: the call returns a generator, and its generation stays open until
that stream ends, fails or is closed or dropped unfinished (then interrupted, with the text it gave). A ``CustomLLM``'s
``astream_*`` iterates its ``stream_*`` lazily, outside its own span: that ``stream_*`` is
recognised (same LLM, same input object) and not recorded a second time; nor is an LLM call a
stream makes while it is read (a ``StructuredLLM``'s stream reading its LLM's).
"""

from __future__ import annotations

import inspect
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ... import bounds
from ..._internal import guarded_failure
from ...observation import STREAM_CLOSED, Observation, ObservationType
from ...runtime import state
from .. import ownership
from ._fields import llm_input, method_of, streamed_output
from ._usage import usage


class Stream:
    """A streamed generation whose call has returned, until its stream ends, fails or is dropped."""

    __slots__ = ("delegate", "deltas", "owning", "ref")

    def __init__(self, delegate: tuple[int, str, int] | None) -> None:
        self.deltas: list[str] = []  # the text so far, held only to the value limit
        self.delegate = delegate  # the key in ``delegates`` while that is unclaimed
        self.ref: weakref.ref[Any] | None = None  # the stream; freed unfinished, it ends the generation
        self.owning: Any = None  # while the stream runs, its model call is this generation's


class StreamFollower:
    """The streaming half of the LlamaIndex tracker, which provides ``open`` (LlamaIndex span id ->
    open observation) and ``_bound``."""

    open: OrderedDict[str, tuple[Observation, Any]]
    streams: OrderedDict[str, Stream]  # streamed generation (also in ``open``) -> its state
    #: (LLM id, ``stream_*`` method, input id) -> the ``astream_*`` generation it would duplicate
    delegates: OrderedDict[tuple[int, str, int], str]
    _bound: Callable[[OrderedDict[Any, Any]], None]

    def _follow(self, id_: str, stream: Any, instance: Any, arguments: dict[str, Any]) -> None:
        """Keep the generation open until ``stream`` ends, fails or is freed unfinished."""
        method = method_of(id_)
        delegate = None
        if inspect.isasyncgen(stream) and method.startswith("astream_"):
            delegate = (id(instance), method[1:], id(llm_input(method, arguments)))
            self.delegates[delegate] = id_
            self._bound(self.delegates)
        tracked = self.streams[id_] = Stream(delegate)
        self._bound(self.streams)
        tracked.ref = weakref.ref(stream, lambda _: self._dropped(id_))
        entry = self.open.get(id_)
        if entry is not None:  # an LLM that starts its model call inside the stream (OpenAI's)
            tracked.owning = ownership.own_while_running(stream, entry[0])

    def _running_stream(self) -> str | None:
        """The streamed generation whose stream is running the LLM call starting now, if any: the same
        model call (a ``StructuredLLM``'s ``stream_chat`` reads its LLM's stream, started lazily, under
        no LlamaIndex span of its own)."""
        found = ownership.owner(ObservationType.GENERATION)
        if not isinstance(found, Observation):
            return None
        return next((id_ for id_ in tuple(self.streams) if self.open.get(id_, (None,))[0] is found), None)

    def _dropped(self, id_: str) -> None:
        try:
            self._end_stream(id_, interrupted=True)
        except Exception as exc:
            guarded_failure("llama_index.stream_dropped", exc)

    def _end_stream(self, id_: str, response: Any = None, error: BaseException | None = None,
                    interrupted: bool = False) -> None:
        """End a streamed generation with the text it gave (``response``: its last chunk, if it
        ended). A stream its reader closed (GeneratorExit) or dropped (``interrupted``) before its
        end is interrupted: WARNING; any other error is recorded."""
        tracked = self.streams.pop(id_, None)
        entry = self.open.pop(id_, None)
        if tracked is not None:
            ownership.released(tracked.owning)
        if tracked is None or entry is None:
            return
        if tracked.delegate is not None and self.delegates.get(tracked.delegate) == id_:
            del self.delegates[tracked.delegate]
        obs = entry[0]
        try:
            text = "".join(tracked.deltas)  # what the caller received
            if error is None or text:
                obs.update(output=streamed_output(method_of(id_), text, response))
            if interrupted or isinstance(error, GeneratorExit):
                obs.set_level("WARNING", STREAM_CLOSED)
            elif error is not None:
                obs.record_error(error)
            ownership.enrich(obs, usage=usage(response))  # a model call it owns gave exact usage
        finally:  # what cannot be recorded still ends it
            obs.end()

    def event(self, event: Any) -> None:
        id_ = getattr(event, "span_id", None) or ""
        tracked = self.streams.get(id_)
        if tracked is None:
            return  # not a stream: the span's exit records the result
        kind = type(event).__name__
        if kind in ("LLMChatInProgressEvent", "LLMCompletionInProgressEvent"):
            entry = self.open.get(id_)
            if entry is not None:
                entry[0].mark_first_token()
            delta = getattr(event.response, "delta", None)
            if isinstance(delta, str):  # a long stream's text is held only to the value limit
                bounds.keep_piece(tracked.deltas, delta, state.max_value_bytes)
        elif kind in ("LLMChatEndEvent", "LLMCompletionEndEvent"):
            self._end_stream(id_, response=event.response)
        elif kind == "ExceptionEvent":  # the stream failed, or the caller closed it (GeneratorExit)
            self._end_stream(id_, error=event.exception)
