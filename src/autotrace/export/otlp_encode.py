"""OTLP trace protobuf, written directly: the bytes of an ``ExportTraceServiceRequest`` for finished
spans, without building protobuf message objects first.

The export threads share the GIL with the application, so the cost of encoding is paid by the
application too; building message objects field by field costs several times what writing the
wire format does. The message is the one OpenTelemetry's own encoder builds, field for field
(spans grouped by resource, then by instrumentation scope, in order of appearance); a test
decodes both and requires them equal. Two differences, where OpenTelemetry's encoder fails (and
with it the whole batch): text that is not valid Unicode (a lone surrogate) is sent with that
character replaced, and a time that is not an integer of nanoseconds (``span.end(end_time=...)``
given a float) is sent as one, or left out when it is no time at all.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry.trace import SpanKind

from .._internal import count

_SMALL = [bytes((i,)) for i in range(128)]
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: OTLP's ``SpanKind`` numbers (the API's, plus one: OTLP keeps 0 for "unspecified").
_KIND = {kind: kind.value + 1 for kind in SpanKind}
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    parts = bytearray()
    while value >= 0x80:
        parts.append((value & 0x7F) | 0x80)
        value >>= 7
    parts.append(value)
    return bytes(parts)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes or a nested message)."""
    return tag + _varint(len(payload)) + payload


# Tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
_T1_LEN, _T2_LEN, _T3_LEN, _T4_LEN, _T5_LEN = b"\x0a", b"\x12", b"\x1a", b"\x22", b"\x2a"
_T2_VARINT, _T3_VARINT, _T4_VARINT, _T5_VARINT = b"\x10", b"\x18", b"\x20", b"\x28"
_T1_FIXED64, _T4_FIXED64 = b"\x09", b"\x21"


def _any_value(value: Any) -> bytes | None:
    """An ``AnyValue`` message, or None for a value OTLP cannot carry (that attribute is left out)."""
    if value is None:
        return b""
    kind = type(value)
    if kind is str:
        return _field(_T1_LEN, _utf8(value))
    if kind is bool:
        return _T2_VARINT + (b"\x01" if value else b"\x00")
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            return None
        return _T3_VARINT + _varint(value if value >= 0 else value + (1 << 64))
    if kind is float:
        return _T4_FIXED64 + _DOUBLE(value)
    return _other_value(value)


def _other_value(value: Any) -> bytes | None:
    """Subclasses of the scalar types, bytes, sequences and mappings (rare in span attributes)."""
    if isinstance(value, bool):
        return _any_value(bool(value))
    if isinstance(value, str):  # its text: ``str()`` of a str-valued Enum member is its name
        return _field(_T1_LEN, _utf8(value))
    if isinstance(value, int):
        return _any_value(int(value))
    if isinstance(value, float):
        return _any_value(float(value))
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        items = [_any_value(item) for item in value]
        if any(item is None for item in items):
            return None
        return _field(_T5_LEN, b"".join(_field(_T1_LEN, item) for item in items))  # type: ignore[arg-type]
    if isinstance(value, Mapping):
        pairs = [_key_value(str(key), item) for key, item in value.items()]
        if any(pair is None for pair in pairs):
            return None
        return _field(b"\x32", b"".join(_field(_T1_LEN, pair) for pair in pairs))  # type: ignore[arg-type]
    return None


#: Encoded ``key`` fields of attribute names seen before (most repeat on every span); bounded.
_KEYS: dict[str, bytes] = {}
_MAX_KEYS = 4096


def _key_field(key: str) -> bytes:
    encoded = _KEYS.get(key)
    if encoded is None:
        if len(_KEYS) >= _MAX_KEYS:
            _KEYS.clear()
        encoded = _KEYS[key] = _field(_T1_LEN, _utf8(key))
    return encoded


def _key_value(key: str, value: Any) -> bytes | None:
    if type(value) is str:  # most attributes: the short path
        data = _utf8(value)
        any_value = _T1_LEN + _varint(len(data)) + data
        return _key_field(key) + _T2_LEN + _varint(len(any_value)) + any_value
    try:
        encoded = _any_value(value)
    except RecursionError:  # a structure nested into itself
        return None
    return None if encoded is None else _key_field(key) + _field(_T2_LEN, encoded)


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Repeated ``KeyValue`` fields; an attribute OTLP cannot carry (an integer beyond 64 bits, a
    structure nested into itself) is left out, as the SDK does, and counted."""
    if not attributes:
        return b""
    parts = []
    for key, value in attributes.items():
        pair = _key_value(key, value)
        if pair is None:
            count("attributes_dropped.unencodable")
            continue
        parts.append(tag)
        parts.append(_varint(len(pair)))
        parts.append(pair)
    return b"".join(parts)


def _uint(tag: bytes, value: int) -> bytes:
    return tag + _varint(value) if value else b""


def _text(tag: bytes, value: str | None) -> bytes:
    return _field(tag, _utf8(value)) if value else b""


def _time(tag: bytes, value: Any) -> bytes:
    """A ``fixed64`` time in nanoseconds; one given as another kind of number (a float) as its
    integer, and one that is no time from 1970 on (negative, beyond 64 bits, not a number) left
    out, as an unset one is (counted as ``timestamps_invalid``)."""
    if type(value) is not int:
        if not value:
            return b""
        try:
            value = int(value)
        except (TypeError, ValueError, OverflowError):
            value = -1
    if 0 < value < 2**64:
        return tag + _FIXED64(value)
    if value:
        count("timestamps_invalid")
    return b""


def _remote_flags(context: Any) -> bytes:
    """OTLP's span flags as OpenTelemetry sets them: whether the parent (or linked) context is remote."""
    return _FIXED32(_HAS_IS_REMOTE | (_IS_REMOTE if context is not None and context.is_remote else 0))


