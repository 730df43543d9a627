"""Terminal rendering of stored traces: the typed tree and the trace list.

Everything printed goes through ``clean`` (control and invisible formatting characters escaped), and
the tree is walked without recursion, with caps on the depth shown and on the lines printed.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

from . import schema

_ICONS = {
    "generation": "GEN", "embedding": "EMB", "retriever": "RET", "tool": "TOOL", "guardrail": "GUARD",
    "agent": "AGENT", "chain": "CHAIN", "evaluator": "EVAL", "span": "SPAN", "event": "EVENT",
}
#: C0/C1 controls, bidi overrides, zero-width and line/paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_encode_string = json.encoder.encode_basestring  # as json.dumps(ensure_ascii=False): C0, quote, backslash
_NON_ASCII = re.compile("[^\x00-\x7f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
MAX_DEPTH = 64
MAX_LINES = 2000
#: How much of an observation's id ``show`` prints: enough for ``replay --at``, which takes a prefix.
ID_DIGITS = 8

Node = tuple[dict[str, Any], list[Any]]


def clean(text: str) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``, ``\\u202e``), safe for a terminal."""
    return _CONTROL.sub(lambda m: _NAMED.get(m[0]) or (f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                                                        else f"\\u{ord(m[0]):04x}"), text)


def _escape_unsafe(text: str) -> str:
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def to_json(data: Any) -> str:
    """Indented strict JSON (a non-finite number, which JSON cannot hold, is ``null``) whose strings
    carry no raw control characters (C1 and separators escaped too)."""
    try:
        return _indented(data)
    except (_Unplain, RecursionError, ValueError):  # anything but plain JSON values: the general (slower) path
        return _escape_unsafe(schema.strict_json(data, indent=2))  # escapes C0 itself


def ascii_json(text: str) -> str:
    """JSON text with every non-ASCII character escaped (``\\u00df``, a surrogate pair beyond the BMP):
    the same JSON, for an output that cannot encode those characters."""
    return _NON_ASCII.sub(lambda m: json.dumps(m[0]).strip('"'), text)


class _Unplain(Exception):
    """A value ``_indented`` leaves to ``json``: a non-finite float, a key that is no text, another type."""


def _indented(data: Any) -> str:
    """``json.dumps(data, indent=2, ensure_ascii=False)`` with unsafe characters escaped, for plain
    JSON values only (``_Unplain`` otherwise): the same text, about twice as fast as ``json``'s
    indenting encoder, which is pure Python (a trace of 20,000 observations is ~100 MB of it)."""
    parts: list[str] = []
    _put(data, "\n", parts, {})
    return "".join(parts)


def _string(text: str) -> str:
    encoded = _encode_string(text)
    return encoded if encoded.isascii() else _escape_unsafe(encoded)  # unsafe characters are not ASCII


def _put(value: Any, newline: str, parts: list[str], keys: dict[str, str]) -> None:
    """Append ``value``'s indented JSON at the depth that ``newline`` (with its indentation) marks;
    ``keys``: the keys encoded so far (they repeat in every record)."""
    kind = type(value)
    if kind is dict or kind is list:
        if not value:
            parts.append("{}" if kind is dict else "[]")
            return
        inner = newline + "  "
        separator = "," + inner
        if kind is dict:
            items: Any = value.items()
            parts.append("{" + inner)
        else:
            items = enumerate(value)
            parts.append("[" + inner)
        first = True
        for key, item in items:
            if not first:
                parts.append(separator)
            first = False
            if kind is dict:
                encoded = keys.get(key)
                if encoded is None:
                    if type(key) is not str:
                        raise _Unplain
                    encoded = keys[key] = _string(key) + ": "
                parts.append(encoded)
            if type(item) is str:  # the most common value: no call for it
                text = _encode_string(item)
                parts.append(text if text.isascii() else _escape_unsafe(text))
            else:
                _put(item, inner, parts, keys)
        parts.append(newline + ("}" if kind is dict else "]"))
    elif kind is str:
        parts.append(_string(value))
    elif value is None:
        parts.append("null")
    elif kind is bool:
        parts.append("true" if value else "false")
    elif kind is int:
        parts.append(int.__repr__(value))
    elif kind is float and math.isfinite(value):
        parts.append(float.__repr__(value))
    else:
        raise _Unplain


def _text(value: Any) -> str:
    return clean(value if isinstance(value, str) else str(value))


