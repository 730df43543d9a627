"""OpenAI streams, sync and async, traced in place: the caller gets the SDK's own stream object.

The SDK's ``Stream`` and ``AsyncStream`` classes are patched (``patch``), and a stream the
integration traces carries a ``StreamTracking`` in its ``__dict__``. Tracking records the first
token time, keeps the stream's reads for its output and usage to be read on the pipeline thread
(``_stream_reads``, ``_sse_fold``), hides the usage-only chunk when autotrace asked for it and the
caller did not, and ends the observation exactly once on every
exit path: exhausted, ``break`` (at once: the iteration handed out is in no reference cycle),
``close()``, ``with``/``async with``, an exception, or abandonment (when the collector frees the
SDK's stream, which is in a reference cycle with its own generator).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..._internal import guarded_failure
from ...observation import Observation
from ...runtime import state as runtime
from ._sse_fold import EventFold, stream_fields
from ._stream_reads import StreamReads, watch
from ._usage_event import usage_event_fields

#: Chunks kept before they are read in one go, when the reads cannot be watched.
_READ_EVERY = 64


class StreamState:
    """What the caller's thread keeps of a stream: the first token's time, and the stream's reads
    (``StreamReads``), whose output is read on the pipeline thread once the stream ends. Per
    chunk it only checks whether the caller may see it, until the first token also whether it is
    one. If the reads cannot be watched (a changed SDK), the chunks are kept and read instead."""

    __slots__ = ("chunk_fold", "chunks", "first_token_ns", "hide_usage_chunk", "operation", "reads")

    def __init__(self, operation: str, hide_usage_chunk: bool) -> None:
        self.operation = operation
        self.hide_usage_chunk = hide_usage_chunk
        self.first_token_ns: int | None = None
        self.reads: StreamReads | None = None
        #: Only when the reads cannot be watched: the chunks kept, and what they said so far.
        self.chunks: list[Any] | None = None
        self.chunk_fold: EventFold | None = None

    def watch_reads(self, stream: Any, cut_usage_event: bool) -> None:
        """Keep ``stream``'s reads (cutting the usage event autotrace asked for); else its chunks."""
        reads = StreamReads(cut_usage_event, runtime.max_value_bytes)
        if watch(stream, reads):
            self.reads = reads
        else:
            self.chunks = []

    def take(self, chunk: Any) -> bool:
        """Look at one chunk (each until the first token; each pulled with ``next``); False if the
        caller must not see it (the usage chunk autotrace asked for). Never raises: a chunk
        autotrace cannot read still reaches the caller."""
        try:
            if self.first_token_ns is None and self._is_token(chunk):
                self.first_token_ns = time.time_ns()
            if self.chunks is not None:
                self.keep(chunk)
            return not (self.hide_usage_chunk and _is_usage_chunk(chunk))
        except Exception as exc:
            guarded_failure("openai.stream_chunk", exc)
            return True

    def _is_token(self, chunk: Any) -> bool:
        if self.operation == "responses":
            return getattr(chunk, "type", "") == "response.output_text.delta"
        choices = chunk.choices
        if not choices:
            return False
        if self.operation == "text_completion":
            return bool(choices[0].text)
        delta = choices[0].delta
        return delta is not None and bool(delta.content or delta.tool_calls)

    def keep(self, chunk: Any) -> None:
        """Keep a chunk (only when the reads cannot be watched), reading them in batches."""
        chunks = self.chunks
        chunks.append(chunk)  # type: ignore[union-attr]
        if len(chunks) >= _READ_EVERY:  # type: ignore[arg-type]
            self._read_chunks()

    def _read_chunks(self) -> None:
        chunks, self.chunks = self.chunks or [], []
        try:
            if self.chunk_fold is None:
                self.chunk_fold = EventFold(runtime.max_value_bytes)
            self.chunk_fold.feed_events([chunk.model_dump() for chunk in chunks])
        except Exception as exc:
            guarded_failure("openai.stream_fold", exc)

    def _chunk_fields(self) -> dict[str, Any]:
        self._read_chunks()
        return self.chunk_fold.fields(self.operation) if self.chunk_fold is not None else {}

    def record(self, obs: Observation) -> None:
        """Have ``obs`` record what the stream said: read on the pipeline thread from the kept
        reads (the cut usage event first, so its usage wins over any chunk's running count), or
        from the kept chunks on this thread."""
        reads = self.reads
        if reads is not None:
            usage_event = reads.usage_event()
            if usage_event is not None:
                obs.defer(usage_event_fields, usage_event, late=True)
            obs.defer(stream_fields, self.operation, reads.fold, reads.unread(), reads.text_budget, late=True)
        elif self.chunks is not None:
            obs.defer(self._chunk_fields)
        obs.update(completion_start_time=self.first_token_ns)


