"""What an observation holds of a value given to it before it ends (its content is serialised
only then): top-level containers copied, so that the caller changing them meanwhile does not
change what is recorded."""

from __future__ import annotations

import itertools
from typing import Any

from .bounds import REDACTION_MARGIN
from .runtime import state


def snapshot(value: Any) -> Any:
    """Copy top-level containers so later mutation by the caller does not change what was recorded.

    Content is serialised when the observation ends; a chat loop that appends to its ``messages``
    list before then (a stream's caller, say) must not rewrite the recorded input.
    """
    if type(value) is list:
        return list(value)
    if type(value) is dict:
        return dict(value)
    return value


#: A list or dict argument of at most this many items (nearly every one) is copied whole at once.
FEW_ITEMS = 1024


def snapshot_argument(value: Any) -> Any:
    """An observed function's argument as its input holds it: a list or dict copied (``snapshot``),
    a long one only as far as its recorded text reaches. That text is cut at the size limit (plus
    the redaction margin), and every item writes at least two bytes of it with its separator: the
    items past those are never recorded (the text is the same). Copying them all on every call
    cost twenty times the call's whole record (a million items: 20 ms), and kept them alive for as
    long as the call ran, after the function let go of them."""
    kind = type(value)
    if kind is not list and kind is not dict:
        return value
    recorded = len(value)
    if recorded > FEW_ITEMS:
        recorded = min(recorded, (state.max_value_bytes + REDACTION_MARGIN) // 2 + 2)
        if recorded < len(value):
            return value[:recorded] if kind is list else dict(itertools.islice(value.items(), recorded))
    return kind(value)
