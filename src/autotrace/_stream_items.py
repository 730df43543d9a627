"""The items a traced generator yielded, as its observation's output holds them (``decorators``):
each counted as no more than its JSON text is long, so that a stream of large items (arrays,
models) is held only as far as the output can keep it, and their output at its end."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import bounds
from ._heads import json_head
from ._internal import count, guarded_failure

#: Items measured by ``bounds.size``: numbers, containers, bytes (exact types looked up first).
PLAIN_ITEMS = frozenset({list, tuple, dict, int, float, bool, type(None), bytes, bytearray})
_MEASURED = (str, int, float, bytes, bytearray, memoryview, Mapping, Sequence)  # subclasses, mappings...


def held(item: Any, room: int) -> tuple[Any, int]:
    """``item`` as the output holds it, and the ``room`` left after it (counted as no more than its
    JSON text's length: a text's length, a quarter of a plain item's ``bounds.size``). Any other
    object (an array, a model, a dataclass) counts as its JSON form, and is held as that form, cut
    short where the output would be (``json_head``): ``bounds.size`` counts it as one number
    whatever its size, so every array of a stream of them was held until its end; an object
    written as text (a time, an enum) is held as it is. Never raises."""
    kind = type(item)
    if kind is str:
        return item, room - len(item)
    if kind not in PLAIN_ITEMS and not isinstance(item, _MEASURED):
        try:
            head, left = json_head(item, room)
            return (item if type(head) is str else head), left
        except Exception as exc:  # measured as a plain item is
            guarded_failure("observe.end", exc)
    return item, room - bounds.size(item, 4 * room) // 4


def stream_output(items: list[Any] | None, dropped: int = 0) -> Any:
    """Streamed text is joined (longer than the size limit when items were ``dropped``: cut and
    marked at it); other yielded items are kept as a list, ended by ``bounds.TRUNCATION_MARK`` when
    items were dropped (counted as ``attribute_items_dropped``). None: not kept."""
    if items is None:
        return None
    if items and all(isinstance(item, str) for item in items):
        return "".join(items)
    if dropped:
        count("attribute_items_dropped", dropped)
        return [*items, bounds.TRUNCATION_MARK]
    return items
