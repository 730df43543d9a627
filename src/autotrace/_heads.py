"""Structured content cut short before it is serialised: a value whose JSON text is far over the
value size limit (a function's embeddings, a large table, a list of models) is not serialised
whole, on the caller's thread, only to be cut at the limit; what is recorded is the same text."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from . import bounds
from ._ended import CONTENT_FIELDS
from ._internal import guarded_failure
from ._serialize import json_form

__all__ = ["content_cut_short", "json_head"]


def content_cut_short(fields: dict[str, Any], max_value_bytes: int) -> dict[str, Any]:
    """``fields`` with each structured content value whose JSON text is longer than ``bounds.hold``
    keeps of it cut short, and its objects (models) dumped (``json_head``), in a new dict if any is."""
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
    """Whether ``value`` may take long to serialise: an array, a list, tuple or dict of more than
    ``_FEW`` items, or one (or a model, a dataclass) holding one, or a model holding one, or a list
    of such models (deeper ones are not looked for; of the objects held, the first only)."""
    kind = type(value)
    if kind in _CONTAINERS:
        if len(value) > _FEW:
            return True
        items = value.values() if kind is dict else value
    elif kind.__module__ in _ARRAY_MODULES:
        return True
    else:
        items = _fields_of(value)
    looked = False  # an object looked into: a list's items are most often of one kind
    for item in items:
        item_kind = type(item)
        if item_kind is dict:  # the most common item (a chat's messages) first
            if len(item) > _FEW:
                return True
        elif item_kind is str or item_kind in _LEAVES:
            continue
        elif item_kind is list or item_kind is tuple:
            if len(item) > _FEW:
                return True
            if item and not looked:
                looked = True
                if _holds_long(item[0]):
                    return True
        elif item_kind.__module__ in _ARRAY_MODULES:
            return True
        elif not looked:
            looked = True
            if _holds_long(item):
                return True
    return False


def _holds_long(value: Any) -> bool:
    """Whether a model (or dataclass) has a field holding an array or more than ``_FEW`` items."""
    for field in _fields_of(value):
        kind = type(field)
        if (len(field) > _FEW if kind in _CONTAINERS else kind.__module__ in _ARRAY_MODULES):
            return True
    return False


def _fields_of(value: Any) -> Any:
    """The attribute values of a pydantic model or dataclass, else none (only to guess its size)."""
    kind = type(value)
    if not (callable(getattr(kind, "model_dump", None)) or dataclasses.is_dataclass(kind)):
        return ()
    attributes = getattr(value, "__dict__", None)
    return attributes.values() if type(attributes) is dict else ()


#: The shortest JSON text of each plain scalar (``0``, ``0.0``, ``true``, ``null``; a float that is
#: not finite is written ``null``).
_LEAVES = {int: 1, float: 3, bool: 4, type(None): 4}
#: Modules of the arrays serialised as their ``tolist()`` that ``json_head`` cuts short as such.
_ARRAY_MODULES = frozenset({"numpy", "torch"})
#: What the JSON encoder writes itself, subclasses too: it asks ``json_form`` for anything else.
_SCALARS = (str, int, float)


class _Unsure(Exception):
    """The walk met a value it cannot write as the serialiser would, byte for byte: one whose
    ``json_form`` raises (the serialiser then writes the whole value as its text), a subclass of a
    list, tuple or dict, or one past ``_MAX_DEPTH``."""


def json_head(value: Any, room: int, depth: int = 0) -> tuple[Any, int]:
    """``value``, or, when its JSON text (``schema.serialize_io``) is longer than ``room`` bytes, a
    copy cut short whose text starts with the same ``room`` bytes and more (so ``bounds.hold`` cuts
    both at the same byte), with the room left (negative once cut). Its objects (models, dataclasses
    ...) are replaced by their ``json_form``, as the serialiser writes them, so none is dumped twice;
    a value the walk is unsure of (``_Unsure``) is walked again with its objects left as they are."""
    try:
        return _head(value, room, depth, True)
    except _Unsure:
        return _head(value, room, depth, False)


def _head(value: Any, room: int, depth: int, dump: bool) -> tuple[Any, int]:
    """``json_head``, objects replaced by their ``json_form`` if ``dump``, else each counted as a
    byte. Every piece is counted as no longer than its shortest text; only lists, tuples, dicts and
    objects' forms are walked (to ``_MAX_DEPTH``)."""
    kind = type(value)
    if kind is str:
        return (value, room - len(value) - 2) if len(value) + 2 <= room else (value[:max(room, 0)], -1)
    if kind is not list and kind is not tuple and kind is not dict:
        return _object_head(value, room, depth, dump)
    if depth >= _MAX_DEPTH:
        if dump:
            raise _Unsure
        return value, room - 1
    room += 1  # its opening bracket (-1), the first item without a separator before it (+2)
    pairs = kind is dict
    kept: Any = None  # the items so far, once one is not kept as it is (cut, or an object's form)
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
            head, room = _head(item, room, depth + 1, dump)
        if room < 0 or (dump and (kept is not None or head is not item)):  # (not dumping: as it was)
            if kept is None:
                kept = dict(itertools.islice(value.items(), index)) if pairs else list(value[:index])
            if pairs:
                kept[key] = head
            else:
                kept.append(head)
            if room < 0:  # cut here: the items before it, and its head
                break
    if kept is None:
        return value, room - 1
    return tuple(kept) if kind is tuple else kept, room if room < 0 else room - 1


def _object_head(value: Any, room: int, depth: int, dump: bool) -> tuple[Any, int]:
    """``_head`` of any value but a text, list, tuple or dict: an array as its ``tolist()`` (of the
    rows its text could need only), an object as its ``json_form`` if ``dump``."""
    if type(value).__module__ in _ARRAY_MODULES and getattr(value, "ndim", 0):
        try:  # each item at least a byte and a separator
            size = value.size if type(value.size) is int else value.numel()  # numpy's, torch's
            rows = room // (3 * max(1, size // max(1, len(value)))) + 1
            return _head(value[:rows].tolist(), room, depth, dump)
        except Exception:  # not sliced as an array is: serialised whole
            pass
    if not dump or value is None or isinstance(value, _SCALARS):
        return value, room - 1  # any value's text is at least one byte
    if depth >= _MAX_DEPTH or isinstance(value, list | tuple | dict):  # (a subclass: not walked)
        raise _Unsure
    try:
        form = json_form(value)
    except Exception as exc:  # the serialiser would write the whole value as its text
        raise _Unsure from exc
    return _head(form, room, depth + 1, dump)


_MAX_DEPTH = 64
