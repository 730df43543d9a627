"""The two-service demo end to end: two processes started with ``autotrace run``, one stitched
trace per tenant (the RAG server's root under the agent's gRPC client span), tenants separate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autotrace.demo import run_demo
from autotrace.export.local_store import LocalStore
from tests.helpers import shape

RPC = "rag.Knowledge/Retrieve"


def test_two_services_two_tenants_stitched_and_separate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "demo db"
    assert run_demo(db=db) == 0
    # the commands it suggests read the store it wrote, not the default one
    hint = capsys.readouterr().out.strip().splitlines()[-1]
    assert hint == (f"stored in {db}. Try: autotrace --db '{db}' traces   |   autotrace --db '{db}' show <trace id>"
                    f"   |   autotrace --db '{db}' query 'type=generation and usage.total>150'")
    store = LocalStore(db)
    summaries = {s["tenant"]: s for s in store.traces()}
    assert set(summaries) == {"acme", "globex", None}
    # the RAG service embeds its knowledge base at start-up, outside any request: no tenant
    assert shape(store.trace(summaries[None]["trace_id"])) == [("embedding", "openai.embeddings", [])]
    retrieval = ("span", RPC, [("span", RPC, [("retriever", "FaissRetriever", [("embedding", "openai.embeddings", [])])])])
    acme = store.trace(summaries["acme"]["trace_id"])
    assert shape(acme) == [("chain", "customer-turn", [("agent", "support-agent", [
        ("generation", "openai.chat", []),
        retrieval,
        ("generation", "openai.chat", []),
        ("tool", "issue_refund", []),
        ("generation", "openai.chat", []),
        ("guardrail", "card-number-guard", []),
    ])])]
    globex = store.trace(summaries["globex"]["trace_id"])
    assert shape(globex) == [("chain", "customer-turn", [("agent", "support-agent", [
        ("generation", "openai.chat", []),
        retrieval,
        ("generation", "openai.chat", []),
        ("guardrail", "card-number-guard", []),
    ])])]
    for tenant, records in (("acme", acme), ("globex", globex)):
        assert {r["tenant"] for r in records} == {tenant}
        assert len({r["trace_id"] for r in records}) == 1
        assert {r["service"] for r in records} == {"agent-service", "rag-service"}
        client, server = (r for r in records if r["name"] == RPC)
        assert server["parent_id"] == client["id"]
        assert client["service"] == "agent-service" and server["service"] == "rag-service"
    guard = next(r for r in globex if r["type"] == "guardrail")
    assert guard["metadata"] == {"passed": False, "modified": True, "reason": "card number removed"}
    assert "[card on file]" in guard["output"]
    refund = next(r for r in acme if r["type"] == "tool")
    assert refund["input"] == {"order_id": "A-1001", "amount": 49.9}
    retriever = next(r for r in acme if r["type"] == "retriever")
    assert retriever["doc_count"] == 2 and retriever["output"][0]["id"] == "kb-refund-2"
    # PII from the customer's message never reached the store
    stored = json.dumps(acme)  # ids and timings are random digits: look for the card itself
    assert "4111 1111" not in stored and "41111111" not in stored and "<CREDIT_CARD>" in stored
