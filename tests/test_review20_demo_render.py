"""``show``'s tree makes a guardrail's verdict and a trace's service hops visible: the demo's guard
rewrites a card number past the previews' first characters, and its gRPC client and server spans
carry the same name, so neither was told apart before."""

from __future__ import annotations

from typing import Any

from autotrace import render


def _record(id_: str, parent: str | None, service: str | None, **fields: Any) -> dict[str, Any]:
    return {"trace_id": "t" * 32, "id": id_, "parent_id": parent, "service": service, "type": "span",
            "name": id_, "duration_ms": 1.0, **fields}


def test_a_guardrail_line_gives_its_verdict() -> None:
    guard = _record("g", None, None, type="guardrail", name="card-guard",
                    metadata={"passed": False, "modified": True, "reason": "card number removed"})
    assert render.node_label(guard) == "[GUARD] card-guard  1.0ms  not passed, modified: card number removed"
    guard["metadata"] = {"passed": True, "modified": False, "reason": None}
    assert render.node_label(guard) == "[GUARD] card-guard  1.0ms  passed"
    guard["metadata"] = {"reason": "policy\x1b"}  # no verdict recorded: the reason alone, escaped
    assert render.node_label(guard) == "[GUARD] card-guard  1.0ms  policy\\x1b"
    guard["metadata"] = {"passed": "yes"}  # not a verdict: nothing claimed
    assert render.node_label(guard) == "[GUARD] card-guard  1.0ms"
    span = _record("s", None, None, metadata={"passed": False})  # only guardrails have a verdict
    assert render.node_label(span) == "[SPAN] s  1.0ms"


def test_the_tree_names_the_service_where_it_changes() -> None:
    records = [_record("client", None, "agent"), _record("server", "client", "rag"),
               _record("inner", "server", "rag"), _record("back", "client", "agent")]
    assert render.render_tree(records, io=False).splitlines()[1:] == [
        "└─ [SPAN] client  1.0ms  service=agent  #client",
        "   ├─ [SPAN] server  1.0ms  service=rag  #server",
        "   │  └─ [SPAN] inner  1.0ms  #inner",
        "   └─ [SPAN] back  1.0ms  #back",
    ]


def test_a_trace_of_one_service_names_none() -> None:
    records = [_record("a", None, "agent"), _record("b", "a", "agent"), _record("c", "a", None)]
    assert render.render_tree(records, io=False).splitlines()[1:] == [
        "└─ [SPAN] a  1.0ms  #a", "   ├─ [SPAN] b  1.0ms  #b", "   └─ [SPAN] c  1.0ms  #c"]
