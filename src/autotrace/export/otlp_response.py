"""Reading an OTLP/HTTP endpoint's answer to an accepted export: its ``partial_success``.

An endpoint that takes part of a request answers 2xx with an ``ExportTraceServiceResponse``
whose ``partial_success`` says how many spans it refused for good (``rejected_spans``) and why
(``error_message``); with none refused, the message is a warning. The answer is protobuf or JSON
(proto3's JSON mapping, where the count may be a string), as the endpoint chooses. Outside input:
read with bounds, and anything unreadable is taken as an answer without ``partial_success``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: The longest message kept from an answer (it goes to a log line).
MAX_MESSAGE_CHARS = 300


def partial_success(body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
    """``(rejected_spans, error_message)`` from an accepted export's answer; ``(0, "")`` when it
    has none or cannot be read. Never raises."""
    if not body:
        return 0, ""
    try:
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind == "application/json" or (kind != "application/x-protobuf" and body.lstrip()[:1] == b"{"):
            rejected, message = _from_json(body)
        else:
            rejected, message = _from_protobuf(body)
    except (ValueError, TypeError, RecursionError):
        return 0, ""
    return max(0, rejected), _printable(message)


def _from_json(body: bytes) -> tuple[int, str]:
    answer = json.loads(body)
    part = _field(answer, "partialSuccess", "partial_success")
    if not isinstance(part, dict):
        return 0, ""
    rejected = _field(part, "rejectedSpans", "rejected_spans")
    message = _field(part, "errorMessage", "error_message")
    count = int(rejected) if isinstance(rejected, int | str) and not isinstance(rejected, bool) else 0
    return count, message if isinstance(message, str) else ""


def _field(value: Any, camel: str, snake: str) -> Any:
    if not isinstance(value, dict):
        return None
    return value.get(camel, value.get(snake))


def _from_protobuf(body: bytes) -> tuple[int, str]:
    rejected, message = 0, b""
    for number, wire, value in _fields(body):
        if number == 1 and wire == 2:  # partial_success (repeated occurrences merge: the last value wins)
            for inner_number, inner_wire, inner in _fields(value):
                if inner_number == 1 and inner_wire == 0:
                    rejected = inner - (1 << 64) if inner >= 1 << 63 else inner  # int64
                elif inner_number == 2 and inner_wire == 2:
                    message = inner
    return rejected, message.decode("utf-8", "replace")


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """The top-level fields of one protobuf message: (number, wire type, value); ValueError if malformed."""
    fields: list[tuple[int, int, Any]] = []
    at, end = 0, len(data)
    while at < end:
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            if at + size > end:
                raise ValueError("field past the end")
            value, at = data[at:at + size], at + size
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
            value = None
        else:
            raise ValueError(f"wire type {wire}")
        if number == 0 or at > end:
            raise ValueError("malformed field")
        fields.append((number, wire, value))
    return fields


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & ((1 << 64) - 1), at
        shift += 7


def _printable(message: str) -> str:
    """``message`` cut to ``MAX_MESSAGE_CHARS``, control characters as spaces (one log line)."""
    message = message[:MAX_MESSAGE_CHARS]
    return message if message.isprintable() else "".join(c if c.isprintable() else " " for c in message)
