"""OpenAI calls the sixteenth review found recorded short or not at all. Real SDK over HTTP to the loopback
fake (or, for a reply the fake does not give or a host it cannot be, to a mock transport)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest

import autotrace
from autotrace.replay import replay
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

PHOTO = "data:image/png;base64," + "iVBORw0KGgo" * 40


def test_a_stored_prompt_is_recorded_as_the_input_with_its_variables(traced: Traced, client: openai.OpenAI,
                                                                     fake: FakeOpenAI) -> None:
    """``responses.create(prompt=...)`` runs a prompt stored at OpenAI, filled in with the
    variables given; often with no ``input`` (nor ``model``) at all. The prompt reference and its
    variables are what the model was given: recorded with the input, an image variable noted."""
    prompt = {"id": "pmpt_support", "version": "3",
              "variables": {"customer": "Ada", "photo": {"type": "input_image", "image_url": PHOTO}}}
    fake.script(reply="Hello Ada", usage=(20, 3))
    assert client.responses.create(prompt=prompt).output_text == "Hello Ada"  # type: ignore[arg-type]
    fake.script(reply="Sure", usage=(25, 1))
    client.responses.create(prompt={"id": "pmpt_support"}, input="and then?", instructions="be brief")
    first, second = traced.records()
    noted = f"<image/png base64, {len(PHOTO)} chars>"
    assert first["input"] == {"prompt": {"id": "pmpt_support", "version": "3", "variables": {
        "customer": "Ada", "photo": {"type": "input_image", "image_url": noted}}}, "input": None}
    assert (first["output"], first["usage"]["input"]) == ("Hello Ada", 20)
    assert second["input"] == {"prompt": {"id": "pmpt_support"}, "instructions": "be brief", "input": "and then?"}
    assert fake.requests[0]["body"]["prompt"]["variables"]["photo"]["image_url"] == PHOTO  # sent as given


@pytest.mark.parametrize(("host", "provider"), [
    ("myres.openai.azure.com", "azure"), ("myres.cognitiveservices.azure.com", "azure"),
    ("myproj.services.ai.azure.com", "azure"), ("api.openai.com", "openai"), ("llm.example", "llm.example"),
])
def test_the_plain_client_on_azures_v1_api_is_azure(traced: Traced, host: str, provider: str) -> None:
    """Azure OpenAI's v1 API is called with the plain ``OpenAI`` client (``base_url=
    https://<resource>.openai.azure.com/openai/v1/``): its calls are Azure's, as an
    ``AzureOpenAI`` client's are, not a compatible server's named after the resource's host."""
    reply = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-11-20",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=reply))
    with openai.OpenAI(base_url=f"https://{host}/openai/v1/", api_key="k", max_retries=0,
                       http_client=httpx2.Client(transport=transport)) as client:
        assert client.chat.completions.create(model="prod-chat", messages=[{"role": "user", "content": "x"}]).id
    record = traced.one()
    assert (record["metadata"]["provider"], record["model"]) == (provider, "gpt-4o-2024-11-20")


def test_the_beta_responses_resource_is_traced_as_the_responses_api(traced: Traced, client: openai.OpenAI,
                                                                    fake: FakeOpenAI) -> None:
    """``client.beta.responses`` (the Responses API's beta features: multi-agent, ...) posts to
    ``/responses?beta=true`` and answers ``BetaResponse``s, which have no ``output_text``: its
    calls, streams, background replies and compactions are recorded as ``client.responses``' are."""
    fake.script(reply="hello there", usage=(7, 2))
    assert client.beta.responses.create(model="gpt-4.1", input="hi").output[0].content[0].text == "hello there"
    fake.script(reply="streamed", usage=(8, 1), chunks=2)
    events = [event.type for event in client.beta.responses.create(model="gpt-4.1", input="hi", stream=True)]
    assert events[-1] == "response.completed"
    fake.background_polls = 0
    fake.script(reply="later", usage=(9, 3))
    queued = client.beta.responses.create(model="gpt-4.1", input="hi", background=True)
    assert client.beta.responses.retrieve(queued.id).status == "completed"
    client.beta.responses.compact(model="gpt-4.1", input=[{"role": "user", "content": "hi"}])
    assert [r["path"] for r in fake.requests] == ["/v1/responses"] * 3 + ["/v1/responses/resp_bg_1",
                                                                         "/v1/responses/compact"]
    records = {r["name"] + ("" if r["name"] != "openai.responses" else f"-{r['metadata']['finish_reason']}"): r
               for r in traced.records()}
    assert sorted(records) == ["openai.responses-completed", "openai.responses-queued",
                               "openai.responses.background", "openai.responses.compact"]
    created, background = records["openai.responses-queued"], records["openai.responses.background"]
    assert (background["output"], background["usage"]["input"], background["parent_id"]) == (
        "later", 9, created["id"])
    assert records["openai.responses.compact"]["usage"]["output"] == 12
    answered = [r for r in traced.records() if r["metadata"].get("finish_reason") == "completed"
                and r["name"] == "openai.responses"]
    assert sorted((r["output"], r["usage"]["input"], r["model_parameters"]) for r in answered) == [
        ("hello there", 7, None), ("streamed", 8, {"stream": True})]
    assert all(r["cost"]["total"] > 0 for r in answered)


