"""The single-service demo: one customer-support agent turn traced with the manual API.

Intent detection, knowledge retrieval, answer generation, a guardrail that rewrites the answer,
and a refund tool call, written to the embedded local store and printed as a tree.
"""

from __future__ import annotations

import time
from pathlib import Path

import autotrace

from . import render

_KNOWLEDGE = [
    ("kb-17", "Duplicate charges are refunded automatically within 5 business days.", 0.91),
    ("kb-03", "Refunds go back to the original payment method.", 0.84),
    ("kb-42", "Contact support with the order id to speed up a refund.", 0.62),
]


def _fake_model(prompt: str) -> tuple[str, dict[str, int]]:
    """A deterministic stand-in for a model call (the two-service demo talks to a real client)."""
    time.sleep(0.002)
    words = len(prompt.split())
    if "intent" in prompt:
        return "refund_request", {"input": words, "output": 1, "total": words + 1}
    answer = ("I see a duplicate charge on card 4111 1111 1111 1111. It will be refunded within 5 business "
              "days; I have opened refund R-1001 for you.")
    return answer, {"input": words, "output": len(answer.split()), "total": words + len(answer.split())}


@autotrace.traced_tool(name="issue_refund")
def issue_refund(order_id: str, amount: float) -> dict[str, object]:
    """The refund tool the agent calls."""
    return {"refund_id": "R-1001", "order_id": order_id, "amount": amount, "status": "queued"}


def agent_turn(message: str) -> str:
    """One agent turn, every step a typed observation."""
    with autotrace.start_agent("support-agent", input=message) as agent:
        with autotrace.start_generation("intent-detection", model="demo-intent-1",
                                        input=[{"role": "user", "content": f"intent of: {message}"}],
                                        prompt={"name": "intent", "version": 3}) as gen:
            intent, usage = _fake_model(f"intent of: {message}")
            gen.update(output=intent, usage=usage, cost=0.000012)
        with autotrace.start_retrieval("knowledge-search", query=message, top_k=3, store="faq",
                                       collection="billing") as retrieval:
            documents = [{"id": i, "content": c, "score": s} for i, c, s in _KNOWLEDGE]
            retrieval.update(documents=documents, doc_count=len(documents), scores=[s for _, _, s in _KNOWLEDGE])
        context = " ".join(d["content"] for d in documents)
        with autotrace.start_generation("answer", model="demo-chat-1", model_parameters={"temperature": 0.2},
                                        prompt={"name": "support-answer", "version": 7}) as gen:
            gen.set_input([{"role": "system", "content": context}, {"role": "user", "content": message}])
            draft, usage = _fake_model(f"{context} {message}")
            gen.update(output=draft, usage=usage, cost=0.000231, finish_reason="stop")
        with autotrace.start_guardrail("pii-guard", input=draft) as guard:
            safe = draft.replace("4111 1111 1111 1111", "ending 1111")
            guard.update(output=safe, passed=True, modified=safe != draft, reason="masked card number")
        refund = issue_refund("order-77", 42.5)
        answer = f"{safe} (refund {refund['refund_id']})"
        agent.set_output(answer)
        return answer


def run_demo(db: str | Path | None = None) -> int:
    """Run one traced agent turn into the local store and print its tree."""
    options: dict[str, object] = {"local_store": "on", "integrations": ()}
    if db is not None:
        options["local_store_path"] = Path(db)
    settings = autotrace.install(**options)
    try:
        with autotrace.tenant("acme"), autotrace.trace_attributes(name="support-turn", user_id="user-42",
                                                                   session_id="session-1"):
            with autotrace.start_chain("customer-turn", input="I was charged twice for order-77") as root:
                answer = agent_turn("I was charged twice for order-77. Refund please?")
                root.set_output(answer)
                trace_id = root.trace_id
        autotrace.flush(10)
        store = autotrace.local_store()
        assert store is not None
        print(render.render_tree(store.trace(trace_id)))
        print(f"\nstored in {settings.local_store_path}; try: autotrace show {trace_id[:12]}")
    finally:
        autotrace.uninstall()
    return 0