def _is_usage_chunk(chunk: Any) -> bool:
    """Whether ``chunk`` is a usage-only chunk (usage, no choices); never raises."""
    return getattr(chunk, "usage", None) is not None and not getattr(chunk, "choices", True)


#: Where a traced stream keeps its ``StreamTracking`` (in the SDK stream's own ``__dict__``).
_KEY = "_autotrace_stream"


class StreamTracking:
    """One traced stream: its observation, what it produced, and the ending, exactly once. Kept on
    the SDK's own stream object, so a stream that is dropped unfinished ends when it is freed."""

    __slots__ = ("done", "obs", "state")

    def __init__(self, obs: Observation, state: StreamState) -> None:
        self.obs = obs
        self.state = state
        self.done = False

    def finish(self, error: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        try:
            obs = self.obs
            self.state.record(obs)
            if error is not None:
                obs.record_error(error)
            obs.end()
        except Exception as exc:
            guarded_failure("openai.stream_finish", exc)

    # a whole iteration runs inside ``with tracking:`` (a class: a generator-based context manager
    # costs several more calls per stream)
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> None:
        # GeneratorExit: the caller stopped early (break, close), which is not an error
        self.finish(None if kind is None or kind is GeneratorExit else error)

    def __del__(self) -> None:  # the stream was freed without being exhausted or closed
        self.finish()


def track(stream: Any, obs: Observation, state: StreamState) -> bool:
    """Have ``stream`` (an SDK ``Stream``/``AsyncStream``, handed back to the caller as it is)
    record into ``obs``; False, with nothing changed, if it cannot be tracked."""
    fields = getattr(stream, "__dict__", None)
    if type(fields) is not dict or not isinstance(stream, _TRACKABLE):
        return False
    fields[_KEY] = StreamTracking(obs, state)
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


def _passes_through(function: Any) -> bool:
    code = getattr(function, "__code__", None)
    return (code is not None and code.co_names == ("_iterator",)
            and bool(code.co_flags & (inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR)))


def _iter_wrapper(iterate: Any, direct: bool) -> Any:
    """The ``__iter__``/``__aiter__`` wrapper: ``iterate`` around the SDK's chunks for a traced
    stream (its ``_iterator`` itself when ``direct``), the SDK's own iteration for any other."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        fields = getattr(instance, "__dict__", None)
        found = fields.get(_KEY) if type(fields) is dict else None
        if found is None:
            return wrapped(*args, **kwargs)
        source = fields.get("_iterator") if direct else None
        return iterate(wrapped(*args, **kwargs) if source is None else source, found)

    return wrapper


def _iterate(chunks: Iterator[Any], tracking: StreamTracking) -> Iterator[Any]:
    state = tracking.state
    with tracking:
        for chunk in chunks:  # until the first token, ``take`` looks at every chunk
            if state.take(chunk):
                yield chunk
            if state.first_token_ns is not None:
                break
        keeping, hide = state.chunks is not None, state.hide_usage_chunk
        if not (keeping or hide):
            yield from chunks  # nothing left to look at
            return
        for chunk in chunks:  # then only whether the caller may see it (no call per chunk)
            if keeping:
                state.keep(chunk)
            if not (hide and getattr(chunk, "usage", None) is not None and _is_usage_chunk(chunk)):
                yield chunk


async def _aiterate(chunks: AsyncIterator[Any], tracking: StreamTracking) -> AsyncIterator[Any]:
    state = tracking.state
    with tracking:  # as ``_iterate`` (an async generator cannot delegate with ``yield from``)
        async for chunk in chunks:
            if state.take(chunk):
                yield chunk
            if state.first_token_ns is not None:
                break
        keeping, hide = state.chunks is not None, state.hide_usage_chunk
        async for chunk in chunks:
            if keeping:
                state.keep(chunk)
            if not (hide and getattr(chunk, "usage", None) is not None and _is_usage_chunk(chunk)):
                yield chunk


def _next(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``Stream.__next__``: the next chunk the caller may see, ending the observation with the stream."""
    found = tracking(instance)
    if found is None:
        return wrapped(*args, **kwargs)
    while True:
        try:
            chunk = wrapped(*args, **kwargs)
        except StopIteration:
            found.finish()
            raise
        except BaseException as error:
            found.finish(error)
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
    while True:
        try:
            chunk = await wrapped(*args, **kwargs)
        except StopAsyncIteration:
            found.finish()
            raise
        except BaseException as error:
            found.finish(error)
            raise
        if found.state.take(chunk):
            return chunk


def _close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``close`` of either class (``with``, ``async with`` and ``aclose`` go through it): the
    observation ends once the SDK has closed the response."""
    found = tracking(instance)
    if found is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException:
        found.finish()
        raise
    if inspect.isawaitable(result):  # AsyncStream.close is a coroutine
        return _after(result, found)
    found.finish()
    return result


async def _after(awaitable: Any, found: StreamTracking) -> Any:
    try:
        return await awaitable
    finally:
        found.finish()
