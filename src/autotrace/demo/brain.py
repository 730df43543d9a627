"""The deterministic "model" behind the demo's loopback OpenAI server: intent detection, answers
grounded in the retrieved context, and a refund tool call when the customer asks for one."""

from __future__ import annotations

import json
from typing import Any

from ..testing.fake_openai import Script


def _text(messages: list[dict[str, Any]], role: str) -> str:
    return " ".join(str(m.get("content") or "") for m in messages if m.get("role") == role)


def respond(body: dict[str, Any]) -> Script | None:
    """Answer a chat request the way a well-behaved support model would."""
    messages = body.get("messages")
    if not messages:  # embeddings and other endpoints keep the server's defaults
        return None
    system, user = _text(messages, "system"), _text(messages, "user")
    if "intent" in system:
        intent = "refund_request" if "refund" in user.lower() else "order_status"
        return Script(reply=intent, usage=(len(user.split()) + 20, 2), model="gpt-4o-mini-2024-07-18")
    if any(m.get("role") == "tool" for m in messages):
        result = json.loads(next(m["content"] for m in messages if m.get("role") == "tool"))
        return Script(reply=f"Refund {result['refund_id']} ({result['amount']} EUR) is on its way. "
                            "Questions: support@example.com", usage=(180, 24),
                      model="gpt-4o-2024-08-06")
    if body.get("tools") and "refund" in user.lower():
        order = next((w.strip(",.") for w in user.split() if "-" in w and w[0].isalpha()), "unknown")
        arguments = json.dumps({"order_id": order, "amount": 49.9})
        return Script(tool_calls=[{"name": "issue_refund", "arguments": arguments}], usage=(160, 18),
                      model="gpt-4o-2024-08-06")
    context = system.split("Context:", 1)[-1].strip()
    return Script(reply=f"Your card 4111 1111 1111 1111 was not charged again. {context.split('.')[0]}.",
                  usage=(150, 30), model="gpt-4o-2024-08-06")
