"""OpenAI moderations become guardrail observations: the real SDK against the loopback fake."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

import autotrace
from autotrace.integrations.openai import _extract
from autotrace.replay import replay
from autotrace.testing.fake_openai import MODERATION_CATEGORIES, FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("openai")

FLAGGED = {"flagged": True, "categories": ["harassment"]}
CLEAN = {"flagged": False, "categories": []}


def _only(traced: Traced) -> dict[str, Any]:
    (record,) = traced.records()
    return record


def _metadata(fake: FakeOpenAI, **fields: Any) -> dict[str, Any]:
    """The metadata every moderation records, plus ``fields``."""
    port = fake.base_url.rsplit(":", 1)[1]
    return {"provider": "127.0.0.1", "base_url": f"http://<IP_ADDRESS>:{port}/", "operation": "moderation",
            **fields}


def _verdict(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each recorded result without its scores (checked apart: one per category)."""
    return [{k: v for k, v in result.items() if k != "category_scores"} for result in output]


def _assert_scores(result: dict[str, Any], flagged: set[str]) -> None:
    scores = result["category_scores"]
    assert list(scores) == list(MODERATION_CATEGORIES)
    assert all(type(score) is float for score in scores.values())
    assert {name for name, score in scores.items() if score > 0.5} == flagged


def test_a_flagged_text_is_a_guardrail_that_did_not_pass(traced: Traced, client: openai.OpenAI,
                                                          fake: FakeOpenAI) -> None:
    response = client.moderations.create(input="you idiot")
    assert type(response).__name__ == "ModerationCreateResponse" and response.results[0].flagged is True
    assert response.results[0].categories.harassment is True
    record = _only(traced)
    assert (record["type"], record["name"], record["level"], record["status_message"]) == (
        "guardrail", "openai.moderations", "DEFAULT", None)
    assert record["input"] == "you idiot"
    assert record["model"] == "omni-moderation-2024-09-26"  # returned: the caller asked for no model
    assert record["metadata"] == _metadata(fake, input_count=1, passed=False, modified=False, reason="harassment")
    assert _verdict(record["output"]) == [FLAGGED]
    _assert_scores(record["output"][0], {"harassment"})
    assert record["usage"] is None and record["cost"] is None
    assert fake.requests[-1]["path"] == "/v1/moderations"


