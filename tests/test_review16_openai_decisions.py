"""``client.decisions`` (questions about an input, answered by a model and billed by tokens) is a
generation like any other model call. Real SDK over HTTP to the loopback fake."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from autotrace.integrations.openai import pricing
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

PHOTO = "data:image/png;base64," + "iVBORw0KGgo" * 40
QUESTIONS: list[Any] = [
    {"type": "predicate", "name": "urgent", "instructions": "Is the customer's issue urgent?"},
    {"type": "choice", "name": "team", "instructions": "Which team should handle it?",
     "choices": [{"value": "billing"}, {"value": "shipping"}]},
]


def test_a_decision_is_a_generation_with_its_questions_answers_usage_and_cost(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(usage=(120, 2), cached_tokens=100)
    given = [{"role": "user", "content": [{"type": "input_text", "text": "my parcel is lost"},
                                          {"type": "input_image", "image_url": PHOTO}]}]
    decision = client.decisions.create(model="gpt-6-luna", input=given, questions=QUESTIONS)  # type: ignore[arg-type]
    assert [(answer.type, answer.name) for answer in decision.answers] == [("predicate", "urgent"),
                                                                         ("choice", "team")]
    record = traced.one()
    assert (record["name"], record["type"], record["level"], record["model"]) == (
        "openai.decisions", "generation", "DEFAULT", "gpt-6-luna")
    noted = f"<image/png base64, {len(PHOTO)} chars>"
    assert record["input"] == {"questions": QUESTIONS, "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "my parcel is lost"}, {"type": "input_image", "image_url": noted}]}]}
    assert record["output"] == [
        {"type": "predicate", "name": "urgent", "probability": 0.9},
        {"type": "choice", "name": "team", "choice": "billing", "confidence": 0.8,
         "probabilities": [{"value": "billing", "probability": 0.8}]}]
    assert record["usage"] == {"input": 120, "output": 2, "total": 122, "input_cached_tokens": 100,
                               "input_cache_write_tokens": 0, "output_reasoning_tokens": 0}
    assert record["cost"] == pricing.cost("gpt-6-luna", record["usage"]) and record["cost"]["total"] > 0
    assert record["metadata"]["operation"] == "decision"
    assert fake.requests[0]["body"]["input"][0]["content"][1]["image_url"] == PHOTO  # sent as given


async def test_an_async_decision_that_fails_is_an_error(traced: Traced, aclient: openai.AsyncOpenAI,
                                                       fake: FakeOpenAI) -> None:
    fake.script(error=(400, "Only gpt-6-luna is supported"))
    with pytest.raises(openai.BadRequestError):
        await aclient.decisions.create(model="gpt-4o", input="x", questions=QUESTIONS)  # type: ignore[arg-type]
    record = traced.one()
    assert (record["name"], record["level"], record["model"]) == ("openai.decisions", "ERROR", "gpt-4o")
    assert record["status_message"] == "BadRequestError: Error code: 400 - Only gpt-6-luna is supported"
