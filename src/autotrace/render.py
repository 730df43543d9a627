"""Terminal rendering of stored traces: the typed tree and the trace list."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

_ICONS = {
    "generation": "GEN", "embedding": "EMB", "retriever": "RET", "tool": "TOOL", "guardrail": "GUARD",
    "agent": "AGENT", "chain": "CHAIN", "evaluator": "EVAL", "span": "SPAN", "event": "EVENT",
}


def short(value: Any, width: int = 60) -> str:
    """A one-line preview of an input or output."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def build_tree(records: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], list[Any]]]:
    """Nest records by parent id; records whose parent is not in the set become roots."""
    nodes = {r["id"]: (r, []) for r in records}
    roots: list[tuple[dict[str, Any], list[Any]]] = []
    for record in records:
        node = nodes[record["id"]]
        parent = nodes.get(record.get("parent_id") or "")
        (parent[1] if parent is not None else roots).append(node)
    return roots


def node_label(record: dict[str, Any]) -> str:
    parts = [f"[{_ICONS.get(record['type'], record['type'].upper())}] {record['name']}",
             f"{record.get('duration_ms', 0):.1f}ms"]
    usage = record.get("usage") or {}
    if isinstance(usage, dict) and usage.get("total"):
        parts.append(f"{usage['total']} tok")
    cost = record.get("cost") or {}
    if isinstance(cost, dict) and cost.get("total"):
        parts.append(f"${cost['total']:.6f}")
    if record.get("model"):
        parts.append(str(record["model"]))
    if record.get("doc_count") is not None:
        parts.append(f"{record['doc_count']} docs")
    if record.get("level") == "ERROR" or record.get("error"):
        parts.append(f"ERROR {short(record.get('status_message'), 50)}")
    return "  ".join(parts)


def render_tree(records: Sequence[dict[str, Any]], io: bool = True) -> str:
    """The typed tree of one trace with latency, tokens, cost and short input/output per node."""
    if not records:
        return "(no observations)"
    first = records[0]
    lines = [f"trace {first['trace_id']}  tenant={first.get('tenant') or '-'}"]

    def walk(nodes: Iterable[tuple[dict[str, Any], list[Any]]], prefix: str) -> None:
        nodes = list(nodes)
        for index, (record, children) in enumerate(nodes):
            last = index == len(nodes) - 1
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{node_label(record)}")
            inner = prefix + ("   " if last else "│  ")
            if io:
                if record.get("input") is not None:
                    lines.append(f"{inner}{'│  ' if children else '   '}in:  {short(record['input'])}")
                if record.get("output") is not None:
                    lines.append(f"{inner}{'│  ' if children else '   '}out: {short(record['output'])}")
            walk(children, inner)

    walk(build_tree(records), "")
    return "\n".join(lines)


def render_traces(summaries: Sequence[dict[str, Any]]) -> str:
    """A table of recent traces."""
    header = f"{'TRACE':32}  {'NAME':24}  {'TENANT':12}  {'DURATION':>10}  {'TOKENS':>7}  {'COST':>10}  ERR"
    rows = [header]
    for s in summaries:
        rows.append(
            f"{s['trace_id']:32}  {short(s.get('name') or '-', 24):24}  {short(s.get('tenant') or '-', 12):12}  "
            f"{s['duration_ms']:>8.1f}ms  {s['tokens']:>7}  {s['cost']:>10.6f}  {s['errors']}"
        )
    return "\n".join(rows)


def render_observations(records: Sequence[dict[str, Any]]) -> str:
    """One line per matching observation."""
    rows = [f"{'TRACE':32}  {'ID':16}  {'TYPE':10}  NAME / DETAILS"]
    for r in records:
        rows.append(f"{r['trace_id']:32}  {r['id']:16}  {r['type']:10}  {node_label(r)}")
    return "\n".join(rows)
