"""Structured content cut short before it is serialised: a value whose JSON text is far over the
value size limit (a function's embeddings, a large table) is not serialised whole, on the caller's
thread, only to be cut at the limit; what is recorded is the same text."""

from __future__ import annotations

import itertools
from typing import Any

from . import bounds
from ._ended import CONTENT_FIELDS
from ._internal import guarded_failure

__all__ = ["content_cut_short", "json_head"]


def content_cut_short(fields: dict[str, Any], max_value_bytes: int) -> dict[str, Any]:
    """``fields`` with each structured content value whose JSON text is longer than ``bounds.hold``
    keeps of it cut short (``json_head``), in a new dict if any is."""
    room = max_value_bytes + bounds.REDACTION_MARGIN + 1  # past what ``hold`` keeps: cut there too
    cut = None
    for key in CONTENT_FIELDS:
        value = fields.get(key)
        if value is None or type(value) is str or not _may_be_long(value):  # a text is cut without
            continue  # being serialised; a few items are serialised at once (cheaper than walking them)
        try:
            head, _ = json_head(value, room, 0)
        except Exception as exc:  # (a recursion limit reached) serialised whole, as it is
            guarded_failure("finish", exc)
            continue
        if head is not value:
            cut = dict(fields) if cut is None else cut
            cut[key] = head
    return fields if cut is None else cut


#: A container of more items than this, or holding one, is walked (``json_head``): fewer, and their
#: text is made at once in C (a chat's messages); a long one (embeddings, a table) is cut first.
_FEW = 64
_CONTAINERS = frozenset({list, tuple, dict})


def _may_be_long(value: Any) -> bool:
    """Whether ``value`` may take long to serialise: an array, or a list, tuple or dict of more
    than ``_FEW`` items or holding one (deeper ones are not looked for)."""
    kind = type(value)
    if kind not in _CONTAINERS:
        return kind.__module__ in _ARRAY_MODULES
    if len(value) > _FEW:
        return True
    for item in value.values() if kind is dict else value:
        item_kind = type(item)
        if item_kind in _CONTAINERS:
            if len(item) > _FEW:
                return True
        elif item_kind is not str and item_kind.__module__ in _ARRAY_MODULES:
            return True
    return False


#: The shortest JSON text of each plain scalar (``0``, ``0.0``, ``true``, ``null``; a float that is
#: not finite is written ``null``).
_LEAVES = {int: 1, float: 3, bool: 4, type(None): 4}
#: Modules of the arrays serialised as their ``tolist()`` that ``json_head`` cuts short as such.
_ARRAY_MODULES = frozenset({"numpy", "torch"})


def json_head(value: Any, room: int, depth: int) -> tuple[Any, int]:
    """``value``, or, when its JSON text (``schema.serialize_io``) is longer than ``room`` bytes, a
    copy cut short whose text starts with the same ``room`` bytes and more (so ``bounds.hold`` cuts
    both at the same byte), with the room left (negative once cut). Every piece is counted as no
    longer than its shortest text; only lists, tuples and dicts are walked (to ``_MAX_DEPTH``)."""
    kind = type(value)
    if kind is str:
        return (value, room - len(value) - 2) if len(value) + 2 <= room else (value[:max(room, 0)], -1)
    if (kind is not list and kind is not tuple and kind is not dict) or depth >= _MAX_DEPTH:
        if kind.__module__ in _ARRAY_MODULES and getattr(value, "ndim", 0):  # an array: as its ``tolist()``,
            try:  # of the rows its text could need only (each item at least a byte and a separator)
                size = value.size if type(value.size) is int else value.numel()  # numpy's, torch's
                rows = room // (3 * max(1, size // max(1, len(value)))) + 1
                return json_head(value[:rows].tolist(), room, depth)
            except Exception:  # not sliced as an array is: serialised whole
                pass
        return value, room - 1  # any other value's text is at least one byte
    room += 1  # its opening bracket (-1), the first item without a separator before it (+2)
    pairs = kind is dict
    for index, item in enumerate(value.items() if pairs else value):
        if pairs:
            key, item = item
            room -= len(key) + 6 if type(key) is str else 6  # separator, key's quotes, ": "
        else:
            room -= 2
        item_kind = type(item)
        if item_kind is str:  # the most common: no call
            head, room = (item, room - len(item) - 2) if len(item) + 2 <= room else (item[:max(room, 0)], -1)
        elif item_kind in _LEAVES:
            head, room = item, room - _LEAVES[item_kind]
        else:
            head, room = json_head(item, room, depth + 1)
        if room < 0:  # cut here: the items before it, and its head
            if pairs:
                kept = dict(itertools.islice(value.items(), index))
                kept[key] = head
                return kept, room
            return (*value[:index], head) if kind is tuple else [*value[:index], head], room
    return value, room - 1


_MAX_DEPTH = 64
