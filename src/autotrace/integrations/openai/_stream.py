"""OpenAI streams, sync and async, traced in place: the caller gets the SDK's own stream object.

The SDK's ``Stream`` and ``AsyncStream`` classes are patched (``patch``), and a stream the
integration traces carries a ``StreamTracking`` in its ``__dict__``. Tracking records the first
token time, accumulates the output cheaply (``StreamState``), captures usage (hiding the
usage-only chunk when autotrace asked for it and the caller did not), and ends the observation
exactly once on every exit path: exhausted, ``break`` (at once: the iteration handed out is in no
reference cycle), ``close()``, ``with``/``async with``, an exception (a stream helper's own
too: a parsed reply it rejects), or abandonment (when the collector frees the SDK's stream,
which is in a reference cycle with its own generator). A reader that leaves once the reply has
finished (at its finish reason, or a stream helper raising on it) has the usage autotrace asked for
read first (``_trailing``).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..._internal import guarded_failure
from ...observation import Observation
from .. import ownership
from ._replayed import with_cause
from ._stream_state import _FOLD_EVERY, StreamState, _is_usage_chunk
from ._trailing import aread_trailing, read_trailing, wait_read
from ._usage_event import usage_event_fields

__all__ = ["OwnedStreamTracking", "StreamState", "StreamTracking", "patch", "track", "trackable", "tracking"]

#: Where a traced stream keeps its ``StreamTracking`` (in the SDK stream's own ``__dict__``).
_KEY = "_autotrace_stream"
#: How a stream's chunks run out.
_ENDS = (StopIteration, StopAsyncIteration)


class StreamTracking:
    """One traced stream: its observation, what it produced, and the ending, exactly once. Kept on
    the SDK's own stream object, so a stream that is dropped unfinished ends when it is freed."""

    __slots__ = ("done", "helped", "obs", "reading", "state")

    def __init__(self, obs: Observation | None, state: StreamState) -> None:
        self.obs = obs  # None only for a subclass recording into no observation (``_background``)
        self.state = state
        self.done = False
        #: Whether a stream helper reads the stream (``_helper_events``): its reading ends the observation.
        self.helped = False
        #: Whether its trailing events are being read (``_trailing``): True, or an async read's
        #: ``anyio.Event``; the reader ends the observation after (an async stream's iteration, left,
        #: is closed meanwhile by the event loop).
        self.reading: Any = False

    def finish(self, error: BaseException | None = None, interrupted: bool = False) -> None:
        """End the observation, once: with ``error``, or ``interrupted`` when the reader stopped
        before the end (``break``, ``close()``, the stream dropped): WARNING, unless the reply had
        finished by then (its finish reason arrived: only trailing events were left unread)."""
        if self.done or (self.reading and error is None):
            return
        self.done = True
        try:
            obs, state = self.obs, self.state
            obs.defer(state.fields, interrupted)
            usage_event = state.cut_usage_event()
            if usage_event is not None:  # bytes: parsed on the pipeline thread
                obs.defer(usage_event_fields, usage_event, state.requested_model(), late=True)
            if error is not None:
                obs.record_error(error)
                if error.__cause__ is not None and (status := with_cause(error)) is not None:
                    obs.record_error(status)  # a connection lost mid-stream: the status says how, as a request's
            obs.end()
        except Exception as exc:
            guarded_failure("openai.stream_finish", exc)

    # a whole iteration runs inside ``with tracking:`` (a class: a generator-based context manager
    # costs several more calls per stream)
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> None:
        self.stop(error)

    def stop(self, error: BaseException | None) -> None:
        """Finish because the stream stopped with ``error``: the end of the chunks; the caller
        leaving the loop (``GeneratorExit``: an interruption, not an error); or a failure."""
        if error is None or isinstance(error, _ENDS):
            self.finish()
        elif isinstance(error, GeneratorExit):
            # else the helper's loop left (``_helper_events`` knows why), or the reader reads on (``_ReadOn``)
            if not (self.helped or isinstance(error, _ReadOn)):
                self.finish(interrupted=True)
        else:
            self.finish(error)

    def __del__(self) -> None:  # the stream was freed without being exhausted or closed
        if not self.done:
            self.finish(interrupted=True)