def test_a_beta_reply_that_calls_a_tool_is_its_items(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(tool_calls=[{"name": "lookup", "arguments": '{"id": 1}'}])
    client.beta.responses.create(model="gpt-4.1", input="hi")
    assert [item["type"] for item in traced.one()["output"]] == ["function_call"]


async def test_an_async_beta_responses_call_is_traced(traced: Traced, aclient: openai.AsyncOpenAI,
                                                     fake: FakeOpenAI) -> None:
    fake.script(reply="async hello", usage=(5, 2))
    await aclient.beta.responses.create(model="gpt-4.1", input="hi")
    record = traced.one()
    assert (record["name"], record["output"], record["usage"]["total"]) == ("openai.responses", "async hello", 7)


def test_a_beta_responses_call_is_frozen_in_a_replay(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """Recorded as ``client.responses``' are, a beta call is served from its recording in a replay."""
    def turn(sdk: openai.OpenAI) -> str:
        with autotrace.start_chain("turn"):
            text = sdk.beta.responses.create(model="gpt-4.1", input="hi").output[0].content[0].text
            autotrace.event("answer")
        return text

    fake.script(reply="recorded")
    assert turn(client) == "recorded"
    assert autotrace.flush(5)
    original = traced.trace(autotrace.local_store().traces(limit=1)[0]["trace_id"])  # type: ignore[union-attr]
    result = replay(original, next(r["id"] for r in original if r["name"] == "answer"), turn, client)
    assert (result.result, len(fake.requests)) == ("recorded", 1)
    assert [(r["name"], (r["metadata"] or {}).get("replay")) for r in traced.trace(result.trace_id)] == [
        ("turn", None), ("openai.responses", "frozen"), ("answer", None)]


_INCOMPLETE = {"id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-4.1", "status": "incomplete",
               "incomplete_details": {"reason": "content_filter"}, "parallel_tool_calls": True,
               "tool_choice": "auto", "tools": [],
               "output": [{"type": "message", "id": "m", "role": "assistant", "status": "incomplete",
                           "content": [{"type": "output_text", "text": "Here is how", "annotations": []}]}],
               "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8,
                         "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}}


def _sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


@pytest.mark.parametrize("stream", [False, True])
def test_an_incomplete_responses_reply_says_why_it_stopped(traced: Traced, stream: bool) -> None:
    """A Responses reply cut short is ``incomplete`` whatever stopped it: its reason (the output
    limit, or the content filter) is what a chat reply's finish reason (``length``,
    ``content_filter``) says, recorded as ``metadata.incomplete_reason``."""
    started = {**_INCOMPLETE, "status": "in_progress", "incomplete_details": None, "output": [], "usage": None}
    body = _sse({"type": "response.created", "sequence_number": 0, "response": started},
                {"type": "response.incomplete", "sequence_number": 1, "response": _INCOMPLETE})

    def reply(request: httpx2.Request) -> httpx2.Response:
        if stream:
            return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})
        return httpx2.Response(200, json=_INCOMPLETE)

    with openai.OpenAI(base_url="http://llm.test/v1", api_key="k", max_retries=0,
                       http_client=httpx2.Client(transport=httpx2.MockTransport(reply))) as client:
        result = client.responses.create(model="gpt-4.1", input="how do I", stream=stream)
        assert (list(result)[-1].response if stream else result).status == "incomplete"  # type: ignore[union-attr]
    record = traced.one()
    assert (record["level"], record["output"], record["usage"]["output"]) == ("DEFAULT", "Here is how", 3)
    assert (record["metadata"]["finish_reason"], record["metadata"]["incomplete_reason"]) == (
        "incomplete", "content_filter")
