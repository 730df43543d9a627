"""The README quick start, runnable: a retrieval and a tool call for one tenant, into the local store.

    python examples/quickstart.py && autotrace traces
"""

from __future__ import annotations

import autotrace


def search(question: str) -> list[dict[str, object]]:
    return [{"id": "kb-1", "content": "Orders ship within 24 hours.", "score": 0.92}]


@autotrace.traced_tool
def issue_refund(order_id: str) -> dict[str, str]:
    return {"order_id": order_id, "status": "refunded"}


def main() -> None:
    autotrace.install()
    question = "When does order 7 ship?"
    with autotrace.tenant("acme"), autotrace.start_agent("support-turn", input=question) as turn:
        with autotrace.start_retrieval("knowledge-search", query=question, top_k=5) as span:
            documents = search(question)
            span.update(documents=documents, doc_count=len(documents))
        issue_refund("order-7")
        turn.set_output("It ships today.")
    autotrace.shutdown()
    print(f"traced {turn.trace_id}")


if __name__ == "__main__":
    main()
