"""OpenAI calls as a demanding user makes them: Azure OpenAI (endpoint or base URL), the SDK's
structured-output helpers, refusals (streamed or not), Responses API calls that continue a
conversation, run in the background, call custom tools or generate images, and failures retried
by the SDK. The caller gets what the SDK alone would give; the record says what happened."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pydantic
import pytest

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, sse_data

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "where is my order"}]
REFUSAL = "I can't help with that."
_RESPONSE = {"id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-5-2025-08-07",
             "status": "completed", "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "output": [],
             "usage": {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30,
                       "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 8}}}
_REASONING = {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}]}


class Order(pydantic.BaseModel):
    city: str
    items: int



def _client(reply: Callable[[dict[str, Any]], httpx2.Response]) -> openai.OpenAI:
    """A client whose requests reach ``reply`` (the request body -> the response)."""
    transport = httpx2.MockTransport(lambda request: reply(json.loads(request.content)))
    return openai.OpenAI(api_key="sk-test", base_url="http://llm.test/v1", max_retries=0,
                         http_client=httpx2.Client(transport=transport))


# -- Azure OpenAI ------------------------------------------------------------------------------------
@pytest.mark.parametrize("via", ["azure_endpoint", "base_url"])
def test_azure_calls_are_recorded_as_openais_with_the_provider_azure(traced: Traced, fake: FakeOpenAI,
                                                                     via: str) -> None:
    """Chat, stream, embeddings and Responses on an Azure client: the deployment is the requested
    model, the returned model (Azure's own name for GPT-3.5 included) is priced."""
    if via == "azure_endpoint":
        azure = openai.AzureOpenAI(azure_endpoint=fake.root_url, api_version="2024-10-21", api_key="x", max_retries=0)
        base_url = fake.root_url + "/openai/"
    else:
        base_url = fake.root_url + "/openai/deployments/prod-chat/"
        azure = openai.AzureOpenAI(base_url=base_url, api_version="2024-10-21", api_key="x", max_retries=0)
    fake.script(model="gpt-35-turbo", usage=(1000, 100))
    azure.chat.completions.create(model="prod-chat", messages=MESSAGES)
    fake.script(model="gpt-4o-2024-08-06", usage=(1000, 100), reply="on its way", chunks=2)
    chunks = list(azure.chat.completions.create(model="prod-chat", messages=MESSAGES, stream=True))
    fake.script(model="text-embedding-3-small")
    azure.embeddings.create(model="prod-embed", input=["a b", "c"])
    fake.script(model="gpt-4.1-2025-04-14", usage=(1000, 100), reply="shipped")
    azure.responses.create(model="prod-chat", input="where is it")
    assert [c.choices[0].delta.content for c in chunks] == ["", "on it", "s way", None]  # no usage chunk
    chat, stream, embedding, response = traced.records()
    recorded_url = base_url.replace("127.0.0.1", "<IP_ADDRESS>")  # the store's redaction of addresses
    for record in (chat, stream, embedding, response):
        assert record["metadata"]["provider"] == "azure" and record["metadata"]["base_url"] == recorded_url
    assert (chat["model"], chat["usage"]["input"], chat["cost"]) == (
        "gpt-35-turbo", 1000, pytest.approx({"input": 0.0005, "output": 0.00015, "total": 0.00065}))
    assert (stream["model"], stream["output"], stream["metadata"]["finish_reason"]) == (
        "gpt-4o-2024-08-06", {"role": "assistant", "content": "on its way"}, "stop")
    assert stream["cost"] == pytest.approx({"input": 0.0025, "output": 0.001, "total": 0.0035})
    assert (embedding["type"], embedding["model"], embedding["output"], embedding["metadata"]["input_count"]) == (
        "embedding", "text-embedding-3-small", {"count": 2}, 2)
    assert embedding["cost"]["total"] > 0
    assert (response["name"], response["model"], response["output"]) == ("openai.responses", "gpt-4.1-2025-04-14",
                                                                         "shipped")
    assert response["cost"] == pytest.approx({"input": 0.002, "output": 0.0008, "total": 0.0028})
    deployment = "prod-chat" if via == "base_url" else "prod-embed"
    assert [r["path"] for r in fake.requests] == [
        "/openai/deployments/prod-chat/chat/completions", "/openai/deployments/prod-chat/chat/completions",
        f"/openai/deployments/{deployment}/embeddings",
        "/openai/deployments/prod-chat/responses" if via == "base_url" else "/openai/responses"]


# -- structured outputs and refusals -----------------------------------------------------------------
def test_each_structured_output_helper_is_one_generation(traced: Traced, client: openai.OpenAI,
                                                         fake: FakeOpenAI) -> None:
    reply = '{"city": "Paris", "items": 3}'
    for _ in range(4):
        fake.script(reply=reply, usage=(50, 10))
    parsed = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Order)
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES, response_format=Order) as stream:
        streamed = stream.get_final_completion()
    response = client.responses.parse(model="gpt-4o", input="where", text_format=Order)
    with client.responses.stream(model="gpt-4o", input="where", text_format=Order) as events:
        final = events.get_final_response()
    expected = Order(city="Paris", items=3)
    assert parsed.choices[0].message.parsed == streamed.choices[0].message.parsed == expected
    assert response.output_parsed == final.output_parsed == expected
    records = traced.records()
    assert [(r["name"], r["level"], r["usage"]["total"]) for r in records] == [
        ("openai.chat", "DEFAULT", 60), ("openai.chat", "DEFAULT", 60),
        ("openai.responses", "DEFAULT", 60), ("openai.responses", "DEFAULT", 60)]
    assert records[0]["output"] == {"role": "assistant", "content": reply, "parsed": {"city": "Paris", "items": 3}}
    assert records[1]["output"] == {"role": "assistant", "content": reply}
    assert records[2]["output"] == records[3]["output"] == '{"city": "Paris", "items": 3}'  # the JSON text, kept
    assert all(r["cost"] == pytest.approx({"input": 0.000125, "output": 0.0001, "total": 0.000225}) for r in records)


