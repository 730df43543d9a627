"""Reading a stream's output from the SSE bytes its decoder was handed, on the pipeline thread.

The caller's thread only keeps the bytes (``_stream_reads``); this module parses them once the
stream has ended: the output text, tool calls, model, finish reason and usage of a chat or
legacy completion stream, and the final response of a Responses API stream. The SDK parses the
same bytes into its models for the caller; reading them again here, as plain JSON, costs the
pipeline thread less than reading the SDK's models costs the caller's (``benchmarks/README.md``).

Events follow the SSE format: lines ending in ``\\n``, ``\\r\\n`` or ``\\r``, an event per blank
line, its ``data:`` lines joined by ``\\n``. An event that is not JSON is skipped and counted.
"""

from __future__ import annotations

import json
from typing import Any

from ..._internal import count
from . import _extract, pricing

_DONE = b"[DONE]"
#: Responses API events that carry the final response.
_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class EventFold:
    """What a stream's events said so far, read in batches of whole events (``feed``)."""

    __slots__ = ("finish_reason", "model", "response", "tail", "text", "text_budget", "tool_calls", "usage")

    def __init__(self, text_budget: int) -> None:
        self.model: str | None = None
        self.usage: Any = None
        self.finish_reason: str | None = None
        self.text: list[str] = []
        #: Characters of output text still kept (the rest would be cut at export anyway).
        self.text_budget = text_budget
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.response: Any = None
        #: The start of an event whose end has not been fed yet.
        self.tail = b""

    def feed(self, data: bytes) -> None:
        """Read the whole events in ``tail + data``; an unfinished last one waits for the next feed."""
        data = self.tail + data if self.tail else data
        held = b""
        if b"\r" in data:
            if data.endswith(b"\r"):  # its ``\n`` may start the next feed
                data, held = data[:-1], b"\r"
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = data.rfind(b"\n\n")
        if end == -1:
            self.tail = data + held
            return
        self.tail = data[end + 2:] + held
        self.feed_events(_parse(_payloads(data[:end])))

    def feed_events(self, events: list[Any]) -> None:
        """Fold parsed events (JSON objects) into what the stream said."""
        for event in events:
            if type(event) is not dict:
                continue
            if self.model is None and isinstance(model := event.get("model"), str) and model:
                self.model = model  # the first model named (Azure's content-filter chunk names none)
            if (usage := event.get("usage")) is not None:
                self.usage = usage  # the latest wins
            if (kind := event.get("type")) is not None:
                if kind in _FINAL_EVENTS:
                    self.response = event.get("response")
                continue
            choices = event.get("choices")
            if not choices or type(choices[0]) is not dict:
                continue
            choice = choices[0]
            if (finish_reason := choice.get("finish_reason")) is not None:
                self.finish_reason = finish_reason
            if (piece := choice.get("text")) is not None:  # a legacy completion
                self._add_text(piece)
                continue
            delta = choice.get("delta")
            if type(delta) is dict:
                if content := delta.get("content"):
                    self._add_text(content)
                if tool_calls := delta.get("tool_calls"):
                    self._add_tool_calls(tool_calls)

    def _add_text(self, piece: Any) -> None:
        if isinstance(piece, str) and piece and self.text_budget > 0:
            self.text.append(piece)
            self.text_budget -= len(piece)

    def _add_tool_calls(self, calls: Any) -> None:
        for call in calls:
            if type(call) is not dict:
                continue
            entry = self.tool_calls.setdefault(call.get("index", 0), {
                "id": None, "type": "function", "function": {"name": "", "arguments": ""}})
            if call.get("id"):
                entry["id"] = call["id"]
            function = call.get("function")
            if type(function) is dict:
                entry["function"]["name"] += function.get("name") or ""
                entry["function"]["arguments"] += function.get("arguments") or ""

    def fields(self, operation: str) -> dict[str, Any]:
        """The stream's fields, as a non-streamed response of ``operation`` would give them."""
        if operation == "responses":
            return _extract.response_fields("responses", self.response) if type(self.response) is dict else {}
        usage = _extract.usage_fields(self.usage) if type(self.usage) is dict else None
        fields: dict[str, Any] = {"response_model": self.model, "usage": usage, "finish_reason": self.finish_reason,
                                  "cost": pricing.cost(self.model, usage)}
        text = "".join(self.text)
        if operation == "text_completion":
            fields["output"] = text
        else:
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if self.tool_calls:
                message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
            fields["output"] = message
        return fields


def stream_fields(operation: str, fold: EventFold | None, data: bytes, text_budget: int) -> dict[str, Any]:
    """A stream's fields from what its reads left unread (``data``) and what was read before
    (``fold``, if the stream was long enough to be read in batches): on the pipeline thread."""
    fold = fold if fold is not None else EventFold(text_budget)
    fold.feed(data)
    return fold.fields(operation)


def _payloads(data: bytes) -> list[bytes]:
    """The ``data`` of each event in ``data`` (whole events, ``\\n`` line ends), ``[DONE]`` left out."""
    payloads = []
    for event in data.split(b"\n\n"):
        if event.startswith(b"data: ") and b"\n" not in event:  # the usual shape: one data line
            payload = event[6:]
        else:
            lines = [line[5:] for line in event.split(b"\n") if line.startswith(b"data:")]
            if not lines:
                continue
            payload = b"\n".join(line[1:] if line.startswith(b" ") else line for line in lines)
        if payload and payload != _DONE:
            payloads.append(payload)
    return payloads


def _parse(payloads: list[bytes]) -> list[Any]:
    """The JSON of every payload: all in one parse, one by one if that fails (the ones that do
    not parse are skipped and counted as ``openai.stream_event_unreadable``)."""
    if not payloads:
        return []
    try:
        events = json.loads(b"[" + b",".join(payloads) + b"]")
        if len(events) == len(payloads):
            return events
    except ValueError:
        pass
    events = []
    for payload in payloads:
        try:
            events.append(json.loads(payload))
        except ValueError:
            count("openai.stream_event_unreadable")
    return events