def _span(span: Any) -> bytes:
    context = span.get_span_context()
    parent = span.parent
    trace_state = context.trace_state
    status = span.status
    parts = [
        _field(_T1_LEN, context.trace_id.to_bytes(16, "big")),
        _field(_T2_LEN, context.span_id.to_bytes(8, "big")),
        _text(_T3_LEN, ",".join(f"{key}={value}" for key, value in trace_state.items()) if trace_state else None),
        _field(_T4_LEN, parent.span_id.to_bytes(8, "big")) if parent else b"",
        _text(_T5_LEN, span.name),
        b"\x30" + _varint(_KIND[span.kind]),
        _time(b"\x39", span.start_time),
        _time(b"\x41", span.end_time),
        _attributes(b"\x4a", span.attributes),
        _uint(b"\x50", span.dropped_attributes),
    ]
    for event in span.events:
        parts.append(_field(b"\x5a", b"".join((
            _time(_T1_FIXED64, event.timestamp),
            _text(_T2_LEN, event.name),
            _attributes(_T3_LEN, event.attributes),
            _uint(_T4_VARINT, getattr(event, "dropped_attributes", 0)),
        ))))
    parts.append(_uint(b"\x60", span.dropped_events))
    for link in span.links:
        parts.append(_field(b"\x6a", b"".join((
            _field(_T1_LEN, link.context.trace_id.to_bytes(16, "big")),
            _field(_T2_LEN, link.context.span_id.to_bytes(8, "big")),
            _attributes(_T4_LEN, link.attributes),
            _uint(_T5_VARINT, getattr(link, "dropped_attributes", 0)),
            b"\x35" + _remote_flags(link.context),
        ))))
    parts.append(_uint(b"\x70", span.dropped_links))
    if status is not None:
        parts.append(_field(b"\x7a", _text(_T2_LEN, status.description) + _uint(_T3_VARINT, status.status_code.value)))
    parts.append(b"\x85\x01" + _remote_flags(parent))  # field 16, fixed32
    return b"".join(parts)


def _scope(scope: Any) -> bytes:
    if scope is None:
        return b""
    return _text(_T1_LEN, scope.name) + _text(_T2_LEN, scope.version) + _attributes(_T3_LEN, scope.attributes)


def encode_spans(spans: Sequence[Any]) -> bytes:
    """The serialised ``ExportTraceServiceRequest`` for ``spans`` (finished, readable spans)."""
    return _request([(span.resource, span.instrumentation_scope or None, _span(span)) for span in spans])


def encode_requests(spans: Sequence[Any], max_bytes: int) -> Iterator[bytes]:
    """``encode_spans``, cut into requests of about ``max_bytes`` at most, spans in order; a span is
    never cut: one larger than that goes alone. Only one request is built at a time."""
    return (request for request, _ in encode_parts(spans, max_bytes))


def encode_parts(spans: Sequence[Any], max_bytes: int) -> Iterator[tuple[bytes, int]]:
    """``encode_requests``, each request with how many of ``spans`` (the next ones, in order) it holds."""
    part: list[tuple[Any, Any, bytes]] = []
    size = 0
    for span in spans:
        encoded = _span(span)
        if part and size + len(encoded) > max_bytes:
            yield _request(part), len(part)
            part, size = [], 0
        part.append((span.resource, span.instrumentation_scope or None, encoded))
        size += len(encoded)
    if part:
        yield _request(part), len(part)


def _request(encoded: list[tuple[Any, Any, bytes]]) -> bytes:
    """The request for encoded spans with their resource and scope: grouped by resource, then by
    scope, in order of appearance. A resource is hashed once per object, not once per span: its
    hash is a JSON dump of its attributes (some 5 µs, a third of what encoding a span costs)."""
    grouped: dict[Any, dict[Any, list[bytes]]] = {}
    by_object: dict[int, dict[Any, list[bytes]]] = {}  # ids stay valid: ``encoded`` holds each resource
    for resource, scope, span in encoded:
        scopes = by_object.get(id(resource))
        if scopes is None:
            scopes = by_object[id(resource)] = grouped.setdefault(resource, {})
        scopes.setdefault(scope, []).append(span)
    request = []
    for resource, scopes in grouped.items():
        scope_spans = [
            _field(_T2_LEN, b"".join((
                _field(_T1_LEN, _scope(scope)),
                b"".join(_field(_T2_LEN, encoded) for encoded in encoded_spans),
                _text(_T3_LEN, scope.schema_url if scope is not None else None),
            )))
            for scope, encoded_spans in scopes.items()
        ]
        resource_spans = b"".join((
            _field(_T1_LEN, _attributes(_T1_LEN, resource.attributes)),
            *scope_spans,
            _text(_T3_LEN, resource.schema_url),
        ))
        request.append(_field(_T1_LEN, resource_spans))
    return b"".join(request)