def test_a_streamed_refusal_is_recorded_as_a_parsed_message_holds_it(traced: Traced, client: openai.OpenAI,
                                                                     fake: FakeOpenAI) -> None:
    fake.script(refusal=REFUSAL, chunks=3)
    fake.script(refusal=REFUSAL, chunks=3)
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES, response_format=Order) as stream:
        final = stream.get_final_completion()
    plain = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, response_format={"type": "json_object"})
    assert final.choices[0].message.refusal == plain.choices[0].message.refusal == REFUSAL
    streamed, answered = traced.records()
    assert streamed["output"] == {"role": "assistant", "content": None, "refusal": REFUSAL}
    assert answered["output"] == {"role": "assistant", "refusal": REFUSAL}
    assert streamed["completion_start_time"] is not None and streamed["metadata"]["finish_reason"] == "stop"


def test_a_refusal_in_a_stream_of_several_choices_is_recorded_by_its_index(traced: Traced) -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}

    def piece(index: int, **delta: Any) -> bytes:
        return sse_data({**chunk, "choices": [{"index": index, "delta": delta, "finish_reason": None}]})

    def reply(body: dict[str, Any]) -> httpx2.Response:
        content = [piece(0, refusal="I can't"), piece(1, content="Paris"), piece(0, refusal=" say."),
                   sse_data({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"},
                                               {"index": 1, "delta": {}, "finish_reason": "stop"}]}),
                   b"data: [DONE]\n\n"]
        return httpx2.Response(200, content=b"".join(content), headers={"content-type": "text/event-stream"})

    list(_client(reply).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2, stream=True))
    assert traced.one()["output"] == [{"role": "assistant", "content": None, "refusal": "I can't say."},
                                      {"role": "assistant", "content": "Paris"}]


@pytest.mark.parametrize("stream", [False, True])
def test_a_responses_refusal_is_the_output(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI,
                                           stream: bool) -> None:
    fake.script(refusal=REFUSAL, usage=(12, 6))
    if stream:
        list(client.responses.create(model="gpt-4.1", input="where", stream=True))
    else:
        assert client.responses.create(model="gpt-4.1", input="where").output_text == ""
    record = traced.one()
    assert record["output"] == [{"id": "msg_fake", "type": "message", "role": "assistant", "status": "completed",
                                 "content": [{"type": "refusal", "refusal": REFUSAL}]}]
    assert (record["level"], record["metadata"]["finish_reason"], record["usage"]["total"]) == ("DEFAULT",
                                                                                               "completed", 18)


