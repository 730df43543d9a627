"""Bounds on attribute values: every string (and bytes) cut at the value size limit, held a margin
longer until redacted so a secret the cut splits is seen whole; structured values (sequences,
mappings) bounded item by item; growing texts (a stream's output) kept as bounded pieces."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._internal import count

#: Ends a value cut at the size limit.
TRUNCATION_MARK = "…[truncated]"

#: Past the size limit, a value is held up to this many bytes longer until it has been redacted,
#: then cut at the limit: a secret that the cut splits (a card number, an e-mail, a key) is then
#: seen whole by the detectors, and none of it is exported. Longer than the longest bounded shape
#: detected (an e-mail address is at most 254 characters), and than most API keys.
REDACTION_MARGIN = 512
#: Ends a value held cut at the limit plus the margin (``hold``): its last ``REDACTION_MARGIN``
#: bytes may end in a partial secret, so ``truncate`` never keeps them. It starts with a space, so
#: no detector's match runs into it.
HELD_MARK = " " + TRUNCATION_MARK
_HELD_BYTES, _MARK_BYTES = HELD_MARK.encode(), TRUNCATION_MARK.encode()


def was_cut(value: Any) -> bool:
    """Whether a recorded value was cut at the size limit: a string in it ends with
    ``TRUNCATION_MARK`` (a structured value too long is recorded as its JSON text, cut so)."""
    if isinstance(value, str):
        return value.endswith(TRUNCATION_MARK)
    if isinstance(value, Mapping):
        return any(map(was_cut, value.values()))
    return isinstance(value, list) and any(map(was_cut, value))


def hold(value: str, max_bytes: int) -> str:
    """``value`` as it may wait for redaction: whole if it is at most ``REDACTION_MARGIN`` bytes over
    ``max_bytes``, else cut there and marked with ``HELD_MARK``. ``truncate`` cuts it at the limit
    once it has been redacted (and counts that)."""
    limit = max_bytes + REDACTION_MARGIN
    if len(value) <= limit // 4:
        return value
    encoded = value.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit:
        return value
    return encoded[:limit].decode("utf-8", "ignore") + HELD_MARK


def truncate(value: str, max_bytes: int) -> str:
    """Cut ``value`` to at most ``max_bytes`` UTF-8 bytes, marking the cut; counted. A value cut by
    ``hold`` loses at least its last ``REDACTION_MARGIN`` bytes, so what redaction could not see
    whole is never exported (also when redaction has made it shorter than the limit)."""
    held = value.endswith(HELD_MARK)
    if not held and len(value) <= max_bytes // 4:
        return value
    encoded = value.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes and not held:
        return value
    return _kept(encoded, held, max_bytes).decode("utf-8", "ignore") + TRUNCATION_MARK


def cut_units(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-16 code units (a JavaScript string's length, which
    Langfuse's limits count), marked with ``TRUNCATION_MARK``; ``text`` itself when it fits (the
    caller counts the cut). Only for a value redacted by now: what is cut off is not held."""
    encoded = text.encode("utf-16-le", "surrogatepass")
    if len(encoded) <= 2 * limit:
        return text
    kept = encoded[:2 * (limit - len(TRUNCATION_MARK))].decode("utf-16-le", "ignore")  # no half pair
    return kept.rstrip(" ") + TRUNCATION_MARK


#: The characters of tokens (RFC 7235's token68: bearer tokens, base64, JWTs, hex, most API keys).
_TOKEN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="


def _kept(encoded: bytes, held: bool, max_bytes: int) -> bytes:
    """What ``truncate`` keeps of a value's bytes (counted as a truncation). It never ends in a
    space: marked, it would look held (``HELD_MARK``), and be cut again."""
    count("attributes_truncated")
    keep = max_bytes - len(_MARK_BYTES)
    if held:
        end = len(encoded) - len(_HELD_BYTES)
        keep = min(keep, end - REDACTION_MARGIN)
        # a run of token characters that reaches the held end is longer than the margin: if it
        # mixes letters and digits (a key, a JWT, base64, hex) it may be a secret redaction saw
        # only in part (its detector needs its end), so none of it is kept
        start = len(encoded[:end].rstrip(_TOKEN_BYTES))
        if start < keep and _mixed(encoded[start:end]):
            keep = start
    return encoded[:max(0, keep)].rstrip(b" ")


def _mixed(run: bytes) -> bool:
    """Whether ``run`` (ASCII) holds both a letter and a digit."""
    return run.upper() != run.lower() and run.translate(None, b"0123456789") != run


