"""What ``autotrace replay`` needs besides running the program: its ``--set`` and
``--messages-file`` overrides parsed (``parse_overrides``), and the original and the replay
compared (``side_by_side``, ``first_difference``). Re-exported by ``autotrace.replay``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def side_by_side(original: list[dict[str, Any]], replayed: list[dict[str, Any]], width: int = 100) -> str:
    """The two trees next to each other: the original's column as wide as its longest line, up to
    ``width`` terminal columns (a wide character, CJK say, takes two); a line cut to fit ends with ``…``."""
    from .render import columns, fitted, pad, render_tree

    left = render_tree(original, io=False).splitlines()
    right = render_tree(replayed, io=False).splitlines()
    width = min(width, max(map(columns, left), default=0))
    rows = [f"{pad('ORIGINAL', width)}  REPLAY"]
    for index in range(max(len(left), len(right))):
        a = left[index] if index < len(left) else ""
        b = right[index] if index < len(right) else ""
        rows.append(f"{fitted(a, width)}  {b}")
    return "\n".join(rows)


def parse_overrides(settings: list[str], messages_file: str | None = None) -> dict[str, Any]:
    """``model=gpt-4o`` and ``temperature=0.2`` style settings into replay overrides; a dotted key
    (``reasoning.effort=high``) sets one key of the request's object there, keeping its others. A
    value is JSON, or else the text as typed; the model a name (a JSON string, or the text as
    typed). ``ValueError`` (one line) for anything the replayed call could not send."""
    overrides: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep or not all(key.split(".")):
            raise ValueError(f"--set expects key=value (a dotted key for a nested one), got {item!r}")
        what = f"--set {item[:80]!r}"
        if key == "model":
            name = _json_value(raw, what, raw) if raw.lstrip().startswith('"') else _sendable(raw, what)
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"{what}: the model needs a name")
            overrides["model"] = name
        else:
            parameters[key] = _json_value(raw, what, raw)
    if parameters:
        overrides["model_parameters"] = parameters
    if messages_file:
        what = f"--messages-file {messages_file}"
        try:
            with open(messages_file, encoding="utf-8-sig") as handle:  # a byte order mark is no JSON
                messages = _json_value(handle.read(), what)
        except OSError as exc:
            raise ValueError(f"{what}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"{what} is not a JSON list of messages ({exc})") from None
        if not isinstance(messages, list):
            raise ValueError(f"{what} must hold a JSON list of messages")
        overrides["messages"] = overrides["input"] = messages  # ``input``: a Responses API call's messages
    return overrides


_NO_TEXT = object()


def _json_value(text: str, what: str, otherwise: Any = _NO_TEXT) -> Any:
    """The JSON value ``text`` holds, else ``otherwise`` if given; ``ValueError`` naming ``what`` for
    text that is not JSON, or a value the replayed call could not send (``_sendable``)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"{what}: nested too deeply") from None
    except ValueError as exc:
        if otherwise is _NO_TEXT:
            raise ValueError(f"{what} is not a JSON list of messages ({exc})") from None
        value = otherwise
    return _sendable(value, what)


def _sendable(value: Any, what: str) -> Any:
    """``value`` if the SDK can send it as JSON; else ``ValueError`` naming ``what``: nested too
    deeply to write (a ``RecursionError`` was a traceback), NaN or infinity (JSON has neither), a
    lone surrogate (``"\\ud800"``, or argv bytes that are not UTF-8: no UTF-8 text)."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ValueError(f"{what}: nested too deeply") from None
    except UnicodeEncodeError:
        raise ValueError(f"{what}: holds a lone surrogate, which is not UTF-8 text") from None
    except ValueError:
        raise ValueError(f"{what}: not a finite number (JSON has no NaN or infinity)") from None
    return value


def _describe(record: dict[str, Any]) -> str:
    return f"{record['type']} {record['name']!r}"


def _failed(record: dict[str, Any]) -> str | None:
    """What a recorded call failed with (its status message, cut), or None when it did not fail."""
    return str(record.get("status_message") or "an error")[:80] if record.get("level") == "ERROR" else None


def _changed_outcome(a: dict[str, Any], b: dict[str, Any], where: str) -> str | None:
    """How the outcome of ``a`` (the original's) and ``b`` (the replay's) differ: the output, else
    whether the call failed (a call run for its effect records no output either way); None if alike."""
    what = _describe(a)
    if a.get("output") != b.get("output"):
        return (f"{where}: {what} output {json.dumps(a.get('output'), default=str)[:80]} became "
                f"{json.dumps(b.get('output'), default=str)[:80]}")
    failed_a, failed_b = _failed(a), _failed(b)
    if (failed_a is None) == (failed_b is None):
        return None
    return (f"{where}: {what} failed in the replay ({failed_b}), not in the original" if failed_b is not None else
            f"{where}: {what} failed in the original ({failed_a}), not in the replay")


def first_difference(original: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> str | None:
    """The first observation, in execution order, whose type, name or output differs, or that failed
    in one run only.

    Children are compared before their parent's output (a step's output differs because of what
    ran inside it); neither the children nor the output of a frozen call are compared, as it did
    not run: its output is a recorded one (that of another call alike when concurrent calls
    started in another order). The trees are walked without recursion, however deep.
    """
    from .render import build_tree

    def tree(records: list[dict[str, Any]]) -> list[Any]:
        return build_tree(sorted(records, key=lambda r: r["start_ns"]))

    # per level: both lists of children, their path, the next index, and the pair whose output follows them
    stack: list[tuple[list[Any], list[Any], str, Iterator[int], tuple[Any, ...] | None]] = []

    def enter(left: list[Any], right: list[Any], path: str, owner: tuple[Any, ...] | None) -> None:
        stack.append((left, right, path, iter(range(max(len(left), len(right)))), owner))

    enter(tree(original), tree(replayed), "", None)
    while stack:
        left, right, path, indices, owner = stack[-1]
        index = next(indices, None)
        if index is None:
            stack.pop()
            if owner is not None and (changed := _changed_outcome(*owner)) is not None:
                return changed
            continue
        where = f"{path}{index + 1}"
        if index >= len(left):
            return f"{where}: {_describe(right[index][0])} exists only in the replay"
        if index >= len(right):
            return f"{where}: {_describe(left[index][0])} exists only in the original"
        (a, a_children), (b, b_children) = left[index], right[index]
        if (a["type"], a["name"]) != (b["type"], b["name"]):
            return f"{where}: {_describe(a)} became {_describe(b)}"
        frozen = (b.get("metadata") or {}).get("replay") == "frozen"
        enter([] if frozen else a_children, [] if frozen else b_children, f"{where}.",
              None if frozen else (a, b, where))
    return None
