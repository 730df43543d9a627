"""The same pipeline written twice: with the official Langfuse SDK and with autotrace.

A chain with a generation, a retrieval and a tool call, under trace-level user, session and name.
The conformance test runs each against a loopback receiver and compares what arrives.
"""

from __future__ import annotations

import sys

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "where is my order?"}]
ANSWER = {"role": "assistant", "content": "It ships today."}
DOCS = [{"id": "d1", "score": 0.9, "content": "Orders ship in 24h."}]
USAGE = {"input": 12, "output": 5, "total": 17}
COST = {"input": 0.0001, "output": 0.0002, "total": 0.0003}


def run_langfuse(base_url: str) -> None:
    from langfuse import Langfuse, propagate_attributes

    client = Langfuse(public_key="pk-lf-conformance", secret_key="sk-lf-conformance", base_url=base_url)
    with client.start_as_current_observation(name="pipeline", as_type="chain", input={"question": "where?"}) as chain:
        with propagate_attributes(user_id="user-1", session_id="session-1", trace_name="support-turn"):
            with client.start_as_current_observation(
                name="answer", as_type="generation", model="gpt-4o-mini", input=MESSAGES,
                model_parameters={"temperature": 0.2},
            ) as gen:
                gen.update(output=ANSWER, usage_details=USAGE, cost_details=COST,
                           metadata={"finish_reason": "stop"})
            with client.start_as_current_observation(name="search", as_type="retriever", input="where?") as ret:
                ret.update(output=DOCS, metadata={"top_k": 3, "doc_count": 1})
            with client.start_as_current_observation(name="lookup", as_type="tool", input={"order": 7}) as tool:
                tool.update(output={"status": "shipped"}, metadata={"tool_name": "lookup"})
            chain.update(output="It ships today.")
    client.flush()
    client.shutdown()


def run_autotrace() -> None:
    import autotrace

    with autotrace.start_chain("pipeline", input={"question": "where?"}) as chain:
        with autotrace.trace_attributes(user_id="user-1", session_id="session-1", name="support-turn"):
            with autotrace.start_generation("answer", model="gpt-4o-mini", input=MESSAGES,
                                            model_parameters={"temperature": 0.2}) as gen:
                gen.update(output=ANSWER, usage=USAGE, cost=COST, finish_reason="stop")
            with autotrace.start_retrieval("search", query="where?", top_k=3) as ret:
                ret.update(documents=DOCS, doc_count=1)
            with autotrace.start_tool("lookup", arguments={"order": 7}) as tool:
                tool.update(result={"status": "shipped"})
            chain.set_output("It ships today.")


if __name__ == "__main__":
    run_langfuse(sys.argv[1])