def _number(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec`` when it is a number, otherwise as given."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return format(value, spec)
        except (ValueError, OverflowError):  # an int too large for a float
            pass
    return short(value, 24)


def _known(value: Any, spec: str) -> str:
    """``_number``, with ``-`` right-aligned to the column for None (not recorded: unknown, never 0)."""
    return format("-", spec.split(".")[0]) if value is None else _number(value, spec)


def _one_line(value: Any, width: int | None = None) -> str:
    """``value`` on one line: whitespace runs as one space, control characters escaped. With ``width``, a
    longer line may be only its start, past ``width`` characters: a preview of a large text reads a few
    times ``width`` of it, not megabytes (that start is the whole line's: its runs and escapes are the same)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    end = 4 * (width or 0) + 64
    while width is not None and end < len(text):
        line = clean(" ".join(text[:end].split()))
        if len(line) > width:
            return line
        end *= 4
    return clean(" ".join(text.split()))


def short(value: Any, width: int = 60) -> str:
    """A one-line preview of an input or output."""
    text = _one_line(value, width)
    return text if len(text) <= width else text[: width - 1] + "…"


def _width(char: str) -> int:
    """Terminal columns of one character: 2 for wide ones (CJK, most emoji), 0 for combining marks."""
    if unicodedata.category(char) in ("Mn", "Me"):  # a mark drawn over the character before it
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def fit(value: Any, width: int) -> str:
    """``value`` on one line, as ``short`` gives it, cut to ``width`` terminal columns (with ``…``) and
    padded to them: a table's column stays in line whatever the script (``str`` padding counts characters)."""
    return fitted(_one_line(value), width)


def fitted(line: str, width: int) -> str:
    """``line`` (one line, as printed) cut to ``width`` terminal columns (with ``…``) and padded to them."""
    if columns(line) > width:
        line = _cut(line, [_width(c) for c in line], width - 1) + "…"
    return pad(line, width)


def columns(text: str) -> int:
    """Terminal columns of ``text`` (one line); only its non-ASCII characters are looked up."""
    return len(text) + sum(_width(c) - 1 for c in _NON_ASCII.findall(text))


def pad(text: str, width: int) -> str:
    """``text`` with spaces up to ``width`` terminal columns (none when it is as wide or wider)."""
    return text + " " * (width - columns(text))


def _cut(text: str, columns: list[int], width: int) -> str:
    """The longest start of ``text`` within ``width`` columns (``columns``: each character's)."""
    used = 0
    for index, column in enumerate(columns):
        used += column
        if used > width:
            return text[:index]
    return text


def build_tree(records: Sequence[dict[str, Any]]) -> list[Node]:
    """Nest records by parent id; records whose parent is not in the set become roots."""
    nodes = {r["id"]: (r, []) for r in records}
    roots: list[Node] = []
    for record in records:
        node = nodes[record["id"]]
        parent = nodes.get(record.get("parent_id") or "")
        (parent[1] if parent is not None else roots).append(node)
    return roots


def iter_tree(roots: Sequence[Node]) -> Iterator[tuple[int, bool, Node]]:
    """Pre-order walk without recursion: ``(depth, last among its siblings, node)`` per node."""
    stack = [(0, index == len(roots) - 1, node) for index, node in reversed(list(enumerate(roots)))]
    while stack:
        depth, last, node = stack.pop()
        yield depth, last, node
        children = node[1]
        stack.extend((depth + 1, i == len(children) - 1, child) for i, child in reversed(list(enumerate(children))))


def node_label(record: dict[str, Any]) -> str:
    kind = _text(record.get("type") or "?")
    parts = [f"[{_ICONS.get(kind, kind.upper())}] {_text(record.get('name'))}",
             f"{_number(record.get('duration_ms', 0), '.1f')}ms"]
    usage = record.get("usage") or {}
    if isinstance(usage, dict) and usage.get("total"):
        parts.append(f"{short(usage['total'], 24)} tok")
    cost = record.get("cost") or {}
    if isinstance(cost, dict) and cost.get("total"):
        total = cost["total"]  # shown only when not zero: one that rounds to it is said to be below a millionth
        tiny = isinstance(total, float) and 0 < total < 5e-7
        parts.append("<$0.000001" if tiny else f"${_number(total, '.6f')}")
    if record.get("model"):
        parts.append(short(record["model"], 60))
    if record.get("doc_count") is not None:
        parts.append(f"{short(record['doc_count'], 24)} docs")
    metadata = record.get("metadata")
    if isinstance(metadata, dict) and metadata.get("replay") == "frozen":  # its usage and cost the recording's
        parts.append("frozen")
    if record.get("type") == "guardrail" and isinstance(metadata, dict):
        parts.extend(_verdict(metadata))
    if record.get("level") == "ERROR" or record.get("error"):
        parts.append(f"ERROR {short(record.get('status_message'), 50)}")
    elif record.get("level") == "WARNING":  # interrupted (a stream closed early, a cancellation): not failed
        parts.append(f"WARNING {short(record.get('status_message'), 50)}")
    return "  ".join(parts)


def _verdict(metadata: dict[str, Any]) -> list[str]:
    """A guardrail's ``passed``/``modified``/``reason`` as ``show`` prints them (its input and output
    previews often look alike: the change is past their first characters)."""
    passed, modified, reason = metadata.get("passed"), metadata.get("modified"), metadata.get("reason")
    words = [] if not isinstance(passed, bool) else ["passed" if passed else "not passed"]
    if modified is True:
        words.append("modified")
    text = ", ".join(words)
    if reason:
        text = f"{text}: {short(reason, 50)}" if text else short(reason, 50)
    return [text] if text else []


def score_value(score: dict[str, Any]) -> Any:
    """A stored score's value as recorded: a number, a boolean (BOOLEAN scores are stored as 1 or 0)
    or a text (CATEGORICAL)."""
    value = score.get("value")
    if score.get("data_type") == "BOOLEAN" and isinstance(value, int | float):
        return value != 0
    return score.get("string_value") if value is None else value


def _score_json(score: dict[str, Any]) -> dict[str, Any]:
    return {"id": score.get("id"), "observation_id": score.get("observation_id"), "name": score.get("name"),
            "value": score_value(score), "data_type": score.get("data_type"), "comment": score.get("comment")}


def _score_line(score: dict[str, Any], elsewhere: bool = False) -> str:
    """``score: name=value`` with its comment and, for a score whose observation is not in the trace, that id."""
    value = score_value(score)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        text = str(int(value))
    else:
        text = short(value if isinstance(value, str) else repr(value), 40)
    line = f"score: {short(score.get('name'), 40)}={text}"
    if score.get("comment"):
        line += f"  comment: {short(score['comment'], 60)}"
    if elsewhere:
        line += f"  (observation {_text(score['observation_id'])}, not in the trace)"
    return line


def _by_observation(records: Sequence[dict[str, Any]], scores: Sequence[dict[str, Any]]
                    ) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Scores per observation id, and the trace's own: those without an observation or whose
    observation is not among ``records``."""
    ids = {r["id"] for r in records}
    on: dict[str, list[dict[str, Any]]] = {}
    trace_level = []
    for score in scores:
        observation = score.get("observation_id")
        if observation in ids:
            on.setdefault(observation, []).append(score)
        else:
            trace_level.append(score)
    return on, trace_level


def with_scores(records: Sequence[dict[str, Any]], scores: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of one trace as ``show --json`` prints them: each with ``scores``, its own, and the
    root (the first observation without a parent in the trace) with ``trace_scores``, the trace's."""
    on, trace_level = _by_observation(records, scores)
    result = [{**record, "scores": [_score_json(s) for s in on.get(record["id"], ())]} for record in records]
    if result:
        roots = build_tree(result)
        (roots[0][0] if roots else result[0])["trace_scores"] = [_score_json(s) for s in trace_level]  # else a cycle
    return result


#: The trace's own attributes ``show``'s header names (``trace_attributes``), as ``label=value``.
_HEADER_ATTRIBUTES = (("trace_name", "name"), ("user_id", "user"), ("session_id", "session"), ("tags", "tags"))


def _trace_attributes(root: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    """The trace's name, user, session and tags as the header shows them: each from the root, else
    from the first observation that has it (set later in the trace, or by another service)."""
    parts = []
    for key, label in _HEADER_ATTRIBUTES:
        value = root.get(key) or next((r[key] for r in records if r.get(key)), None)
        if value:
            text = ",".join(map(str, value)) if isinstance(value, list) else value
            parts.append(f"  {label}={short(text, 40)}")
    return "".join(parts)


def _service(record: dict[str, Any]) -> str | None:
    """An observation's service as text: another library's resource can name it with a list (not hashable)."""
    value = record.get("service")
    return value if value is None or isinstance(value, str) else _one_line(value)


def _service_changes(records: Sequence[dict[str, Any]]) -> dict[str, str]:
    """For a trace across several services: the service of each observation that runs in another
    one than its parent (a root, the server side of a call), by id; for one service, nothing."""
    service = {r["id"]: _service(r) for r in records}
    if len(set(service.values()) - {None, ""}) < 2:
        return {}
    return {r["id"]: service[r["id"]] for r in records
            if service[r["id"]] and service.get(r.get("parent_id") or "") != service[r["id"]]}


def render_tree(records: Sequence[dict[str, Any]], io: bool = True, max_depth: int = MAX_DEPTH,
                max_lines: int = MAX_LINES, scores: Sequence[dict[str, Any]] = ()) -> str:
    """The typed tree of one trace with latency, tokens, cost, short input/output and the ``scores``
    of each node (the trace's own under its header); nodes deeper than ``max_depth`` and lines beyond
    ``max_lines`` are left out, with a note saying so."""
    if not records:
        return "(no observations)"
    first = records[0]
    roots = build_tree(records)
    root = roots[0][0] if roots else first
    replay = f"  replay of {_text(root['replay_of'])}" if root.get("replay_of") else ""  # ``replay`` stored it
    # the root's tenant, else the first observation's that has one (a root started before the tenant was known)
    tenant = root.get("tenant") or next((r["tenant"] for r in records if r.get("tenant")), None)
    lines = [f"trace {_text(first.get('trace_id'))}  tenant={_text(tenant or '-')}"
             f"{_trace_attributes(root, records)}{replay}"]
    on, trace_level = _by_observation(records, scores)
    scores_shown = 0
    for score in trace_level:
        if len(lines) >= max_lines:
            break
        lines.append(_score_line(score, elsewhere=score.get("observation_id") is not None))
        scores_shown += 1
    services = _service_changes(records)
    prefixes = [""]  # prefixes[d]: what precedes the branch of a node at depth d
    shown = deep = 0
    capped = len(lines) >= max_lines
    for depth, last, (record, children) in iter_tree(roots):
        if depth >= max_depth:
            deep += 1
            continue
        if len(lines) >= max_lines:
            capped = True
            break
        shown += 1
        prefix = prefixes[depth]
        service = f"  service={short(services[record['id']], 40)}" if record["id"] in services else ""
        lines.append(f"{prefix}{'└─ ' if last else '├─ '}{node_label(record)}{service}"
                     f"  #{_text(record.get('id'))[:ID_DIGITS]}")
        inner = prefix + ("   " if last else "│  ")
        del prefixes[depth + 1:]
        prefixes.append(inner)
        bar = "│  " if children and depth + 1 < max_depth else "   "
        if io:
            if record.get("input") is not None:
                lines.append(f"{inner}{bar}in:  {short(record['input'])}")
            if record.get("output") is not None:
                lines.append(f"{inner}{bar}out: {short(record['output'])}")
        for score in on.get(record["id"], ()):
            if len(lines) >= max_lines:
                break
            lines.append(f"{inner}{bar}{_score_line(score)}")
            scores_shown += 1
    omitted = len(records) - shown
    if omitted:
        why = (f"output capped at {max_lines} lines" if capped
               else f"{deep} nested deeper than {max_depth} levels" if deep == omitted
               else f"{deep} nested deeper than {max_depth} levels, {omitted - deep} in a parent-id cycle")
        lines.append(f"… {omitted} of {len(records)} observations not shown ({why}; --json prints them all)")
    if scores_shown < len(scores):
        lines.append(f"… {len(scores) - scores_shown} of {len(scores)} scores not shown (on observations not shown "
                     f"or past {max_lines} lines; --json prints them all)")
    return "\n".join(clean(line) for line in lines)


def render_traces(summaries: Sequence[dict[str, Any]]) -> str:
    """A table of recent traces (a replay's name marked ``replay:``)."""
    header = f"{'TRACE':32}  {'NAME':24}  {'TENANT':12}  {'DURATION':>10}  {'TOKENS':>7}  {'COST':>10}  ERR"
    rows = [header]
    for s in summaries:
        name = ("replay: " if s.get("replay_of") else "") + _text(s.get("name") or "-")  # ``show`` says of which
        rows.append(
            f"{_text(s['trace_id']):32}  {fit(name, 24)}  {fit(s.get('tenant') or '-', 12)}  "
            f"{_number(s['duration_ms'], '>8.1f')}ms  {_known(s['tokens'], '>7')}  {_known(s['cost'], '>10.6f')}  "
            f"{s['errors']}"
        )
    return "\n".join(clean(row) for row in rows)


def render_observations(records: Sequence[dict[str, Any]]) -> str:
    """One line per matching observation."""
    rows = [f"{'TRACE':32}  {'ID':16}  {'TYPE':10}  NAME / DETAILS"]
    for r in records:
        rows.append(f"{_text(r.get('trace_id')):32}  {_text(r.get('id')):16}  {_text(r.get('type')):10}  {node_label(r)}")
    return "\n".join(clean(row) for row in rows)