def test_a_clean_text_passes_async(traced: Traced, aclient: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    async def call() -> Any:
        return await aclient.moderations.create(input="where is my order", model="text-moderation-latest")

    assert asyncio.run(call()).results[0].flagged is False
    record = _only(traced)
    assert (record["type"], record["name"], record["level"]) == ("guardrail", "openai.moderations", "DEFAULT")
    assert record["input"] == "where is my order" and record["model"] == "text-moderation-007"
    assert record["metadata"] == _metadata(fake, input_count=1, passed=True, modified=False)  # no reason
    assert _verdict(record["output"]) == [CLEAN]
    _assert_scores(record["output"][0], set())


def test_a_list_of_texts_gives_a_reason_per_flagged_input(traced: Traced, client: openai.OpenAI,
                                                          fake: FakeOpenAI) -> None:
    texts = ["hello", "I will kill you", "gore, idiot"]
    response = client.moderations.create(input=texts, model="omni-moderation-latest")
    assert [result.flagged for result in response.results] == [False, True, True]
    record = _only(traced)
    assert record["input"] == texts
    assert record["metadata"] == _metadata(fake, input_count=3, passed=False, modified=False,
                                           reason="input 1: violence; input 2: harassment, violence/graphic")
    assert _verdict(record["output"]) == [CLEAN, {"flagged": True, "categories": ["violence"]},
                                          {"flagged": True, "categories": ["harassment", "violence/graphic"]}]
    _assert_scores(record["output"][2], {"harassment", "violence/graphic"})


def test_a_scripted_verdict_and_flagged_without_a_category(traced: Traced, client: openai.OpenAI,
                                                           fake: FakeOpenAI) -> None:
    """The API's category names are kept (``self-harm/intent``); a result flagged with no category
    true still fails, its reason ``flagged``."""
    fake.script(flagged=[["self-harm/intent", "self-harm"], [], ["a category the SDK does not know"]])
    client.moderations.create(input=["a", "b", "c"])
    record = _only(traced)
    assert record["metadata"]["reason"] == "input 0: self-harm, self-harm/intent; input 2: flagged"
    assert record["metadata"]["passed"] is False and record["metadata"]["input_count"] == 3
    assert _verdict(record["output"]) == [{"flagged": True, "categories": ["self-harm", "self-harm/intent"]},
                                          CLEAN, {"flagged": True, "categories": []}]


def test_a_multimodal_input_notes_its_inline_image(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    image = "data:image/png;base64," + "A" * 4000
    parts = [{"type": "text", "text": "look at this"}, {"type": "image_url", "image_url": {"url": image}}]
    response = client.moderations.create(input=parts, model="omni-moderation-latest")
    assert len(response.results) == 1 and response.results[0].category_applied_input_types.violence == [
        "text", "image"]
    assert fake.requests[-1]["body"]["input"][1]["image_url"]["url"] == image  # the caller's request is unchanged
    record = _only(traced)
    assert record["input"] == [{"type": "text", "text": "look at this"},
                               {"type": "image_url", "image_url": {"url": f"<image/png base64, {len(image)} chars>"}}]
    assert record["metadata"] == _metadata(fake, input_count=1, passed=True, modified=False)


def test_raw_and_streaming_responses(traced: Traced, client: openai.OpenAI, aclient: openai.AsyncOpenAI,
                                       fake: FakeOpenAI) -> None:
    raw = client.moderations.with_raw_response.create(input="kill")
    assert raw.http_response.status_code == 200 and raw.parse().results[0].flagged is True

    async def call() -> Any:
        response = await aclient.moderations.with_raw_response.create(input="fine")
        return response.parse()  # a legacy raw response parses synchronously

    assert asyncio.run(call()).results[0].flagged is False
    with client.moderations.with_streaming_response.create(input="idiot") as streamed:
        assert streamed.parse().results[0].flagged is True  # recorded when the caller parses it
    first, second, third = traced.records()
    assert (first["type"], first["input"], first["model"]) == ("guardrail", "kill", "omni-moderation-2024-09-26")
    assert first["metadata"] == _metadata(fake, input_count=1, passed=False, modified=False, reason="violence")
    assert _verdict(first["output"]) == [{"flagged": True, "categories": ["violence"]}]
    assert (second["type"], second["input"]) == ("guardrail", "fine")
    assert second["metadata"] == _metadata(fake, input_count=1, passed=True, modified=False)
    assert (third["type"], third["input"]) == ("guardrail", "idiot")
    assert third["metadata"] == _metadata(fake, input_count=1, passed=False, modified=False, reason="harassment")


def test_an_http_error_is_an_error_and_reaches_the_caller_unchanged(traced: Traced, client: openai.OpenAI,
                                                                     fake: FakeOpenAI) -> None:
    fake.script(error=(500, "moderation backend down"))
    with pytest.raises(openai.InternalServerError) as raised:
        client.moderations.create(input="hello", model="omni-moderation-latest")
    assert raised.value.status_code == 500 and raised.value.body["message"] == "moderation backend down"
    record = _only(traced)
    assert (record["type"], record["name"], record["level"]) == ("guardrail", "openai.moderations", "ERROR")
    assert record["status_message"].startswith("InternalServerError: Error code: 500")
    assert record["model"] == "omni-moderation-latest"  # requested: nothing was returned
    assert record["input"] == "hello" and record["output"] is None
    assert record["metadata"] == _metadata(fake, input_count=1)  # no verdict


def test_a_moderation_next_to_a_chat_call_in_a_user_span(traced: Traced, client: openai.OpenAI) -> None:
    with autotrace.start_span("turn"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        client.moderations.create(input="echo: hi")
    records = traced.records()
    assert shape(records) == [("span", "turn", [("generation", "openai.chat", []),
                                                ("guardrail", "openai.moderations", [])])]
    guard = records[-1]
    assert guard["metadata"]["passed"] is True and guard["input"] == "echo: hi"


def test_a_users_guardrail_owns_the_moderation_it_runs(traced: Traced, client: openai.OpenAI) -> None:
    """As a user's generation owns the chat call it makes: one guardrail, given the verdict it lacks."""
    with autotrace.start_guardrail("policy", input="you idiot") as guard:
        client.moderations.create(input="you idiot")
        guard.update(output="blocked")
    record = _only(traced)
    assert (record["type"], record["name"], record["model"]) == ("guardrail", "policy",
                                                                 "omni-moderation-2024-09-26")
    assert record["output"] == "blocked"
    assert record["metadata"] == {"passed": False, "modified": False, "reason": "harassment"}


def test_a_frozen_moderation_runs_live_during_a_replay(traced: Traced, client: openai.OpenAI,
                                                       fake: FakeOpenAI) -> None:
    def turn(text: str) -> bool:
        with autotrace.start_chain("turn"):
            verdict = client.moderations.create(input=text)
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])
        return verdict.results[0].flagged

    turn("you idiot")
    original = traced.records()
    target = next(r for r in original if r["name"] == "openai.chat")
    before = len(fake.requests)
    result = replay(original, target["id"], turn, "you idiot")
    assert result.reached and result.result is True
    assert [request["path"] for request in fake.requests[before:]] == ["/v1/moderations", "/v1/chat/completions"]
    replayed = traced.trace(result.trace_id)
    assert shape(replayed) == shape(original)
    guard = next(r for r in replayed if r["type"] == "guardrail")
    assert guard["replay_of"] == original[0]["trace_id"] and "replay" not in guard["metadata"]
    assert guard["metadata"]["reason"] == "harassment"


def test_moderations_are_matched_last() -> None:
    """Chat and embedding requests find their endpoint before moderations are tried."""
    assert list(_extract.ENDPOINTS)[-1] == "/moderations"
    assert _extract.endpoint("/moderations") == ("moderation", "openai.moderations", "guardrail")
