"""Taking the usage event autotrace asked for out of a stream's bytes, before the SDK decodes it.

With ``stream_options.include_usage`` the server ends a chat stream with one more event: no
choices, only usage. The SDK would decode and validate it like any chunk (about 0.6 million
instructions, as much as everything autotrace does for a stream), and the caller must not see it
anyway. So the response's byte reads are watched for it, on their way to the SDK's SSE decoder,
and the event is cut out, its text kept for the observation. The text is parsed on the pipeline
thread (``usage_event_fields``), not between the caller's chunks.

The reads reach the decoder as whole events: a read's unfinished last event waits for the rest of
its bytes (the decoder could not hand it on before its blank line anyway), so an event split
across reads is seen whole.

Which event is the usage event is read from its bytes: a single ``data:`` line holding a JSON
object whose only ``"choices":`` key is an empty list and whose only ``"usage":`` key is an
object. Such a key cannot be inside a JSON string (its quotes would be escaped), and a chunk's
choices are at its top level, so that is the event the stream tracking would otherwise hide (usage,
no choices). Its text is kept only: if it then does not parse, the observation has no usage and
the loss is counted; the caller, who never asked for the event, sees the same chunks either way.

Anything less certain is left alone: a chunk that has choices as well as usage, a usage event
with another event after it in the same read, one over 16 KiB (its text would wait with the span),
other line endings. The SDK then decodes the event and the stream tracking hides the chunk, as it
would without this module.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..._internal import count, guarded_failure
from . import _extract, pricing

_CHOICES = b'"choices":'
#: How a usage-only event's empty choices go on after ``"choices":`` (compact, or with a space).
_EMPTY = (b"[]", b" []")
_USAGE = b'"usage":'
#: How the usage object starts after ``"usage":``.
_OBJECT = (b"{", b" {")
_END = b"\n\n"
_DATA = b"data: "
#: The longest unfinished event waited for; past it, reads go on to the decoder as they come.
_MAX_PENDING_BYTES = 65_536
#: Parses a usage event's text (UTF-8: a ``data:`` line starting with ``{``, so no byte order mark).
_DECODER = json.JSONDecoder()
#: The longest usage event kept for the pipeline thread (a real one is under a kilobyte): a
#: waiting span holds its text, so a longer one is left to the SDK, which decodes it at once.
_MAX_EVENT_BYTES = 16_384


class UsageEventCutter:
    """Cuts the usage-only event out of the reads of one stream; ``event`` is its JSON text."""

    __slots__ = ("event", "pending", "whole")

    def __init__(self) -> None:
        self.event: bytes | None = None
        #: The start of an event whose end has not been read yet.
        self.pending = b""
        #: Whether reads are still handed on as whole events (else as they come).
        self.whole = True

    def cut(self, data: bytes) -> bytes:
        """The whole events read so far, without the usage-only event; never raises. It runs for
        every read (a read per event, on a live stream): the usage event is the stream's last, so
        only a read's last ``"choices":`` can be its own, and one backward search finds it."""
        if not self.whole:
            return data
        if self.pending:
            data, self.pending = self.pending + data, b""
        try:
            return self._whole_events(data)
        except Exception as exc:
            guarded_failure("openai.usage_event", exc)
            return self.give_up(data)

    def rest(self) -> bytes:
        """What is left unread at the end of the stream (an unfinished event), for the decoder."""
        rest, self.pending = self.pending, b""
        return rest

    def give_up(self, data: bytes) -> bytes:
        """Hand ``data`` (all that was held back included) and every later read on as they come."""
        self.whole, self.pending = False, b""
        return data

    def _whole_events(self, data: bytes) -> bytes:
        if b"\r" in data:  # other line endings than the API's: every event is left to the SDK
            return self.give_up(data)
        last = data.rfind(_END)
        end = last + len(_END) if last != -1 else 0
        if end < len(data):  # the last event goes on in the next read
            if len(data) - end > _MAX_PENDING_BYTES:
                return self.give_up(data)
            data, self.pending = data[:end], data[end:]
        if not data:
            return data
        if self.event is None:
            found = data.rfind(_CHOICES)
            if found != -1 and data.startswith(_EMPTY, found + len(_CHOICES)):
                return self._cut(data, found)
        return data

    def _cut(self, data: bytes, found: int) -> bytes:
        """``data`` (whole events) without the event around ``found``, if it is a usage-only event."""
        start = data.rfind(_END, 0, found)
        start = start + len(_END) if start != -1 else 0
        end = data.find(_END, found)
        event = _usage_only(data[start:end])
        if event is None:
            return data
        self.event = event
        return data[:start] + data[end + len(_END):]