class OwnedStreamTracking(StreamTracking):
    """A stream whose call a framework's generation owns (``ownership``): when it ends it fills in
    what that generation lacks (returned model, usage, cost, finish reason); the generation, its
    output and its error are the framework's to record."""

    __slots__ = ()

    def finish(self, error: BaseException | None = None, interrupted: bool = False) -> None:
        if self.done or self.reading:  # as ``StreamTracking.finish`` (the error is the owner's)
            return
        self.done = True
        try:
            state = self.state
            fields = state.fields()
            usage_event = state.cut_usage_event()
            if usage_event is not None:  # parsed here, not late: an owner's second reply adds its
                # usage to the first's (``enrich_reply``)
                fields.update(usage_event_fields(usage_event, state.requested_model()))
            ownership.enrich_reply(self.obs, fields)
        except Exception as exc:
            guarded_failure("openai.stream_finish", exc)


def track(stream: Any, obs: Observation | None, state: StreamState,
          kind: type[StreamTracking] | None = None) -> bool:
    """Have ``stream`` (an SDK ``Stream``/``AsyncStream``, handed back to the caller as it is)
    record into ``obs`` (``kind``: ``OwnedStreamTracking`` for an owner's; by default the state's
    ``tracking``, or ``StreamTracking``); False, with nothing changed, if it cannot be tracked."""
    fields = getattr(stream, "__dict__", None)
    if type(fields) is not dict or not isinstance(stream, _TRACKABLE):
        return False
    fields[_KEY] = (kind or state.tracking or StreamTracking)(obs, state)
    return True


def trackable() -> bool:
    """Whether streams can be tracked (the SDK's stream classes are patched)."""
    return bool(_TRACKABLE)


def tracking(stream: Any) -> StreamTracking | None:
    """The tracking of a traced stream, None for any other (never raises)."""
    fields = getattr(stream, "__dict__", None)
    return fields.get(_KEY) if type(fields) is dict else None


#: The stream classes whose methods are patched (``patch``); only their instances are tracked.
_TRACKABLE: tuple[type, ...] = ()


def patch(patcher: Any) -> None:
    """Patch the SDK's ``Stream`` and ``AsyncStream`` so their traced instances record themselves.

    A class-level patch, not a proxy: the caller gets the SDK's own stream object. Untraced
    streams take the SDK's own code at the cost of one dictionary lookup. When the SDK's
    ``__iter__``/``__aiter__`` is its own pass-through (a generator over ``self._iterator`` and
    nothing else), a traced iteration replaces that layer instead of adding one. A class whose
    methods cannot all be patched (a changed SDK) leaves no stream tracked: their observations
    end when the call returns, without the output, and usage is not asked for (``trackable``)."""
    global _TRACKABLE
    from openai import _streaming

    trackable = []
    for cls, iterate, iter_name, next_name, step in (
            (_streaming.Stream, _iterate, "__iter__", "__next__", _next),
            (_streaming.AsyncStream, _aiterate, "__aiter__", "__anext__", _anext)):
        direct = _passes_through(cls.__dict__.get(iter_name))
        target = f"{cls.__name__}.%s"
        patched = [patcher.wrap("openai._streaming", target % iter_name, _iter_wrapper(iterate, direct)),
                   patcher.wrap("openai._streaming", target % next_name, step),
                   patcher.wrap("openai._streaming", target % "close", _close)]
        if all(patched):
            trackable.append(cls)
    _TRACKABLE = tuple(trackable) if len(trackable) == 2 else ()  # both kinds, or neither
    # the SDK's stream helpers (``client.chat.completions.stream(...)``) close the response, not
    # the stream they read: their observation ends with them too (not when the collector runs);
    # and they raise errors of their own (a parsed reply cut short, filtered, failing its schema)
    for module, helper, events in (("openai.lib.streaming.chat._completions", "ChatCompletionStream", _helper_events),
                                   ("openai.lib.streaming.chat._completions", "AsyncChatCompletionStream",
                                    _ahelper_events),
                                   ("openai.lib.streaming.responses._responses", "ResponseStream", _helper_events),
                                   ("openai.lib.streaming.responses._responses", "AsyncResponseStream",
                                    _ahelper_events)):
        patcher.wrap(module, f"{helper}.close", _helper_close, optional=True)
        patcher.wrap(module, f"{helper}.__stream__", _helper_stream(events), optional=True)