def test_a_streamed_spoken_reply_is_recorded_with_its_transcript_and_its_audio_noted(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    audio = "UklGRiQA" * 20_000  # 160 kB of base64 pcm, in 4 pieces
    fake.script(reply="it is a cat", audio=audio, chunks=4, usage=(20, 40))
    chunks = list(client.chat.completions.create(
        model="gpt-4o-audio-preview", modalities=["text", "audio"], audio={"voice": "alloy", "format": "pcm16"},
        messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.audio.data for c in chunks[1:-1]) == audio  # the caller's chunks are whole
    record = traced.one()
    assert record["output"] == {"role": "assistant", "content": None, "audio": {
        "id": "audio_fake", "transcript": "it is a cat", "data": f"<base64, {len(audio)} chars>"}}
    assert record["completion_start_time"] is not None and record["usage"]["total"] == 60


# -- the Responses API ---------------------------------------------------------------------------------
def test_the_conversation_before_the_input_is_recorded_with_it(traced: Traced, client: openai.OpenAI) -> None:
    """``previous_response_id`` (or ``conversation``) says the model was given more than ``input``."""
    client.responses.create(model="gpt-4.1", input="and now?", previous_response_id="resp_0", instructions="brief")
    client.responses.create(model="gpt-4.1", input=[{"role": "user", "content": "hi"}], conversation="conv_7")
    first, second = traced.records()
    assert first["input"] == {"instructions": "brief", "previous_response_id": "resp_0", "input": "and now?"}
    assert second["input"] == {"conversation": "conv_7", "input": [{"role": "user", "content": "hi"}]}


def test_a_background_response_has_no_output_yet(traced: Traced, client: openai.OpenAI) -> None:
    """The call returns at once, ``queued``: no output, no usage; fetching it later
    (``responses.retrieve``) is no generation."""
    assert client.responses.create(model="gpt-4.1", input="later", background=True).status == "queued"
    record = traced.one()
    assert (record["output"], record["usage"], record["cost"]) == (None, None, None)
    assert record["model_parameters"] == {"background": True}
    assert (record["level"], record["metadata"]["finish_reason"]) == ("DEFAULT", "queued")


def test_calls_for_the_program_are_the_output_whatever_their_kind(traced: Traced) -> None:
    """A custom tool's call (free-form input) is what the model answered, as a function's is."""
    custom = {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_1", "name": "sql", "input": "SELECT 1"}
    message = {"type": "message", "id": "m", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "Running it.", "annotations": []}]}
    client = _client(lambda body: httpx2.Response(200, json={**_RESPONSE, "output": [_REASONING, message, custom]}))
    client.responses.create(model="gpt-5", input="count", tools=[{"type": "custom", "name": "sql"}])
    record = traced.one()
    assert record["output"] == [_REASONING, {**message, "content": [{**message["content"][0]}]}, custom]
    assert record["model_parameters"] == {"tools": ["sql"]}
    assert record["cost"] == pytest.approx({"input": 1.25e-05, "output": 0.0002, "total": 0.0002125})


def test_a_generated_image_in_the_output_is_noted_not_kept(traced: Traced) -> None:
    image = "iVBORw0KGgo" + "A" * 5000
    call = {"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": image}
    client = _client(lambda body: httpx2.Response(200, json={**_RESPONSE, "output": [call]}))
    response = client.responses.create(model="gpt-5", input="a cat", tools=[{"type": "image_generation"}])
    assert response.output[0].result == image  # the caller's own response is untouched
    assert traced.one()["output"] == [{**call, "result": f"<base64, {len(image)} chars>"}]


def test_media_a_tool_call_returned_is_noted_in_the_input(traced: Traced, client: openai.OpenAI) -> None:
    """A tool's result given as parts (an image a function returned, a computer-use screenshot) is
    noted like an image in a message; a tool's text result is kept whole, however long."""
    image = "data:image/png;base64," + "A" * 4000
    text = "row " * 400
    items: list[Any] = [
        {"role": "user", "content": "look at the chart"},
        {"type": "function_call_output", "call_id": "call_1",
         "output": [{"type": "input_text", "text": "the chart"}, {"type": "input_image", "image_url": image}]},
        {"type": "computer_call_output", "call_id": "call_2",
         "output": {"type": "computer_screenshot", "image_url": image}},
        {"type": "function_call_output", "call_id": "call_3", "output": text},
    ]
    sent = json.loads(json.dumps(items))
    client.responses.create(model="gpt-4.1", input=items)
    assert items == sent  # the caller's own items are untouched
    note = f"<image/png base64, {len(image)} chars>"
    assert traced.one()["input"] == [
        items[0],
        {**items[1], "output": [items[1]["output"][0], {"type": "input_image", "image_url": note}]},
        {**items[2], "output": {"type": "computer_screenshot", "image_url": note}},
        items[3],
    ]


# -- failures -------------------------------------------------------------------------------------------
def test_a_call_the_sdk_retries_is_one_generation(traced: Traced, fake: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key="x", max_retries=1)
    fake.script(error=(429, "slow down"))
    fake.script(usage=(9, 3))
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices[0].message.content
    fake.script(error=(500, "down"))
    fake.script(error=(500, "still down"))
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert (raised.value.status_code, raised.value.message) == (500, "Error code: 500 - still down")
    assert len(fake.requests) == 4
    answered, failed = traced.records()
    assert (answered["level"], answered["status_message"], answered["usage"]["total"]) == ("DEFAULT", None, 12)
    assert (failed["level"], failed["status_message"], failed["usage"]) == (
        "ERROR", "InternalServerError: Error code: 500 - still down", None)


def test_a_refused_connection_is_an_error_and_reaches_the_caller_unchanged(traced: Traced) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIConnectionError) as raised:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert type(raised.value) is openai.APIConnectionError and type(raised.value.__cause__).__name__ == "ConnectError"
    record = traced.one()
    assert (record["type"], record["level"], record["status_message"]) == (
        "embedding", "ERROR", "APIConnectionError: Connection error. Cause: ConnectError: [Errno 111] Connection "
        f"refused (<IP_ADDRESS>:{port})")  # the host redacted as any IP address is