def _usage_only(event: bytes) -> bytes | None:
    """The JSON text of a single-line ``data:`` event that is a usage-only chunk, else None: an
    object whose only ``"choices":`` key is an empty list and whose only ``"usage":`` key is an
    object, and no longer than ``_MAX_EVENT_BYTES`` (byte searches only; the text is parsed
    later, by ``usage_event_fields``)."""
    if len(event) > _MAX_EVENT_BYTES or not event.startswith(_DATA) or b"\n" in event or b"\r" in event:
        return None
    text = event[len(_DATA):]
    if not (text.startswith(b"{") and text.endswith(b"}")):
        return None
    choices, usage = text.find(_CHOICES), text.find(_USAGE)
    if choices == -1 or usage == -1 or text.count(_CHOICES) != 1 or text.count(_USAGE) != 1:
        return None
    if not (text.startswith(_EMPTY, choices + len(_CHOICES)) and text.startswith(_OBJECT, usage + len(_USAGE))):
        return None
    return text


def usage_event_fields(event: bytes, requested_model: str | None = None) -> dict[str, Any]:
    """Usage and cost from a usage event's JSON text (on the pipeline thread), priced as the model
    it names, else (a compatible server's event may name none) as ``requested_model``; no fields
    if it does not parse (counted as ``openai.usage_event_unreadable``)."""
    try:
        payload = _DECODER.decode(event.decode("utf-8", "surrogatepass"))  # ``json.loads``, less its steps for bytes
        usage = _extract.usage_fields(payload["usage"])
    except (ValueError, TypeError, KeyError, AttributeError):
        count("openai.usage_event_unreadable")
        return {}
    model = payload.get("model") or requested_model
    return {"usage": usage, "cost": pricing.cost(model if isinstance(model, str) else None, usage,
                                                 payload.get("service_tier"))}


def watch(stream: Any, cutter: UsageEventCutter) -> None:
    """Have ``stream``'s SSE decoder (the SDK's ``Stream._decoder``) read the response's bytes
    through ``cutter``. A stream without one, or whose decoder lacks the two byte-reading
    methods, is left alone: nothing is cut and the stream tracking hides the usage chunk instead.

    Only the stream's own attribute changes, before anything has been read. The response, an
    object of the HTTP library that its own code reads on every step, is not touched: replacing
    its byte reads instead was slower in place (``benchmarks/README.md``)."""
    decoder = getattr(stream, "_decoder", None)
    if type(decoder) is _CuttingDecoder or not (hasattr(decoder, "iter_bytes") and hasattr(decoder, "aiter_bytes")):
        return
    try:
        stream._decoder = _CuttingDecoder(decoder, cutter)
    except AttributeError:  # no instance attributes: nothing is cut
        pass


class _CuttingDecoder:
    """The SDK's SSE decoder, given the response's reads with the usage event cut out; anything
    else is the decoder's own."""

    __slots__ = ("_cutter", "_decoder")

    def __init__(self, decoder: Any, cutter: UsageEventCutter) -> None:
        self._decoder = decoder
        self._cutter = cutter

    def iter_bytes(self, reads: Iterator[bytes]) -> Any:
        return self._decoder.iter_bytes(_cut_reads(reads, self._cutter))

    def aiter_bytes(self, reads: AsyncIterator[bytes]) -> Any:
        return self._decoder.aiter_bytes(_acut_reads(reads, self._cutter))

    def __getattr__(self, name: str) -> Any:
        if name in _CuttingDecoder.__slots__:  # not set yet (a copy being made): not the decoder's
            raise AttributeError(name)
        return getattr(self._decoder, name)


def _cut_reads(reads: Iterator[bytes], cutter: UsageEventCutter) -> Iterator[bytes]:
    for data in reads:
        data = cutter.cut(data)
        if data:
            yield data
    if rest := cutter.rest():
        yield rest


async def _acut_reads(reads: AsyncIterator[bytes], cutter: UsageEventCutter) -> AsyncIterator[bytes]:
    async for data in reads:
        data = cutter.cut(data)
        if data:
            yield data
    if rest := cutter.rest():
        yield rest
