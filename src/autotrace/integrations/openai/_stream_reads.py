"""A traced stream's response bytes, watched on their way to the SDK's SSE decoder.

Each read is handed to ``StreamReads.take``: the usage event autotrace asked for is cut out of it
(``_usage_event``), and what the decoder gets is kept, for the stream's output to be read from
it on the pipeline thread once the stream ends (``_sse_fold``). The caller's thread does no more
per chunk than keep a reference to the read that holds it.

What is kept is bounded: past ``_READ_AT_BYTES`` the kept reads are read on the caller's thread
(a long stream then costs it about what reading the SDK's models would), so a span waiting to be
exported holds at most that many bytes of the stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..._internal import guarded_failure
from ._sse_fold import EventFold
from ._usage_event import UsageEventCutter

#: Kept bytes past which they are read at once, on the caller's thread.
_READ_AT_BYTES = 65_536


class StreamReads:
    """The reads of one stream: cut (``cutter``, when autotrace asked for usage) and kept."""

    __slots__ = ("cutter", "fold", "keeping", "kept", "kept_bytes", "text_budget")

    def __init__(self, cut_usage_event: bool, text_budget: int) -> None:
        self.cutter = UsageEventCutter() if cut_usage_event else None
        self.kept: list[bytes] = []
        self.kept_bytes = 0
        #: What the reads said, once some were read on the caller's thread (a long stream).
        self.fold: EventFold | None = None
        self.text_budget = text_budget
        #: False once the kept reads were handed over: reads after that (a caller iterating on
        #: after a ``break`` ended the observation) are only cut.
        self.keeping = True

    def take(self, data: bytes) -> bytes:
        """What the decoder gets of one read (kept as well); never raises."""
        cutter = self.cutter
        if cutter is not None:
            data = cutter.cut(data)
        if data and self.keeping:
            self.kept.append(data)
            self.kept_bytes += len(data)
            if self.kept_bytes > _READ_AT_BYTES:
                self._read_kept()
        return data

    def rest(self) -> bytes:
        """What the cutter held back at the end of the stream (an unfinished event), for the decoder."""
        rest = self.cutter.rest() if self.cutter is not None else b""
        if rest and self.keeping:
            self.kept.append(rest)
        return rest

    def unread(self) -> bytes:
        """The kept bytes not read yet, handed over: the stream has ended, nothing more is kept."""
        self.keeping = False
        return self._take_kept()

    def _take_kept(self) -> bytes:
        kept, self.kept, self.kept_bytes = self.kept, [], 0
        return kept[0] if len(kept) == 1 else b"".join(kept)

    def usage_event(self) -> bytes | None:
        """The usage event's JSON text, if it was cut from the reads."""
        cutter = self.cutter
        return None if cutter is None else cutter.event

    def _read_kept(self) -> None:
        try:
            if self.fold is None:
                self.fold = EventFold(self.text_budget)
            self.fold.feed(self._take_kept())
        except Exception as exc:  # what was kept is lost to the record, never to the caller
            self.kept, self.kept_bytes = [], 0
            guarded_failure("openai.stream_read", exc)


def watch(stream: Any, reads: StreamReads) -> bool:
    """Have ``stream``'s SSE decoder (the SDK's ``Stream._decoder``) read the response's bytes
    through ``reads``; False, with nothing changed, for a stream without one or whose decoder
    lacks the two byte-reading methods (a changed SDK).

    Only the stream's own attribute changes, before anything has been read. The response, an
    object of the HTTP library that its own code reads on every step, is not touched: replacing
    its byte reads instead was slower in place (``benchmarks/README.md``)."""
    decoder = getattr(stream, "_decoder", None)
    if type(decoder) is _WatchedDecoder or not (hasattr(decoder, "iter_bytes") and hasattr(decoder, "aiter_bytes")):
        return False
    try:
        stream._decoder = _WatchedDecoder(decoder, reads)
    except AttributeError:  # no instance attributes
        return False
    return True


class _WatchedDecoder:
    """The SDK's SSE decoder, given the response's reads through ``StreamReads``; anything else is
    the decoder's own."""

    __slots__ = ("_decoder", "_reads")

    def __init__(self, decoder: Any, reads: StreamReads) -> None:
        self._decoder = decoder
        self._reads = reads

    def iter_bytes(self, reads: Iterator[bytes]) -> Any:
        return self._decoder.iter_bytes(watched(reads, self._reads))

    def aiter_bytes(self, reads: AsyncIterator[bytes]) -> Any:
        return self._decoder.aiter_bytes(awatched(reads, self._reads))

    def __getattr__(self, name: str) -> Any:
        if name in _WatchedDecoder.__slots__:  # not set yet (a copy being made): not the decoder's
            raise AttributeError(name)
        return getattr(self._decoder, name)


def watched(reads: Iterator[bytes], watcher: StreamReads) -> Iterator[bytes]:
    """``reads`` as the decoder gets them through ``watcher``."""
    for data in reads:
        data = watcher.take(data)
        if data:
            yield data
    if rest := watcher.rest():
        yield rest


async def awatched(reads: AsyncIterator[bytes], watcher: StreamReads) -> AsyncIterator[bytes]:
    """``watched`` for async reads."""
    async for data in reads:
        data = watcher.take(data)
        if data:
            yield data
    if rest := watcher.rest():
        yield rest