def _hold_binary(data: bytes | bytearray | memoryview, max_bytes: int) -> bytes | bytearray | memoryview:
    """``hold`` for a bytes value (redaction reads it as text): cut and marked the same way."""
    limit = max_bytes + REDACTION_MARGIN
    if memoryview(data).nbytes <= limit:
        return data
    return bytes(data)[:limit] + _HELD_BYTES


def _truncate_binary(data: bytes | bytearray | memoryview, max_bytes: int) -> bytes | bytearray | memoryview:
    """``truncate`` for a bytes value."""
    whole = bytes(data)
    held = whole.endswith(_HELD_BYTES)
    if len(whole) <= max_bytes and not held:
        return data
    return _kept(whole, held, max_bytes) + _MARK_BYTES


#: A growing text held as pieces (a stream's output) is joined and cut once it has this many.
JOIN_PIECES_AT = 64


def keep_piece(pieces: list[str], piece: str, max_value_bytes: int) -> None:
    """Add ``piece`` to a text that is still growing, held as ``pieces`` (``bound_pieces`` once
    there are ``JOIN_PIECES_AT`` of them)."""
    pieces.append(piece)
    if len(pieces) >= JOIN_PIECES_AT:
        bound_pieces(pieces, max_value_bytes)


def bound_pieces(pieces: list[str], max_value_bytes: int) -> None:
    """Join the ``pieces`` of a text that is still growing (a stream's output, a tool call's
    arguments) into one of at most ``REDACTION_MARGIN`` characters, plus one, more than
    ``max_value_bytes``: the value is held there until redacted and cut at the limit on export
    anyway (``hold``, ``truncate``), so a secret the cut splits is seen whole by redaction, and a
    text longer than the limit stays longer, so it is cut and marked exactly as it would have been
    whole. A long stream then holds no more than that, plus one batch of pieces, while it runs."""
    pieces[:] = ["".join(pieces)[:max_value_bytes + REDACTION_MARGIN + 1]]


SCALARS = (int, float, type(None))  # bool is an int
_BINARY = (bytes, bytearray, memoryview)
_PLAIN_SEQUENCES = frozenset({tuple, list})
_SCALAR_TYPES = frozenset({int, float, bool, type(None)})
_STRINGS = {str}
_STRUCTURED = (Mapping, Sequence)
#: Past this depth a structured value is left as it is until redacted (the redactor replaces it
#: whole), then cut there (``cut_value``: not redacted, it could nest without end, or refer to itself).
MAX_VALUE_DEPTH = 8
#: What each item of a structured value counts for in its size, besides a string's or bytes' length.
_ITEM_SIZE = 8


def has_long_string(values: Iterable[Any], max_value_bytes: int) -> bool:
    """Whether a value among ``values`` may exceed the value size limit: a string longer than a
    quarter of it (below that many characters no string can exceed it), or bytes or a structured
    value (a sequence or mapping) whose size (``hold_value``) is, or whose own code raises. Never raises."""
    limit = max_value_bytes // 4
    for value in values:
        if isinstance(value, str):
            if len(value) > limit:
                return True
        elif not isinstance(value, SCALARS):
            try:
                if _size(value, limit, 0) > limit:
                    return True
            except Exception:  # (a mapping that cannot be read): ``hold_value`` and ``cut_value`` replace it
                return True
    return False


def size(value: Any, stop: int) -> int:
    """The size of ``value`` as ``hold_value`` counts it (8 for each item or key, plus a string's or
    bytes' length), or more than ``stop`` once past it. Never raises: a value whose own code
    raises counts as one item."""
    try:
        return _size(value, stop, 0)
    except Exception:
        return _ITEM_SIZE


