"""A multi-step pipeline used by the replay tests (also runnable as a program under ``autotrace run``)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

import openai

import autotrace
from autotrace.testing.fake_openai import FakeOpenAI, Script

CALLS: Counter[str] = Counter()
KNOWLEDGE = {"shipping": [{"id": "kb-1", "content": "Orders ship in 24h.", "score": 0.9}]}


def brain(body: dict[str, Any]) -> Script | None:
    """Replies that depend on the model, so a replay with another model answers differently."""
    model = body.get("model")
    system = str(body["messages"][0]["content"]) if body.get("messages") else ""
    if "intent" in system:
        return Script(reply="shipping", usage=(20, 1))
    return Script(reply=f"[{model} t={body.get('temperature', 1)}] Your order ships today.", usage=(60, 12))


@autotrace.observe(as_type="retriever", name="search")
def search(topic: str) -> list[dict[str, Any]]:
    CALLS["search"] += 1
    return KNOWLEDGE.get(topic, [])


@autotrace.traced_tool(name="lookup_order")
def lookup_order(order_id: str) -> dict[str, str]:
    CALLS["lookup_order"] += 1
    return {"order_id": order_id, "status": "packed"}


@autotrace.observe(as_type="evaluator", name="mentions_shipping")
def judge(answer: str, target: autotrace.Observation) -> float:
    return 1.0 if "ships" in answer else 0.0


def pipeline(client: openai.OpenAI, question: str, prompt_version: int = 1) -> str:
    with autotrace.start_chain("support-turn", input=question) as turn:
        intent = client.chat.completions.create(model="gpt-4o-mini", messages=[
            {"role": "system", "content": "Classify the intent."}, {"role": "user", "content": question}],
        ).choices[0].message.content
        documents = search(intent)
        order = lookup_order("o-7")
        with autotrace.start_generation("answer-step", prompt={"name": "answer", "version": prompt_version}) as step:
            answer = client.chat.completions.create(model="gpt-4o-mini", temperature=0.2, messages=[
                {"role": "system", "content": f"Answer. Context: {documents} Order: {order}"},
                {"role": "user", "content": question}]).choices[0].message.content
            step.set_output(answer)
            judge(answer, step)
        turn.set_output(answer)
        return answer


if __name__ == "__main__":
    with FakeOpenAI(responder=brain) as fake:
        result = pipeline(openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0), "where is my order?")
        print(json.dumps({"answer": result, "calls": dict(CALLS), "requests": len(fake.requests)}))
    sys.exit(0)
