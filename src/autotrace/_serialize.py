"""JSON text of any value, as span attributes carry it (reached through ``schema``: ``dumps``,
``serialize_io``, ``strict_json``); never raises: what JSON cannot hold (a NaN, a key that is no
string, an object of any kind) is written as JSON can hold it, or as its text."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import math
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._internal import count
from .bounds import REDACTION_MARGIN
from .runtime import state


def json_form(value: Any) -> Any:
    """What the JSON encoder writes in place of ``value``, which it cannot write itself (anything but
    a text, number, bool, None, list, tuple or dict): a model's dump, a dataclass's fields, a time's
    ISO text ... else its text; what ``value``'s own code raises (a model's dump) is not caught."""
    if isinstance(value, type):  # a class (a pydantic schema given as ``response_format``): its name
        return value.__qualname__
    made_up = hasattr(type(value), "__getattr__")  # (once: a name a class lacks costs an exception made)
    dump = _method(value, "model_dump", made_up)
    if dump is not None:  # pydantic v2 (OpenAI, LlamaIndex, LangChain messages)
        try:  # no serializer warnings: they would reach the application's stderr (a parsed message's ``parsed``)
            return dump(mode="json", exclude_none=True, warnings=False)
        except TypeError:
            return dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    tolist = _method(value, "tolist", made_up)  # numpy arrays and scalars
    if tolist is not None:
        return tolist()
    to_dict = _method(value, "to_dict", made_up) or _method(value, "dict", made_up)
    if to_dict is not None:
        try:
            return to_dict()
        except Exception:
            pass
    return as_text(value)


def _method(value: Any, name: str, made_up: bool) -> Callable[..., Any] | None:
    """``value``'s method ``name`` (a model's ``model_dump``...), None if it has none. Of an object whose
    class makes attributes up (``made_up``: it has ``__getattr__``), one its class lacks is taken only
    when it is a bound method (a proxy's, such as ``wrapt.ObjectProxy``, of the model it wraps), and
    never a mock's: a mock's made-up ``model_dump`` would be called (recorded in the application's
    mock) and give another mock to serialise, and so on down to the recursion limit (seconds, a
    thousand mocks); an RPC proxy's would be a remote call."""
    if made_up and getattr(type(value), name, None) is None:
        if _is_mock(value):
            return None
        method = getattr(value, name, None)
        return method if isinstance(method, _BOUND_METHODS) else None
    method = getattr(value, name, None)  # (of an instance: a name it lacks costs no exception made)
    return method if callable(method) else None


#: A method bound to its object: of a Python class, of a C type (numpy's ``tolist``).
_BOUND_METHODS = (types.MethodType, types.BuiltinMethodType)


def as_text(value: Any, limit: int | None = None) -> str:
    """``str(value)``, or the default repr when the object's own ``__str__`` raises (or an item's
    ``__repr__``). A list, tuple, dict, set or frozenset is written as its repr is, only until more than
    ``limit`` characters are (default: what ``bounds.hold`` keeps of a value, which then cuts it): the
    same text, or its head when longer, never the whole repr of a large value (a cycle's, one whose
    model dump fails) made on the caller's thread only to be cut."""
    if type(value) is str:
        return value
    try:
        if type(value) in _REPRS:
            return _repr_head(value, state.max_value_bytes + REDACTION_MARGIN if limit is None else limit)
        if _is_mock(value):  # a mock records ``str()`` as a call of its own (the application's tests read them)
            return repr(value)
        return str(value)
    except Exception:
        return object.__repr__(value)


def _is_mock(value: Any) -> bool:
    """Whether ``value`` is a ``unittest.mock`` mock (the module is not imported to know)."""
    mock = sys.modules.get("unittest.mock")
    return mock is not None and isinstance(value, mock.NonCallableMock)


class _Raw(str):
    """Text of a container's repr itself (a bracket, a separator), not an item to write the repr of."""


_COMMA, _COLON, _TRAILING = _Raw(", "), _Raw(": "), _Raw(",")
#: The containers ``as_text`` writes piece by piece (their exact types: a subclass's repr is its own):
#: (opening, closing, the text of an empty one, of one within itself).
_REPRS: dict[type, tuple[str, str, str, str]] = {
    list: ("[", "]", "[]", "[...]"), tuple: ("(", ")", "()", "(...)"), dict: ("{", "}", "{}", "{...}"),
    set: ("{", "}", "set()", "set(...)"), frozenset: ("frozenset({", "})", "frozenset()", "frozenset(...)")}


def _items(container: Any) -> Iterator[Any]:
    """What a container's repr writes between its brackets: its items (their reprs) and separators."""
    pairs = type(container) is dict
    for index, item in enumerate(container.items() if pairs else container):
        if index:
            yield _COMMA
        if pairs:
            yield item[0]
            yield _COLON
            yield item[1]
        else:
            yield item
    if type(container) is tuple and len(container) == 1:
        yield _TRAILING


def _repr_head(value: Any, limit: int) -> str:
    """``repr(value)`` of a container of ``_REPRS``, written as CPython writes it (a container already
    being written, within itself, as ``[...]``), until more than ``limit`` characters are."""
    pieces: list[str] = []
    size = 0
    writing: set[int] = set()  # the containers open on the way down (repr's own recursion guard)
    open_items: list[tuple[Iterator[Any], str, int]] = []
    item: Any = value
    while size <= limit:
        kind = type(item)
        shape = _REPRS.get(kind)
        if kind is _Raw:
            text = item
        elif shape is None:
            text = repr(item)
        elif not item:
            text = shape[2]
        elif id(item) in writing:
            text = shape[3]
        else:
            writing.add(id(item))
            open_items.append((_items(item), shape[1], id(item)))
            text = shape[0]
        pieces.append(text)
        size += len(text)
        while open_items:
            item = next(open_items[-1][0], _items)  # (``_items`` itself: none left)
            if item is not _items:
                break
            _, closing, ident = open_items.pop()
            writing.discard(ident)
            pieces.append(closing)
            size += len(closing)
        else:
            break
    return "".join(pieces)


_encode_str = json.encoder.encode_basestring  # what json.dumps does for a str, ensure_ascii off


def _encoder(item_separator: str, key_separator: str,
             default: Callable[[Any], Any] = json_form) -> Callable[[Any, int], Iterable[str]]:
    """A JSON encoder built once (``json.dumps`` with options builds one per call), called as
    ``encoder(value, 0)`` for the pieces of the text. The C encoder is reused without a
    circular-reference table, so a cycle ends as RecursionError (caught). A float that is not
    finite raises ValueError: ``NaN`` is not JSON, and Langfuse would not parse the text."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(ensure_ascii=False, default=default, allow_nan=False,
                                separators=(item_separator, key_separator)).iterencode
    return make(None, default, _encode_str, None, key_separator, item_separator, False, False, False)  # type: ignore[no-any-return]


#: Dict keys JSON text can hold as they are (the others are written as their text).
_KEY_TYPES = (str, int, float, bool, type(None))


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it, in its dicts, lists and tuples at any depth: every float that is
    not finite (NaN, infinity: JSON has neither) None, and every dict key that is no string, finite
    number, bool or None its text (``_plain_key``) instead of making the whole value one string."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        return {_plain_key(key): plain(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [plain(item) for item in value]
    if isinstance(value, float):  # numpy's float64 and other subclasses
        return value if math.isfinite(value) else None
    if isinstance(value, dict):  # OrderedDict, defaultdict, ...
        return plain(dict(value))
    if isinstance(value, list | tuple):  # a named tuple, a list subclass: the encoder writes them as arrays
        return [plain(item) for item in value]
    return value


def _plain_key(key: Any) -> Any:
    """A dict key as JSON text can hold it: a string, finite number, bool or None as it is, any other
    (a tuple, an enum, a NaN: ``value_counts(dropna=False)`` has one) as its text."""
    if isinstance(key, float) and not math.isfinite(key):
        return as_text(key)
    return key if isinstance(key, _KEY_TYPES) else as_text(key)


def strict_json(value: Any, indent: int | None = None) -> str:
    """``value`` as strict JSON text for readers that reject ``NaN`` (SQLite's JSON functions, the
    CLI's ``--json``): objects JSON cannot hold as their ``str``, a float that is not finite null
    (the value is walked only when it holds one, or a key JSON cannot hold)."""
    try:
        return json.dumps(value, indent=indent, default=str, ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError):  # a NaN or infinity (a metadata value, a score, a cost), a tuple key: rare
        return json.dumps(plain(value), indent=indent, default=str, ensure_ascii=False, allow_nan=False)


def _plain_default(value: Any) -> Any:
    return plain(json_form(value))


_encode = _encoder(", ", ": ")
_encode_compact = _encoder(",", ":")
#: Only for values the encoders above refuse: a float that is not finite, a key such as a tuple.
_encode_plain = _encoder(", ", ": ", _plain_default)
_encode_plain_compact = _encoder(",", ":", _plain_default)


def dumps(value: Any, compact: bool = False) -> str:
    """Serialise any value to JSON text; never raises (unserialisable parts become strings, floats
    that are not finite null, as JSON has no NaN or infinity)."""
    if type(value) is str:
        return _encode_str(value)
    try:
        return "".join(_encode_compact(value, 0) if compact else _encode(value, 0))
    except (ValueError, TypeError):  # a NaN or infinity, a tuple key (or an error of the value's own code)
        try:
            plain_value = plain(value)
            return "".join(_encode_plain_compact(plain_value, 0) if compact else _encode_plain(plain_value, 0))
        except Exception:
            pass
    except Exception:  # also what an object's own ``model_dump``/``__str__`` raises
        pass
    count("serialization_fallbacks")
    return _encode_str(as_text(value))


def serialize_io(value: Any) -> str | None:
    """Input/output encoding of the Langfuse SDK: strings stay raw, anything else is JSON."""
    if value is None or isinstance(value, str):
        return value
    return dumps(value)