def _passes_through(function: Any) -> bool:
    """Whether ``function`` is a generator (or async generator) that reads ``_iterator`` and nothing else."""
    code = getattr(function, "__code__", None)
    return (code is not None and code.co_names == ("_iterator",)
            and bool(code.co_flags & (inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR)))


def _iter_wrapper(iterate: Any, direct: bool) -> Any:
    """The ``__iter__``/``__aiter__`` wrapper: ``iterate`` around the SDK's chunks for a traced
    stream (its ``_iterator`` itself when ``direct``), the SDK's own iteration for any other."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        found = tracking(instance)
        if found is None:
            return wrapped(*args, **kwargs)
        source = instance.__dict__.get("_iterator") if direct else None  # tracked: it has a __dict__
        return iterate(wrapped(*args, **kwargs) if source is None else source, found, instance)

    return wrapper


def _iterate(chunks: Iterator[Any], tracking: StreamTracking, stream: Any) -> Iterator[Any]:
    state = tracking.state
    with tracking:
        try:
            for chunk in chunks:  # until the first token, ``take`` looks at every chunk
                if state.take(chunk):
                    yield chunk
                if state.first_token_ns is not None:
                    break
            kept, hide = state.chunks, state.hide_usage_chunk
            room = _FOLD_EVERY - len(kept)  # chunks kept before the next fold (``fold`` empties ``kept``)
            for chunk in chunks:  # then only keeps it: no call per chunk (``take`` without the token check)
                kept.append(chunk)
                room -= 1
                if room <= 0:
                    state.fold()
                    room = _FOLD_EVERY
                if not (hide and getattr(chunk, "usage", None) is not None and _is_usage_chunk(chunk)):
                    yield chunk
        except GeneratorExit:  # the reader left (``break``, a stream helper's error): the usage may follow
            read_trailing(chunks, tracking, stream)
            raise


async def _aiterate(chunks: AsyncIterator[Any], tracking: StreamTracking, stream: Any) -> AsyncIterator[Any]:
    if tracking.reading:  # an iteration its reader left reads the trailing events: after them
        await wait_read(tracking)
    state = tracking.state
    with tracking:  # as ``_iterate``
        try:
            async for chunk in chunks:
                if state.take(chunk):
                    yield chunk
                if state.first_token_ns is not None:
                    break
            kept, hide = state.chunks, state.hide_usage_chunk
            room = _FOLD_EVERY - len(kept)
            async for chunk in chunks:
                kept.append(chunk)
                room -= 1
                if room <= 0:
                    state.fold()
                    room = _FOLD_EVERY
                if not (hide and getattr(chunk, "usage", None) is not None and _is_usage_chunk(chunk)):
                    yield chunk
        except GeneratorExit:  # closed (``aclose``) once its reader left
            if getattr(_source(stream), "ag_running", False):  # read meanwhile: ``_ReadOn``
                raise _ReadOn from None
            await aread_trailing(chunks, tracking)
            raise


class _ReadOn(GeneratorExit):
    """An async stream's iteration its reader left is closed by the event loop a turn later, in a
    task of its own: by then the reader may read on (a new loop, ``anext``), inside the SDK's
    chunks. That read ends the observation, with the usage it meets; the iteration left reads
    nothing (the chunks cannot be read twice at once) and ends nothing."""


def _next(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``Stream.__next__``: the next chunk the caller may see, ending the observation with the stream."""
    found = tracking(instance)
    if found is None:
        return wrapped(*args, **kwargs)
    while True:
        try:
            chunk = wrapped(*args, **kwargs)
        except BaseException as error:
            found.stop(error)
            raise
        if found.state.take(chunk):
            return chunk