def _size(value: Any, stop: int, depth: int) -> int:
    """The size of a value (``hold_value``), or more than ``stop`` once past it or nested deeper
    than ``MAX_VALUE_DEPTH``."""
    if type(value) in _PLAIN_SEQUENCES:  # the most common: before the costlier checks
        kinds = set(map(type, value)) if depth <= MAX_VALUE_DEPTH else None
        if kinds is not None and kinds <= _SCALAR_TYPES:  # a vector, counted in C, not item by item
            return _ITEM_SIZE * (1 + len(value))
        if kinds == _STRINGS:  # tags
            return _ITEM_SIZE * (1 + len(value)) + sum(map(len, value))
        parts: Iterable[Any] = value
    elif isinstance(value, str):
        return _ITEM_SIZE + len(value)
    elif isinstance(value, _BINARY):
        return _ITEM_SIZE + memoryview(value).nbytes
    elif isinstance(value, Mapping):
        parts = (part for item in value.items() for part in item)
    elif isinstance(value, Sequence):
        parts = value
    else:
        return _ITEM_SIZE
    if depth > MAX_VALUE_DEPTH:
        return stop + 1
    size = _ITEM_SIZE
    for part in parts:
        kind = type(part)
        if kind is str:
            size += _ITEM_SIZE + len(part)
        elif kind in _SCALAR_TYPES:  # a vector's floats: no call, no abstract-class check
            size += _ITEM_SIZE
        else:
            size += _size(part, stop - size, depth + 1)
        if size > stop:
            break
    return size


def hold_value(value: Any, max_bytes: int) -> Any:
    """Any attribute value bounded as it may wait for redaction: a string by ``hold``, bytes the
    same way, and a structured value (a sequence or mapping) keeps its items in order while its
    size is within ``max_bytes`` (8 for each item or mapping key at any depth, plus a string's or
    bytes' length), drops the rest (counted as ``attribute_items_dropped``), and has each string
    and bytes in it held by itself. ``cut_value`` cuts them at the limit once redacted."""
    if isinstance(value, str):
        return hold(value, max_bytes)
    budget = [max_bytes, 0]  # size left, items dropped
    try:
        bounded = _bound(value, max_bytes, True, budget, 0)
    except Exception:
        return _unreadable()
    if budget[1]:
        count("attribute_items_dropped", budget[1])
    return bounded


def cut_value(value: Any, max_bytes: int) -> Any:
    """Any attribute value, redacted by now, cut at the value size limit: each string (``truncate``)
    and bytes, also inside a structured value, which is cut past ``MAX_VALUE_DEPTH`` (each
    structure there replaced by ``TRUNCATION_MARK``, counted as ``attribute_items_dropped``)."""
    if isinstance(value, str):
        return truncate(value, max_bytes)
    try:
        return _bound(value, max_bytes, False, None, 0)
    except Exception:
        return _unreadable()


def _unreadable() -> str:
    """In place of a structured value whose own code raised as it was read (or that cannot be
    rebuilt: a key that is an unhashable sequence), never exported as it is."""
    count("attribute_items_dropped")
    return TRUNCATION_MARK


def _bound(value: Any, max_bytes: int, holding: bool, budget: list[int] | None, depth: int) -> Any:
    """``hold_value`` (``holding``, with a ``budget``: size left, items dropped) or ``cut_value``."""
    size = _ITEM_SIZE
    if isinstance(value, str):
        value = hold(value, max_bytes) if holding else truncate(value, max_bytes)
        size += len(value)
    elif isinstance(value, _BINARY):
        value = _hold_binary(value, max_bytes) if holding else _truncate_binary(value, max_bytes)
        size += memoryview(value).nbytes
    elif (depth <= MAX_VALUE_DEPTH or not holding) and not isinstance(value, SCALARS) and isinstance(
            value, _STRUCTURED):
        if depth > MAX_VALUE_DEPTH:  # redacted by now (or not at all): cut here, whatever it holds
            count("attribute_items_dropped")
            return TRUNCATION_MARK
        if budget is not None:
            budget[0] -= size
        if type(value) in _PLAIN_SEQUENCES and set(map(type, value)) <= _SCALAR_TYPES:  # a vector: sliced
            if budget is None:
                return value
            keep = min(len(value), max(0, -(-budget[0] // _ITEM_SIZE)))  # as item by item: while room is left
            budget[0] -= _ITEM_SIZE * keep
            budget[1] += len(value) - keep
            return value if keep == len(value) else value[:keep]
        mapping = isinstance(value, Mapping)
        kept: list[Any] = []
        for index, item in enumerate(value.items() if mapping else value):
            if budget is not None and budget[0] <= 0:
                budget[1] += len(value) - index
                break
            if mapping:
                item = (_bound(item[0], max_bytes, holding, budget, depth + 1),
                        _bound(item[1], max_bytes, holding, budget, depth + 1))
            else:
                item = _bound(item, max_bytes, holding, budget, depth + 1)
            kept.append(item)
        if mapping:
            return dict(kept)
        return tuple(kept) if isinstance(value, tuple) else kept
    if budget is not None:
        budget[0] -= size
    return value
