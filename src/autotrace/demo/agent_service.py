"""The agent service: one support turn per customer message. Intent detection, knowledge
retrieval from the RAG service over gRPC, an answer with a refund tool, a guardrail that may
rewrite the answer. Run it with ``autotrace run``; it contains no tracing code of its own beyond
the tenant, the guardrail and the tool, which are application steps only it knows about.

    autotrace run -- python -m autotrace.demo.agent_service --rag 127.0.0.1:50551 --openai URL
"""

from __future__ import annotations

import argparse
import json
import re
import zlib
from typing import Any

import grpc
import openai

import autotrace

from .common import RETRIEVE, TENANTS, dumps, loads

_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
REFUND_TOOL = {"type": "function", "function": {
    "name": "issue_refund", "description": "Refund an order",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}, "amount": {"type": "number"}}},
}}


@autotrace.traced_tool
def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
    """The refund tool the model may call."""
    # crc32, not hash(): str hashes differ per process, and the demo prints the same every run
    return {"refund_id": f"R-{zlib.crc32(order_id.encode()) % 10_000:04d}", "order_id": order_id, "amount": amount}


def guardrail(answer: str) -> str:
    """Never repeat a card number back to the customer."""
    with autotrace.start_guardrail("card-number-guard", input=answer) as guard:
        safe = _CARD.sub("[card on file]", answer)
        guard.update(output=safe, passed=safe == answer, modified=safe != answer,
                     reason="card number removed" if safe != answer else None)
        return safe


def handle_turn(message: str, llm: openai.OpenAI, retrieve: Any) -> str:
    with autotrace.start_agent("support-agent", input=message) as agent:
        intent = llm.chat.completions.create(model="gpt-4o-mini", messages=[
            {"role": "system", "content": "Classify the customer's intent."},
            {"role": "user", "content": message}]).choices[0].message.content
        documents = retrieve({"query": message})["documents"]
        context = " ".join(d["content"] for d in documents)
        messages: list[Any] = [{"role": "system", "content": f"Answer briefly. Intent: {intent}. Context: {context}"},
                               {"role": "user", "content": message}]
        reply = llm.chat.completions.create(model="gpt-4o", messages=messages, tools=[REFUND_TOOL]).choices[0].message
        if reply.tool_calls:
            call = reply.tool_calls[0]
            result = issue_refund(**json.loads(call.function.arguments))
            messages += [reply.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}]
            reply = llm.chat.completions.create(model="gpt-4o", messages=messages, tools=[REFUND_TOOL]).choices[0].message
        answer = guardrail(reply.content or "")
        agent.set_output(answer)
        return answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rag", required=True)
    parser.add_argument("--openai", required=True)
    args = parser.parse_args()
    llm = openai.OpenAI(base_url=args.openai, api_key="sk-demo", max_retries=0)
    with grpc.insecure_channel(args.rag) as channel:
        retrieve = channel.unary_unary(RETRIEVE, request_serializer=dumps, response_deserializer=loads)
        for tenant, message in TENANTS.items():
            with autotrace.tenant(tenant), autotrace.trace_attributes(name="support-turn", user_id=f"{tenant}-user-1"):
                with autotrace.start_chain("customer-turn", input=message) as turn:
                    answer = handle_turn(message, llm, retrieve)
                    turn.set_output(answer)
                    print(json.dumps({"tenant": tenant, "trace_id": turn.trace_id, "answer": answer}), flush=True)


if __name__ == "__main__":
    main()