def _anext(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``AsyncStream.__anext__``, as ``_next``."""
    found = tracking(instance)
    if found is None:
        return wrapped(*args, **kwargs)
    return _anext_traced(wrapped, args, kwargs, found)


async def _anext_traced(wrapped: Any, args: Any, kwargs: Any, found: StreamTracking) -> Any:
    if found.reading:  # as ``_aiterate``
        await wait_read(found)
    while True:
        try:
            chunk = await wrapped(*args, **kwargs)
        except BaseException as error:
            found.stop(error)
            raise
        if found.state.take(chunk):
            return chunk


def _close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``close`` of either class (``with``, ``async with`` and ``aclose`` go through it): the
    observation ends once the SDK has closed the response."""
    found = tracking(instance)
    if found is None:
        return wrapped(*args, **kwargs)
    return _closed(wrapped, args, kwargs, found, instance)


def _helper_close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``close`` of a stream helper, which closes the response of the stream it reads: as ``_close``."""
    raw_stream = getattr(instance, "_raw_stream", None)
    found = tracking(raw_stream)
    if found is None:
        return wrapped(*args, **kwargs)
    return _closed(wrapped, args, kwargs, found, raw_stream)


def _helper_stream(events: Any) -> Any:
    """The wrapper of a stream helper's ``__stream__`` (the events of all its reads: ``for``,
    ``until_done``, ``get_final_*``): its traced stream's observation records an error the helper
    raises itself (``LengthFinishReasonError``, a parsed reply's ``ValidationError`` ...), which
    the stream it reads never sees (an error of that stream has ended the observation already)."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        raw_stream = getattr(instance, "_raw_stream", None)
        found = tracking(raw_stream)
        return wrapped(*args, **kwargs) if found is None else events(wrapped(*args, **kwargs), found, raw_stream)

    return wrapper


def _helper_events(events: Iterator[Any], found: StreamTracking, raw_stream: Any) -> Iterator[Any]:
    """A helper's events: the observation ends with the helper's error (its loop over the stream
    it reads is left as the error passes: ``helped``), or interrupted if the helper stops early.
    (``raw_stream``, the stream it reads, is for the async helper's: a sync loop's trailing events
    are read as it is left, ``_iterate``.)"""
    found.helped = True
    try:
        yield from events
    except Exception as error:
        found.finish(error)
        raise
    finally:
        found.finish(interrupted=True)  # nothing if the stream ended


async def _ahelper_events(events: AsyncIterator[Any], found: StreamTracking, raw_stream: Any) -> AsyncIterator[Any]:
    found.helped = True
    try:
        async for event in events:
            yield event
    except Exception as error:
        try:  # its loop over the stream it reads is left as it raises: the usage may follow
            await aread_trailing(_source(raw_stream), found)
        finally:
            found.finish(error)
        raise
    except GeneratorExit:  # closed by its reader: the helper's own events closed now, as ``yield from`` does
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
        raise
    finally:
        found.finish(interrupted=True)


def _closed(wrapped: Any, args: Any, kwargs: Any, found: StreamTracking, stream: Any) -> Any:
    source = None if found.done else _source(stream)
    if isinstance(source, Iterator):  # a sync stream: the usage may follow the reply the reader left
        read_trailing(source, found, stream)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException:
        found.finish(interrupted=True)
        raise
    if inspect.isawaitable(result):  # AsyncStream.close is a coroutine
        return _after(result, found, source)
    found.finish(interrupted=True)  # a stream read to its end has finished already
    return result


async def _after(awaitable: Any, found: StreamTracking, source: Any) -> Any:
    try:
        try:  # the usage may follow the reply the reader left (``_trailing``)
            await aread_trailing(source, found)
        finally:
            result = await awaitable  # the SDK's close, whatever happened
        return result
    finally:
        found.finish(interrupted=True)


def _source(stream: Any) -> Any:
    """The SDK stream's own chunks (its ``_iterator``), None if it has none."""
    return getattr(stream, "__dict__", _NO_FIELDS).get("_iterator")


_NO_FIELDS: dict[str, Any] = {}
